"""Curves of every stepsize multiplier of a panel, a windowed selection, and seed medians.

Shared by the NEOLITHIC and VR-DIANA reproductions. The sweep's own selection
(:mod:`commpress.experiments.report`) keeps the multiplier with the smallest *last* recorded
:math:`\\|\\nabla f\\|^2`; for stochastic methods one point is noisy, so these checks score a
multiplier by a *window*: the mean of a metric over the last fraction of the run, then the median
over seeds (one diverged seed out of five does not disqualify a multiplier, three do), and can
convert the iteration axis into communication rounds (NEOLITHIC: ``R`` rounds per outer iteration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Callable

from commpress.reproductions._seeds import median

Y_COLUMNS = ("grad_norm_sq", "loss_gap", "dist_sq", "rel_gap", "rel_dist")


@dataclass
class Curve:
    """One run: x values (rounds or bits), the metric, and whether the run diverged."""

    x: list[float]
    y: list[float]
    diverged: bool


def run_series(run: dict[str, Any], x: str = "iteration", y: str = "grad_norm_sq", rounds_per_iteration: int = 1) -> Curve:
    """``x``: ``"iteration"`` (times ``rounds_per_iteration``) or ``"bits_up"``; ``y``: a metrics column or
    ``loss_gap`` (f − f*), ``rel_gap`` ((f − f*)/(f(x⁰) − f*)), ``rel_dist`` (‖x − x*‖²/‖x⁰ − x*‖²)."""
    m = run["metrics"]
    xs = [float(v) for v in m[x]]
    if x == "iteration":
        xs = [v * rounds_per_iteration for v in xs]
    if y in ("loss_gap", "rel_gap"):
        f_star = run["summary"].get("f_star")
        if f_star is None:
            raise KeyError("f* is not known for this problem")
        ys = [float(v) - float(f_star) for v in m["loss"]]
        if y == "rel_gap":
            ys = [v / ys[0] for v in ys]
    elif y == "rel_dist":
        ys = [float(v) for v in m["dist_sq"]]
        ys = [v / ys[0] for v in ys]
    else:
        ys = [float(v) for v in m[y]]
    status = run["summary"].get("status")
    return Curve(xs, ys, status == "diverged" or not all(math.isfinite(v) for v in ys))


def multipliers(panel, label: str) -> dict[float, list[dict[str, Any]]]:
    """Every stepsize multiplier of method ``label`` in ``panel`` -> the runs of its seeds."""
    entry = panel.summary["methods"][label]
    return {float(k): [panel.runs[i] for i in c["run_ids"]] for k, c in entry["multipliers"].items()}


def window_mean(curve: Curve, frac: float, upto: float | None = None) -> float:
    """Mean of ``y`` over the points with x in ``[(1 - frac) X, X]``, X = ``upto`` or the last x;
    inf for a diverged run or one that stopped before ``upto``."""
    if curve.diverged:
        return math.inf
    end = curve.x[-1] if upto is None else upto
    if upto is not None and curve.x[-1] < (1 - frac) * upto:
        return math.inf
    vals = [v for t, v in zip(curve.x, curve.y) if (1 - frac) * end <= t <= end]
    return fmean(vals) if vals else math.inf


def seed_mean(values: list[float]) -> float:
    return math.inf if any(not math.isfinite(v) for v in values) else fmean(values)


def seed_median(values: list[float]) -> float:
    """Median over seeds, a diverged seed (inf or nan) counting as inf: finite when more than half are."""
    return median(math.inf if not math.isfinite(v) else v for v in values) if values else math.nan


@dataclass
class Selected:
    """A method at its selected multiplier: the multiplier, its runs, its score, all scores."""

    label: str
    multiplier: float
    runs: list[dict[str, Any]]
    score: float
    scores: dict[float, float]

    @property
    def at_grid_edge(self) -> bool:
        grid = sorted(self.scores)
        return len(grid) > 1 and self.multiplier in (grid[0], grid[-1])


def select(panel, label: str, score: Callable[[dict[str, Any]], float]) -> Selected:
    """The multiplier of ``label`` with the smallest median (over seeds) of ``score(run)``; ties -> smaller."""
    cands = multipliers(panel, label)
    scores = {mult: seed_median([score(r) for r in runs]) for mult, runs in cands.items()}
    best = min(scores, key=lambda m: (scores[m] if not math.isnan(scores[m]) else math.inf, m))
    return Selected(label, best, cands[best], scores[best], scores)


def running_average(curve: Curve) -> Curve:
    """Running mean of ``y`` over the recorded points: the theorems' :math:`\\frac1{K}\\sum_k\\|\\nabla f(x^k)\\|^2`."""
    out, total = [], 0.0
    for i, v in enumerate(curve.y, 1):
        total += v
        out.append(total / i)
    return Curve(curve.x, out, curve.diverged)


def value_at(curve: Curve, x: float) -> float:
    """``y`` of the last point with x value <= ``x`` (inf if diverged or the run ended earlier)."""
    if curve.diverged or curve.x[-1] < x * (1 - 1e-9):
        return math.inf
    vals = [v for t, v in zip(curve.x, curve.y) if t <= x * (1 + 1e-9)]
    return vals[-1] if vals else math.inf


def geometric_grid(lo: float, hi: float, points: int) -> list[float]:
    """``points`` values from lo to hi, evenly spaced in log scale."""
    if points < 2 or hi <= lo:
        return [hi]
    r = (hi / lo) ** (1.0 / (points - 1))
    return [lo * r**k for k in range(points)]


def rounded(v: Any, digits: int = 3) -> Any:
    """A float to ``digits`` significant digits (inf/nan as strings), for a claim's numbers."""
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return float(f"{v:.{digits}g}")
