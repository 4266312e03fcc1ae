"""The plugin example (``examples/plugin``: distribution ``commpress-int8``, entry point ``int8``),
installed as a separate package, is usable by name everywhere: Python, TOML configs, ``commpress
run`` (also on 2 processes), ``commpress dme``, ``commpress list``, the DDP hooks, and as
``"commpress_int8:Int8"``.

Installed without network: ``pip install --no-deps --no-build-isolation --no-index --target SITE``
of a copy of the example (about a second); where pip cannot build it (no setuptools), by writing
what pip leaves: the package beside a ``commpress_int8-0.1.0.dist-info`` with ``METADATA`` and the
``entry_points.txt`` of the example's ``pyproject.toml``. SITE goes on ``PYTHONPATH`` of
subprocesses only, so this test process's registries never see the plugin.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin"


def example_entry_points() -> dict[str, dict[str, str]]:
    return tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]


def install(site: Path, dist: str, version: str, entry_points: dict[str, dict[str, str]],
            packages: list[Path] = ()) -> None:
    """What ``pip install --target site`` leaves: the packages and a dist-info with the entry points."""
    for package in packages:
        shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) + "\n"
        for group, eps in entry_points.items()))


def pip_install(site: Path, work: Path) -> bool:
    source = shutil.copytree(EXAMPLE, work / "commpress-int8", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(source)], capture_output=True, text=True,
                          timeout=300, cwd=work)
    return proc.returncode == 0 and (site / "commpress_int8" / "__init__.py").is_file()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site-packages")
    if not pip_install(site, tmp_path_factory.mktemp("build")):
        shutil.rmtree(site)
        site.mkdir()
        install(site, "commpress-int8", "0.1.0", example_entry_points(), [EXAMPLE / "commpress_int8"])
    return site


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}


def _commpress(site: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "commpress", *argv], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=_env(site))


def _python(site: Path, code: str, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=_env(site))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_example_declares_its_compressor_as_an_entry_point():
    assert example_entry_points() == {"commpress.compressors": {"int8": "commpress_int8:Int8"}}


PYTHON_API = r"""
import json, os, tempfile
import torch
import commpress as cp
from commpress import ConfigError
from commpress.compressors.registry import REGISTRY
from commpress.experiments._params import resolve_compressor

out = {"names": cp.compressors.names(), "origin": REGISTRY.origin("int8"), "builtin": REGISTRY.origin("cq")}
C = cp.compressors.make("int8")
out["class"] = f"{type(C).__module__}.{type(C).__name__}"
out["name"] = C.name
out["same_class"] = type(cp.compressors.make("commpress_int8:Int8")) is type(C)
X = torch.randn(5, 37, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
X_hat, bits = C.apply(X, seed=7)
payloads = C.encode(X, seed=7)
out["bits"] = bits.tolist()
out["payload_bits"] = [8 * len(p) for p in payloads]
out["decode_is_fast_path"] = torch.equal(C.decode(payloads, seed=7, d=37, dtype=torch.float64), X_hat)
out["row_alone"] = C.encode(X[3:4], seed=7, clients=[3], n=5)[0] == payloads[3]
out["resolved"] = resolve_compressor({"name": "commpress_int8:Int8"}, "run.compressor")
try:
    resolve_compressor({"name": "int8", "levels": 3}, "run.compressor")
except ConfigError as err:
    out["bad_param"] = str(err)
problem = cp.problems.make("quadratic", n_clients=4, dim=16)
hist = cp.simulate(problem, "diana", compressor="commpress_int8:Int8", iterations=5, seed=1)
out["simulate_bits"] = float(hist.bits_up[-1])
out["simulate_same"] = torch.equal(hist.x, cp.simulate(problem, "diana", compressor="int8", iterations=5, seed=1).x)

# the DDP hooks, by name, on a 1-process gloo group: 2 warm-up steps, then 2 compressed ones
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from commpress.integrations import ddp
dist.init_process_group("gloo", store=dist.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1), rank=0, world_size=1)
model = DDP(torch.nn.Linear(8, 4))
state = ddp.register(model, "int8", method="ef")
for _ in range(4):
    model(torch.randn(16, 8)).pow(2).mean().backward()
out["ddp"] = {"name": state.compressor.name, "step": state.step, "last": state.traffic.last_payload_bytes}
dist.destroy_process_group()
print(json.dumps(out))
"""


def test_python_api_simulate_and_ddp_resolve_the_installed_plugin(site, tmp_path):
    out = _python(site, PYTHON_API, tmp_path)
    assert "int8" in out["names"] and out["origin"] == "plugin commpress-int8" and out["builtin"] == "builtin"
    assert out["class"] == "commpress_int8.Int8" and out["name"] == "int8" and out["same_class"]
    assert out["bits"] == out["payload_bits"] == [32 + 8 * 37] * 5  # float32 scale + d uint8 codes
    assert out["decode_is_fast_path"] and out["row_alone"]
    assert out["resolved"] == {"name": "int8"}  # module:Class of a registered plugin -> its registered name
    assert "has no parameter 'levels'" in out["bad_param"]  # parameters checked from the signature
    assert out["simulate_bits"] == 5 * (32 + 8 * 16) and out["simulate_same"]
    assert out["ddp"] == {"name": "int8", "step": 4, "last": 4 + 8 * 4 + 4}  # the 36-entry bucket, 8 bits each


CONFIG = """
[problem]
name = "quadratic"
n_clients = 4
dim = 16

