"""Plots: one line per method at its chosen multiplier, legend 'METHOD (γ×k)', every y kind; a log
y axis whatever the data; faint lines of other seeds explained in the legend."""

from __future__ import annotations

import argparse
import math
import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from commpress.errors import ConfigError, DataFileError
from commpress.experiments import plot_dirs, plot_sweep, plots, run
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


# ---------------------------------------------------------------------------- axes and legend

def _plot_help() -> tuple[str, list[str]]:
    """The description of ``commpress plot`` and the choices of its --y option."""
    from commpress.cli.plot import add_parser

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    parser = sub.choices["plot"]
    choices = next(a.choices for a in parser._actions if "--y" in a.option_strings)
    return parser.description, list(choices)


def _texts(fig) -> tuple[list[str], list[str]]:
    """(legend entries, free texts) of the figure's axes."""
    ax = fig.axes[0]
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else [], [t.get_text() for t in ax.texts]


@pytest.fixture(scope="module")
def seeded_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeded")
    config = {**SWEEP, "run": {**SWEEP["run"], "seeds": [0, 1, 2]}}
    run(config, out=out, quiet=True, runner=stub_runner)
    return out


def test_the_help_promises_a_log_y_axis_for_every_y():
    description, choices = _plot_help()
    assert "Log scale on the y axis" in description
    assert set(choices) == set(plots.Y_KINDS)


@pytest.mark.parametrize("x", ["bits", "iterations"])
def test_every_y_the_help_offers_is_drawn_on_a_log_axis(sweep, x):
    out, _ = sweep
    for y in _plot_help()[1]:
        curves, _ = sweep_curves(out, x, y)
        fig = plots.figure(curves, x=x, y=y)
        try:
            assert fig.axes[0].get_yscale() == "log", y
            assert fig.axes[0].get_xscale() == "linear"  # bits and iterations: linear, from 0
        finally:
            plt.close(fig)


def test_a_narrow_range_stays_on_a_log_axis():
    # less than a decade (a loss gap that barely moves): still log, as the help says
    curve = plots.Curve("GD (γ×1)", [0.0, 1.0, 2.0, 3.0], [2.0, 1.8, 1.6, 1.5], group="GD")
    fig = plots.figure([curve], x="iterations", y="loss_gap")
    try:
        assert fig.axes[0].get_yscale() == "log" and not _texts(fig)[1]
    finally:
        plt.close(fig)
    # values handed to figure() directly: a 0 and a negative one are left out and counted, not clipped
    curve = plots.Curve("GD (γ×1)", [0.0, 1.0, 2.0, 3.0], [2.0, 1.8, 0.0, -1.0], group="GD")
    fig = plots.figure([curve], x="iterations", y="loss_gap")
    try:
        assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_ylim()[0] > 1.0
        assert any(t.startswith("2 points <= 0 not drawn") for t in _texts(fig)[1])
    finally:
        plt.close(fig)


def test_values_a_log_axis_cannot_show_are_left_out_with_a_note(sweep, tmp_path):
    out, _ = sweep
    run_dir = next((out / "runs").iterdir())
    stored = plots.store.load_run(run_dir)
    stored["metrics"]["loss"][-2:] = [-1.0, -1.0 - 1e-9]  # f - f* = 0 and slightly negative (f* rounded)
    xs, ys, masked = plots._series(stored, "iterations", "loss_gap")
    assert masked == 2 and math.isnan(ys[-1]) and math.isnan(ys[-2]) and ys[0] > 0
    fig = plots.figure([plots.Curve("GD (γ×1)", xs, ys, group="GD", masked=masked)], x="iterations", y="loss_gap")
    try:
        assert fig.axes[0].get_yscale() == "log"
        assert any("2 points <= 0 not drawn" in t for t in _texts(fig)[1])
    finally:
        plt.close(fig)
    # nothing positive at all: no crash, no matplotlib warning
    nothing = plots.Curve("GD (γ×1)", [0.0, 1.0], [math.nan, math.nan], group="GD", masked=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plots.draw([nothing], tmp_path / "empty.png", x="iterations", y="dist")
    assert path.read_bytes()[:8] == PNG


def test_the_legend_explains_faint_lines_when_there_are_several_seeds(seeded_sweep, sweep):
    curves, _ = sweep_curves(seeded_sweep, "bits", "grad_norm_sq")
    assert [c.seed for c in curves if c.group == "GD"] == [0, 1, 2]
    fig = plots.figure(curves, x="bits", y="grad_norm_sq")
    try:
        legend, _ = _texts(fig)
        assert "bold: seed 0 (of 3 seeds)" in legend and "faint: seeds 1, 2, same method" in legend
        assert sum(text.startswith(("MARINA", "GD")) for text in legend) == 2  # one entry per method
    finally:
        plt.close(fig)
    one, _ = sweep_curves(sweep[0], "bits", "grad_norm_sq")
    fig = plots.figure(one, x="bits", y="grad_norm_sq")
    try:
        assert not any("seed" in text for text in _texts(fig)[0])
    finally:
        plt.close(fig)
