"""Several seeds: one number per seed, its median (what the verdicts read) and its spread (min–max over
the seeds: what ``report.md`` and the figures' shaded bands show).

A method whose compressor or stochastic oracle is random is run with several seeds, because one draw
cannot tell a real difference from noise. Conventions for the numbers of one seed:

- a seed that never reached a level, or diverged, counts as ``inf`` (infinitely bad), so a median is
  finite exactly when more than half of the seeds got there;
- ``nan`` means "not measured"; a median over a list with a ``nan`` (or over no seed) is ``nan``, and a
  claim that needs it is not measurable (see :func:`commpress.reproductions._compare.less`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median as _median
from typing import Any, Callable

import numpy as np


def as_seed_value(v: Any) -> float:
    """One seed's number: None (never reached) -> inf; anything else as a float."""
    return math.inf if v is None else float(v)


def median(values: Iterable[Any]) -> float:
    """Median over seeds (None -> inf); ``nan`` for no seed or a ``nan`` among them. With an even number
    of seeds, the mean of the two middle values (inf when one of them is inf)."""
    vals = [as_seed_value(v) for v in values]
    if not vals or any(math.isnan(v) for v in vals):
        return math.nan
    return float(_median(vals))


@dataclass(frozen=True)
class Spread:
    """One number per seed (``values``); ``median`` decides, ``lo``–``hi`` (min–max) is shown beside it."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[Any]) -> "Spread":
        return cls(tuple(as_seed_value(v) for v in values))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return median(self.values)

    @property
    def lo(self) -> float:
        return math.nan if not self.values or any(math.isnan(v) for v in self.values) else min(self.values)

    @property
    def hi(self) -> float:
        return math.nan if not self.values or any(math.isnan(v) for v in self.values) else max(self.values)

    def text(self, show: Callable[[float], Any] | None = None) -> str:
        """``"median [min–max]"`` (just the value for one seed), each number through ``show``
        (default: 3 significant digits, inf as "inf")."""
        return text_of(self.as_dict(), show)

    def as_dict(self) -> dict[str, Any]:
        """``{"median", "min", "max", "seeds"}``: what a module keeps in ``results.data``."""
        return {"median": self.median, "min": self.lo, "max": self.hi, "seeds": self.n}


def text_of(spread: dict[str, Any], show: Callable[[float], Any] | None = None) -> str:
    """``"median [min–max]"`` of a :meth:`Spread.as_dict` (the median alone for one seed or no spread)."""
    if show is None:
        from commpress.reproductions._report import fmt as show
    med, lo, hi = show(spread["median"]), show(spread["min"]), show(spread["max"])
    if spread["seeds"] <= 1 or lo == hi:  # one seed, or all seeds equal at the shown precision
        return f"{med}"
    return f"{med} [{lo}–{hi}]"


def band(curves: Sequence[tuple[Sequence[float], Sequence[float]]], points: int = 1500
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median and min–max over seeds of curves recorded at different x (e.g. bits, which differ per seed
    when the rounds' costs are random): ``(x, median, lo, hi)`` on the union of the recorded x values
    (thinned to about ``points``). Each seed's value at x is its last recorded value at or before x (a
    seed that stopped early, at the target or the budget, keeps its last value); ``nan``/``inf``
    values count as ``inf`` (returned as ``nan``, a gap in a plot)."""
    xs = np.unique(np.concatenate([np.asarray(c[0], dtype=float) for c in curves]))
    if xs.size > points:
        xs = np.unique(np.quantile(xs, np.linspace(0.0, 1.0, points)))
    rows = []
    for x, y in curves:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        y = np.where(np.isfinite(y), y, np.inf)
        k = np.searchsorted(x, xs, side="right") - 1
        rows.append(np.where(k >= 0, y[np.clip(k, 0, len(y) - 1)], np.nan))  # before a seed's first point: no value
    Y = np.vstack(rows)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-nan column (no seed started yet) stays nan
        med, lo, hi = np.nanmedian(Y, axis=0), np.nanmin(Y, axis=0), np.nanmax(Y, axis=0)
    out = [np.where(np.isfinite(v), v, np.nan) for v in (med, lo, hi)]
    return xs, out[0], out[1], out[2]


def plot_band(ax, curves: Sequence[tuple[Sequence[float], Sequence[float]]], *, color, label: str | None = None,
              lw: float = 1.5, ls: str = "-", alpha: float = 0.18, floor: float | None = None,
              transform: Callable[[np.ndarray], np.ndarray] | None = None):
    """Plot the median over seeds as a line and the min–max over seeds as a shaded band of the same colour
    (one seed: the line alone). ``floor`` clips the values from below (log plots); ``transform`` maps the
    y values (e.g. a moving average) before clipping. Returns the line."""
    if len(curves) == 1:
        x, y = np.asarray(curves[0][0], dtype=float), np.asarray(curves[0][1], dtype=float)
        y = np.where(np.isfinite(y), y, np.nan)
        med = lo = hi = y
    else:
        x, med, lo, hi = band(curves)
    if transform is not None:
        med, lo, hi = transform(med), transform(lo), transform(hi)
    if floor is not None:
        med, lo, hi = (np.where(np.isnan(v), np.nan, np.maximum(v, floor)) for v in (med, lo, hi))
    (line,) = ax.plot(x, med, color=color, lw=lw, ls=ls, label=label)
    if len(curves) > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=alpha, lw=0, step="post")
    return line


__all__ = ["Spread", "as_seed_value", "band", "median", "plot_band", "text_of"]
