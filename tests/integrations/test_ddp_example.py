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
