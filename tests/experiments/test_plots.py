"""Plots: one line per method at its chosen multiplier, legend 'METHOD (γ×k)', every y kind."""

from __future__ import annotations

import pytest

from commpress.errors import ConfigError, DataFileError
from commpress.experiments import plot_dirs, plot_sweep, run
from commpress.experiments.plots import sweep_curves
from tests.experiments._stub import stub_runner

SWEEP = {
    "name": "plots",
    "problem": {"name": "quadratic", "n_clients": 4, "dim": 8},
    "run": {"algorithms": ["marina", "gd"], "compressors": ["cq"], "stepsize_multipliers": [1, 4, 8],
            "iterations": 30, "target": 1e-6},
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    result = run(SWEEP, out=out, quiet=True, runner=stub_runner)
    return out, result


def test_a_sweep_writes_its_plots(sweep):
    out, result = sweep
    assert [p.name for p in result.plots] == ["grad_norm_sq_vs_bits.png", "grad_norm_sq_vs_iterations.png"]
    for p in result.plots:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000


def test_legend_names_method_and_chosen_multiplier(sweep):
    out, _ = sweep
    curves, _ = sweep_curves(out, "bits", "grad_norm_sq")
    assert [c.label for c in curves] == ["MARINA + CQ (γ×4)", "GD (γ×4)"]
    cq = curves[0]
    assert cq.x[0] == 100.0 and cq.y[0] == 1.0 and cq.y[-1] <= 1e-6  # bits and ||grad f||^2 of the stub
    every, _ = sweep_curves(out, "iterations", "grad_norm_sq", all_multipliers=True)
    assert len(every) == 6 and "MARINA + CQ (γ×4) *" in [c.label for c in every]


@pytest.mark.parametrize("y", ["grad_norm_sq", "loss_gap", "dist"])
@pytest.mark.parametrize("x", ["bits", "iterations"])
def test_every_axis_kind(sweep, tmp_path, x, y):
    out, _ = sweep
    path = plot_sweep(out, x=x, y=y, path=tmp_path / "p.png")
    assert path.read_bytes()[:8] == PNG


def test_plot_dirs_mixes_sweeps_and_single_runs(sweep, tmp_path):
    out, result = sweep
    run_dir = out / "runs" / result.summary["methods"]["GD"]["run_ids"][0]
    path = plot_dirs([out, run_dir], path=tmp_path / "mix.png")
    assert path.read_bytes()[:8] == PNG
    with pytest.raises(DataFileError, match="neither a sweep folder"):
        plot_dirs([tmp_path])
    with pytest.raises(ConfigError, match="plot y"):
        plot_sweep(out, y="loss")
