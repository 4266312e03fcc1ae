"""examples/ddp_mnist.py without training: its default methods are ones that work at 2 ranks, and a
diverged row of its table is explained in words."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_mnist.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("ddp_mnist_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _n_params(example, side: int) -> int:
    return sum(p.numel() for p in example.make_model(side).parameters())


@pytest.mark.parametrize("side", [28, 8])  # MNIST, and the scikit-learn digits fallback
def test_no_default_method_is_known_to_diverge_at_two_ranks(example, side):
    d = _n_params(example, side)
    methods = example.default_methods()
    assert any(":cq" in m for m in methods), "the defaults should show CQ where it works"
    risky = {m: example.divergence_risk(m, 2, d) for m in methods}
    assert not {m: why for m, why in risky.items() if why}, risky


@pytest.mark.parametrize(("method", "words"), [
    ("mean:cq", ["omega", "no error feedback", "n = 2 ranks", "more levels"]),   # 1-bit CQ, norm range
    ("diana:cq", ["omega", "DIANA's shift stepsize"]),
    ("ef:cq", ["contractive"]),
    ("ef21:cq", ["contractive"]),
])
def test_the_combinations_that_diverged_on_mnist_are_flagged_with_a_reason(example, method, words):
    why = example.divergence_risk(method, 2, _n_params(example, 28))
    assert why is not None
    for word in words:
        assert word in why, (word, why)


def test_a_diverged_row_gets_a_note_under_the_table(example, capsys):
    row = {"method": "mean:cq", "accuracy": float("nan"), "payload": 1142, "wire": 1150, "time": 0.04,
           "steps": 15, "diverged": True, "error": "cq: field 'rho' of the message overflows", "fp32": 36392}
    ok = {**row, "method": "mean:cq:levels=15", "accuracy": 0.918, "diverged": False, "error": None, "steps": 125}
    failed = {**row, "method": "diana:cq:range=minmax", "error": "failed (not a divergence): needs omega"}
    example.print_table([ok, row, failed], 2, _n_params(example, 28))
    out = capsys.readouterr().out
    assert "| mean:cq                  | diverged |" in out and "|   0.9180 |" in out
    assert "| diana:cq:range=minmax    |   failed |" in out
    notes = out.split("notes:")[1]
    assert "mean:cq diverged at step 15: 1-bit cq is unbiased with omega" in notes
    assert "diana:cq:range=minmax stopped at step 15: failed (not a divergence)" in notes
    assert "levels=15" not in notes


@pytest.mark.parametrize(("spec", "parsed"), [
    ("fsdp", (None, None, {}, None)),
    ("fsdp-ef:sign", ("ef", "sign", {}, None)),
    ("fsdp-ef21:sign:block_size=256+params=int8", ("ef21", "sign", {"block_size": 256}, "int8")),
    ("fsdp-mean:permk+params=bf16", ("mean", "permk", {}, "bf16")),
])
def test_fsdp_methods_parse(example, spec, parsed):
    assert example.parse_fsdp(spec) == parsed


@pytest.mark.parametrize(("spec", "needle"), [
    ("fsdp+params=int8", "go with a compressed reduce-scatter"),
    ("fsdp-ef:sign+params=", "needs a mode"),
    ("fsdp-ef:sign+params=int3", "needs a mode, one of"),
    ("fsdp-sgd:sign", "use fsdp or fsdp-{mean|ef|ef21|diana}"),
    ("fsdp-ef", "use fsdp or fsdp-"),
    ("fsdpx", "use fsdp or fsdp-"),
])
def test_bad_fsdp_methods_say_what_to_write(example, spec, needle):
    with pytest.raises(SystemExit, match=needle.replace("|", r"\|").replace("{", r"\{").replace("}", r"\}")):
        example.parse_fsdp(spec)


def test_the_example_trains_under_fsdp2_and_reports_the_parameter_gathers(tmp_path):
    """Two gloo processes, a few steps on the bundled digits: FSDP2's own collectives and commpress's
    (1-bit EF, int8 parameters) run; the param B/step column shows the int8 gathers at about 1/4 of fp32's."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COMMPRESS_DATA": str(tmp_path)}  # no MNIST there: the bundled digits
    done = subprocess.run([sys.executable, str(EXAMPLE), "--methods", "fsdp,fsdp-ef:sign+params=int8",
                           "--max-steps", "3", "--epochs", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| fsdp")}
    assert set(rows) == {"fsdp", "fsdp-ef:sign+params=int8"}
    own, int8 = (int(rows[m][4].replace(",", "")) for m in ("fsdp", "fsdp-ef:sign+params=int8"))
    assert 0.2 * own < int8 < 0.3 * own  # int8 plus one float32 scale per 256 entries, vs float32
    assert int(rows["fsdp-ef:sign+params=int8"][1].replace(",", "")) < int(rows["fsdp"][1].replace(",", "")) / 20
