"""The main experiment (``commpress run`` with no config) shows what the README says it shows."""

from __future__ import annotations

import pytest

from commpress.experiments import run


@pytest.mark.slow
def test_main_experiment_cq_beats_iq_beats_gd(tmp_path):
    result = run(None, out=tmp_path, quiet=True, plots=False)
    methods = result.summary["methods"]
    bits = {label: m["bits_to_target"] for label, m in methods.items()}
    assert set(bits) == {"MARINA + CQ", "MARINA + IQ", "MARINA + DRIVE", "GD"}
    assert all(b is not None for b in bits.values()), bits  # every method reaches the target
    assert bits["MARINA + CQ"] < bits["MARINA + IQ"] < bits["GD"], bits
    for m in methods.values():
        assert m["final_grad_norm_sq"] <= result.summary["target"]
        assert m["iterations"] > 0 and m["stepsize"] > 0
    # the chosen multiplier is the best one tried, not the edge of the grid by accident of divergence
    cq = methods["MARINA + CQ"]["multipliers"]
    assert min((c["bits_to_target"] for c in cq.values() if c["bits_to_target"] is not None)) == bits["MARINA + CQ"]
