"""``commpress run CONFIG --backend dist`` / ``--processes K``: a sweep on gloo ranks stores what the
simulator stores (wall time aside), only rank 0 writes, and a killed sweep resumes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import commpress.distributed as cpdist
from commpress.cli import main
from commpress.distributed import launch_command, run_distributed
from commpress.distributed._faults import ENV

CONFIG = """
[problem]
name = "quadratic"
n_clients = 6
dim = 16

[run]
algorithms = ["marina", "ef21"]
compressor = "randk"
iterations = 30
seed = 1
"""


def _metrics(folder: Path) -> dict[str, list[dict[str, str]]]:
    out = {}
    for run in sorted((folder / "runs").iterdir()):
        with open(run / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        out[run.name] = [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]
    return out


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG)
    return path


def test_dist_backend_stores_the_simulators_runs_and_resumes_after_a_killed_rank(tmp_path, config):
    assert main(["run", str(config), "--out", str(tmp_path / "local"), "--quiet", "--no-plots"]) == 0
    argv = ["run", str(config), "--out", str(tmp_path / "dist"), "--quiet", "--no-plots", "--timeout", "5",
            "--checkpoint-every", "10", "--backend", "dist"]
    code = launch_command(argv, processes=2, timeout=5, start_method="fork", env={ENV: "exit@1:25"})
    assert code == 17  # rank 1's injected exit; rank 0 stopped by itself with an error naming it
    ckpt = list((tmp_path / "dist" / "checkpoints").iterdir())
    assert len(ckpt) == 1 and (ckpt[0] / "LATEST").read_text().startswith('{"round": 20')
    assert sum(1 for _ in open(ckpt[0] / "metrics.csv")) == 1 + 26  # header + rounds 0..25, readable
    assert launch_command(argv, processes=2, timeout=5, start_method="fork") == 0  # the same command resumes
    local, dist = _metrics(tmp_path / "local"), _metrics(tmp_path / "dist")
    assert local.keys() == dist.keys() and len(local) == 2
    assert local == dist
    assert not (tmp_path / "dist" / "checkpoints").exists()  # removed once the sweep is stored


def test_processes_flag_relaunches_the_command_as_dist_ranks(monkeypatch, config, tmp_path):
    calls = []
    monkeypatch.setattr(cpdist, "launch_command", lambda argv, **kw: calls.append((argv, kw)) or 0)
    assert main(["run", str(config), "--processes", "3", "--out", str(tmp_path / "o"), "--no-plots",
                 "--timeout", "7.5", "--master-addr", "127.0.0.2"]) == 0
    (argv, kw), = calls
    assert argv == ["run", str(config), "--out", str(tmp_path / "o"), "--no-plots", "--timeout", "7.5",
                    "--checkpoint-every", "100", "--backend", "dist"]
    assert kw == {"processes": 3, "master_addr": "127.0.0.2", "timeout": 7.5}


@pytest.mark.parametrize("args,words", [
    (["--processes", "2", "--jobs", "2"], "drop --jobs"),
    (["--processes", "0"], "--processes"),
    (["--timeout", "-1", "--processes", "2"], "--timeout"),
    (["--checkpoint-every", "-3", "--processes", "2"], "--checkpoint-every"),
])
def test_bad_distributed_flags_are_rejected(config, capsys, args, words):
    try:
        code = main(["run", str(config), *args])
    except SystemExit as stop:  # argparse
        code = stop.code
    assert code == 2
    assert words in capsys.readouterr().err


def test_dist_backend_outside_torchrun_says_how_to_launch(config, monkeypatch, capsys):
    for name in ("RANK", "WORLD_SIZE", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", str(config), "--backend", "dist", "--quiet"]) == 2
    assert "torchrun --nproc_per_node=K -m commpress run CONFIG --backend dist" in capsys.readouterr().err


@pytest.mark.slow
def test_spawned_processes_give_the_simulators_iterate():
    import commpress as cp

    spec = {"name": "quadratic", "n_clients": 4, "dim": 8, "seed": 3}
    hist = run_distributed(spec, "diana", compressor={"name": "randk", "k": 2}, iterations=15, seed=2, processes=2,
                           timeout=60)
    ref = cp.simulate(cp.problems.make("quadratic", n_clients=4, dim=8, seed=3), "diana",
                      compressor={"name": "randk", "k": 2}, iterations=15, seed=2)
    assert torch.equal(hist.x, ref.x) and torch.equal(hist.bits_up, ref.bits_up)
