"""Measurements shared by the bidirectional-compression reproductions (``ef21-p``, ``marina-p``, ``ef21-bc``).

Bidirectional methods are compared in ``bits_total`` = uplink + downlink bits per client (both from the
ledger, recorded in ``metrics.csv``). A method is taken at the stepsize multiplier with the smallest
median (over seeds) of its bits to the level (:func:`select_to_level`); the verdicts are pure
functions of the medians (:func:`fewer_verdict`, :func:`order_verdict`), tested on fake numbers.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.reproductions._curves import Curve, run_series, select
from commpress.reproductions._seeds import Spread

#: Columns of the x axis: "bits_total" (up + down), "bits_up", "bits_down", "iteration".
X_COLUMNS = ("bits_total", "bits_up", "bits_down", "iteration")


def series(run: dict[str, Any], x: str = "bits_total", y: str = "grad_norm_sq") -> Curve:
    """One run's curve with x = ``bits_total`` (or a metrics column) and y as :func:`run_series`."""
    if x != "bits_total":
        return run_series(run, x, y)
    up, down = run_series(run, "bits_up", y), run_series(run, "bits_down", y)
    return Curve([u + d for u, d in zip(up.x, down.x)], up.y, up.diverged)


def to_level(curve: Curve, level: float) -> float:
    """x at the first recorded point with y <= ``level`` (inf if never, or if the run diverged first)."""
    for x, y in zip(curve.x, curve.y):
        if not math.isfinite(y):
            return math.inf
        if y <= level:
            return x
    return math.inf


def select_to_level(panel, label: str, level: float, *, x: str = "bits_total", y: str = "grad_norm_sq"):
    """``label`` at the multiplier with the smallest median (over seeds) of x to reach ``level``; ties (also
    none reached: all inf) go to the smaller multiplier. Returns the :class:`~commpress.reproductions._curves.Selected`."""
    return select(panel, label, lambda run: to_level(series(run, x, y), level))


def spread_to_level(selected, level: float, *, x: str = "bits_total", y: str = "grad_norm_sq") -> Spread:
    """Per seed of a selected method: x to reach ``level`` (inf where not reached)."""
    return Spread.of(to_level(series(r, x, y), level) for r in selected.runs)


def fewer_verdict(a: float, b: float) -> tuple[bool, str]:
    """``a`` < ``b`` (medians; inf = the level was not reached). Returns (held, unmeasurable reason)."""
    if not math.isfinite(a) and not math.isfinite(b):
        return False, "neither method reached the level within the budget (median over seeds): nothing to compare"
    if math.isnan(a) or math.isnan(b):
        return False, "a median is nan"
    return bool(a < b), ""


def order_verdict(values: list[float]) -> tuple[bool, str]:
    """``values[0] < values[1] < ...`` (medians; inf = not reached). Returns (held, unmeasurable reason)."""
    if len(values) < 2:
        return False, "fewer than two numbers to order"
    if any(math.isnan(v) for v in values):
        return False, "a median is nan"
    if not math.isfinite(values[0]):
        return False, "the first method did not reach the level: the order cannot be read"
    return all(a < b for a, b in zip(values, values[1:])), ""


def show_bits(v: float) -> str:
    return "not reached" if math.isinf(v) else ("nan" if math.isnan(v) else f"{round(v):,}")


__all__ = ["X_COLUMNS", "fewer_verdict", "order_verdict", "select_to_level", "series", "show_bits",
           "spread_to_level", "to_level"]