[run]
algorithm = "diana"
compressors = [{name = "int8"}, "qsgd"]
iterations = 12
seed = 1
"""


def _metrics(out: Path) -> dict[str, list[dict[str, str]]]:
    runs = {}
    for run in sorted((out / "runs").iterdir()):
        with open(run / "metrics.csv", newline="") as fh:
            runs[run.name] = [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(fh)]
    return runs


def test_a_toml_config_names_the_plugin_and_runs_locally_and_on_two_processes(site, tmp_path):
    config = tmp_path / "int8.toml"
    config.write_text(CONFIG)
    local = _commpress(site, "run", str(config), "--out", str(tmp_path / "local"), "--quiet", "--no-plots", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    assert "DIANA + INT8" in local.stdout and "DIANA + QSGD" in local.stdout
    # every rank is a fresh interpreter (spawn) that must find the plugin by its entry point
    dist = _commpress(site, "run", str(config), "--out", str(tmp_path / "dist"), "--quiet", "--no-plots",
                      "--processes", "2", "--timeout", "120", cwd=tmp_path)
    assert dist.returncode == 0, dist.stderr
    assert _metrics(tmp_path / "local") == _metrics(tmp_path / "dist") and len(_metrics(tmp_path / "local")) == 2


def test_a_config_names_the_class_as_module_colon_class(site, tmp_path):
    config = tmp_path / "ref.toml"
    config.write_text(CONFIG.replace('compressors = [{name = "int8"}, "qsgd"]',
                                     'compressor = {name = "commpress_int8:Int8"}'))
    shown = _commpress(site, "config", "show", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert 'compressors = [{name = "int8"}]' in shown.stdout  # resolved to the plugin's registered name


def test_dme_has_an_int8_row(site, tmp_path):
    proc = _commpress(site, "dme", "--compressors", "int8,qsgd", "--n", "4", "--d", "64", "--repetitions", "4",
                      "--out", str(tmp_path / "dme"), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.split()}
    assert rows["int8"][1] == "unbiased" and float(rows["int8"][2]) == pytest.approx((32 + 8 * 64) / 64)
    assert "qsgd" in rows
    results = json.loads((tmp_path / "dme" / "results.json").read_text())["results"]
    assert [r["compressor"] for r in results] == ["int8", "qsgd"]


def test_list_shows_where_each_compressor_comes_from(site, tmp_path):
    proc = _commpress(site, "list", "compressors", "--n", "4", "--d", "16", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[2:]}
    assert "plugin commpress-int8" in lines["int8"] and "Stochastic rounding" in lines["int8"]
    assert "builtin" in lines["cq"] and "plugin" not in lines["cq"]


# ----------------------------------------------------------------------------- the compressor itself
@pytest.fixture
def Int8(monkeypatch):
    """The example's class, imported from its folder (no entry point: the registries never see it)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delitem(sys.modules, "commpress_int8", raising=False)
    import commpress_int8

    yield commpress_int8.Int8
    sys.modules.pop("commpress_int8", None)


def test_int8_is_unbiased_and_its_omega_holds_and_is_nearly_tight(Int8):
    d, trials = 33, 20_000
    C = Int8()
    omega = C.theory(1, d).omega
    assert omega == pytest.approx(d / 255**2, rel=1e-6) and omega >= d / 255**2
    x = torch.linspace(-1.0, 0.7, d, dtype=torch.float64)
    X_hat, _ = C.apply(x.expand(trials, d).contiguous(), seed=3)  # trials ride the client axis
    var_j = X_hat.var(dim=0)
    se = (var_j / trials).sqrt() + 1e-12
    assert torch.all((X_hat.mean(0) - x).abs() <= 5 * se)
    assert float(var_j.sum()) <= omega * float(x.pow(2).sum())
    e1 = torch.zeros(d, dtype=torch.float64)
    e1[0] = 1.0  # the worst case: every zero sits mid-cell, Var = (d - 1) / s^2 exactly
    E_hat, _ = C.apply(e1.expand(trials, d).contiguous(), seed=4)
    worst = float(E_hat.var(dim=0).sum())
    assert worst == pytest.approx((d - 1) / 255**2, rel=0.05) and worst <= omega


def test_int8_keeps_zero_rows_and_the_dtype(Int8):
    C = Int8()
    for dtype in (torch.float32, torch.float64):
        X_hat, bits = C.apply(torch.zeros(3, 5, dtype=dtype), seed=0)
        assert X_hat.dtype == dtype and torch.equal(X_hat, torch.zeros(3, 5, dtype=dtype))
        assert bits.tolist() == [32 + 8 * 5] * 3


def test_int8_passes_the_conformance_suite_and_uses_public_names_only(Int8):
    from commpress.testing import check_compressor

    report = check_compressor(Int8())  # raises ConformanceError naming each failed property
    assert report.passed
    source = (EXAMPLE / "commpress_int8" / "__init__.py").read_text()
    # the plugin is written with commpress's public extension points: no private hook or module
    assert "def _" not in source and "commpress._" not in source and "compressors.base" not in source
