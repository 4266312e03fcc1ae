"""Convergence plots in the papers' style: log ||grad f||^2 (or f - f*, or ||x - x*||^2) against
uplink bits per client (or ``bits_total``: uplink + downlink bits per client, or iterations), one line
per method with its stepsize multiplier.

``plot_sweep(out_dir)`` plots the best multiplier of every method of a finished sweep;
``plot_dirs([...])`` any mix of sweep folders and single run folders (``commpress plot``);
``figure(curves, ...)`` returns the matplotlib figure itself (for inspection or further editing).

The y axis is always logarithmic. Values that a log axis cannot show (<= 0, e.g. f - f* below the
precision of f*, or an exact 0) are left out of their line, and a note on the figure counts them.
With several seeds, each method's first seed is drawn bold and the other seeds faint, and two
legend entries say so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from commpress.errors import ConfigError, DataFileError
from commpress.experiments import store
from commpress.experiments.report import multiplier_text, problem_text

X_KINDS = {"bits": ("bits_up", "uplink bits per client"),
           "bits_total": ("bits_total", "total bits per client (uplink + downlink)"),
           "iterations": ("iteration", "iterations")}
Y_KINDS = {
    "grad_norm_sq": ("grad_norm_sq", r"$\|\nabla f(x^k)\|^2$"),
    "loss_gap": ("loss", r"$f(x^k) - f^\star$"),
    "dist": ("dist_sq", r"$\|x^k - x^\star\|^2$"),
}
_TINY = 1e-300


@dataclass
class Curve:
    label: str
    x: list[float]
    y: list[float]
    group: str          # curves of one method share a colour
    first: bool = True  # only the first seed of a (method, multiplier) is in the legend (drawn bold)
    variant: int = 0    # 0: the chosen multiplier (solid, bold); k >= 1: another one (thin, dashed)
    seed: int | None = None  # the run's seed, for the legend's note on bold and faint lines
    masked: int = 0     # points left out because a log axis cannot show them (<= 0)


def _check_kinds(x: str, y: str) -> None:
    if x not in X_KINDS:
        raise ConfigError(f"plot x must be one of {list(X_KINDS)}; got {x!r}.")
    if y not in Y_KINDS:
        raise ConfigError(f"plot y must be one of {list(Y_KINDS)}; got {y!r}.")


def x_values(metrics: dict[str, Any], x: str) -> list[float]:
    """The x values of a run's metrics: a column, or ``bits_total`` = ``bits_up + bits_down`` per client
    (bidirectional compression: every client's uplink plus what it received)."""
    if x == "bits_total":
        return [float(u) + float(d) for u, d in zip(metrics["bits_up"], metrics["bits_down"])]
    return [float(v) for v in metrics[X_KINDS[x][0]]]


def _series(run: dict[str, Any], x: str, y: str) -> tuple[list[float], list[float], int]:
    """(x values, y values with NaN where not drawable, count of values <= 0 left out)."""
    m = run["metrics"]
    xs = x_values(m, x)
    if y == "grad_norm_sq":
        ys = m["grad_norm_sq"]
    elif y == "loss_gap":
        f_star = run["summary"].get("f_star")
        if f_star is None:
            raise DataFileError(f"{run['dir']}: f* is not known for this problem, so f - f* cannot be plotted; "
                                "use --y grad_norm_sq.")
        ys = [v - float(f_star) for v in m["loss"]]
    else:
        if "dist_sq" not in m:
            raise DataFileError(f"{run['dir']}: x* is not known for this problem, so ||x - x*||^2 was not recorded; "
                                "use --y grad_norm_sq.")
        ys = m["dist_sq"]
    ys = [float(v) for v in ys]
    masked = sum(1 for v in ys if math.isfinite(v) and v <= 0.0)
    return xs, [v if math.isfinite(v) and v > 0.0 else math.nan for v in ys], masked


def _is_sweep(path: Path) -> bool:
    return (path / "summary.json").is_file() and (path / "runs").is_dir()


def sweep_curves(out_dir: Path, x: str, y: str, all_multipliers: bool = False) -> tuple[list[Curve], dict]:
    """Curves of a sweep folder: per method its chosen multiplier (or every multiplier)."""
    summary = json.loads((Path(out_dir) / "summary.json").read_text())
    curves = []
    for label, method in summary["methods"].items():
        chosen = method["stepsize_multiplier"]
        picks = method["multipliers"].items() if all_multipliers else [(f"{chosen:g}", {"run_ids": method["run_ids"]})]
        others = 0
        for mult_text, cand in picks:
            is_chosen = float(mult_text) == chosen
            variant = 0 if is_chosen else others + 1
            others += not is_chosen
            for i, run_id in enumerate(cand["run_ids"]):
                run = store.load_run(Path(out_dir) / "runs" / run_id)
                xs, ys, masked = _series(run, x, y)
                mark = " *" if all_multipliers and is_chosen else ""
                name = f"{label} ({multiplier_text(float(mult_text))}){mark}"
                curves.append(Curve(name, xs, ys, group=label, first=i == 0, variant=variant,
                                    seed=run["spec"].get("seed"), masked=masked))
    return curves, summary


def run_curve(run_dir: Path, x: str, y: str) -> Curve:
    run = store.load_run(run_dir)
    xs, ys, masked = _series(run, x, y)
    s = run["summary"]
    label = f"{s.get('label') or run_dir.name} ({multiplier_text(float(s['stepsize_multiplier']))})"
    return Curve(label, xs, ys, group=label, seed=run["spec"].get("seed"), masked=masked)


def _title(summary: dict | None) -> str:
    if not summary:
        return ""
    seeds = len(summary.get("seeds") or [])
    tail = f", {seeds} seeds" if seeds > 1 else ""
    return f"{summary['name']}: {problem_text(summary['problem'])}{tail}"


def _bits_label(v: float, _pos=None) -> str:
    """Tick labels 0, 250k, 1.5M, 2G."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:g}{unit}"
    return f"{v:g}"


def _seeds_text(seeds: set) -> str:
    known = sorted(s for s in seeds if s is not None)
    if not known:
        return "seeds"
    return f"seed {known[0]}" if len(known) == 1 else f"seeds {', '.join(map(str, known))}"


def _seed_legend(curves: list[Curve]) -> list[Any]:
    """Proxy legend entries explaining bold and faint lines; none when every line is its own seed."""
    from matplotlib.lines import Line2D

    faint = {c.seed for c in curves if not c.first}
    if not faint:
        return []
    bold = {c.seed for c in curves if c.first}
    n = len(bold | faint)
    return [Line2D([], [], color="0.25", lw=1.9, label=f"bold: {_seeds_text(bold)} (of {n} seeds)"),
            Line2D([], [], color="0.25", lw=1.1, alpha=0.35, label=f"faint: {_seeds_text(faint)}, same method")]


def figure(curves: list[Curve], *, x: str, y: str, title: str = "", target: float | None = None) -> Any:
    """The matplotlib figure: log y against linear x, a colour per method (close it when done)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (the bits formatter)

    groups = list(dict.fromkeys(c.group for c in curves))
    cmap = plt.get_cmap("tab10")
    styles = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]
    entries = sum(c.first for c in curves) + (2 if any(not c.first for c in curves) else 0)
    wide = entries > 8
    fig, ax = plt.subplots(figsize=(10.0 if wide else 7.5, 5.0))
    # values given directly (not through _series) may still hold points a log axis cannot show
    curves = [replace(c, y=[v if math.isfinite(v) and v > 0.0 else math.nan for v in c.y],
                      masked=c.masked + sum(1 for v in c.y if math.isfinite(v) and v <= 0.0)) for c in curves]
    for c in curves:
        k = groups.index(c.group)
        ls = "-" if c.variant == 0 else styles[(c.variant - 1) % len(styles)]
        alpha = (1.0 if c.variant == 0 else 0.7) if c.first else 0.35
        lw = 1.9 if c.variant == 0 and c.first else 1.1  # other seeds: thin and faint
        ax.plot(c.x, c.y, color=cmap(k % 10), ls=ls, lw=lw, alpha=alpha,
                label=c.label if c.first else None)
    if target is not None and y == "grad_norm_sq":
        ax.axhline(target, color="0.35", ls=":", lw=1.0, label=f"target {target:g}")
    # Always log: within less than a decade matplotlib labels the minor ticks instead.
    ax.set_yscale("log")
    starts = [next((v for v in c.y if math.isfinite(v)), None) for c in curves]
    starts = [v for v in starts if v is not None]
    finite = [v for c in curves for v in c.y if math.isfinite(v) and v > _TINY]
    if not finite:  # nothing drawable: a unit decade instead of matplotlib's warning about no data
        ax.set_ylim(0.1, 10.0)
    if starts and finite and max(finite) > 100 * max(starts):
        # diverging runs leave the plot instead of squashing the others
        low = min(finite + ([target] if target is not None and y == "grad_norm_sq" else []))
        ax.set_ylim(low / 3, 100 * max(starts))
    ax.set_xlabel(X_KINDS[x][1])
    ax.set_ylabel(Y_KINDS[y][1])
    if x in ("bits", "bits_total"):
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_bits_label))
    ax.set_xlim(left=0)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    masked = sum(c.masked for c in curves)
    if masked:
        hint = " (f* is known only to finite precision)" if y == "loss_gap" else ""
        ax.text(0.01, 0.01, f"{masked} point{'s' if masked != 1 else ''} <= 0 not drawn on the log axis{hint}",
                transform=ax.transAxes, fontsize=7, color="0.3", ha="left", va="bottom")
    handles, _ = ax.get_legend_handles_labels()
    handles += _seed_legend(curves)
    if wide:
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    else:
        ax.legend(handles=handles, fontsize=8, loc="upper right", framealpha=0.9)
    fig.tight_layout()
    return fig


def draw(curves: list[Curve], path: Path, *, x: str, y: str, title: str = "", target: float | None = None) -> Path:
    """One PNG (see :func:`figure`), written atomically; returns its path."""
    import matplotlib.pyplot as plt

    fig = figure(curves, x=x, y=y, title=title, target=target)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_sweep(out_dir: str | Path, x: str = "bits", y: str = "grad_norm_sq", path: str | Path | None = None,
               all_multipliers: bool = False) -> Path:
    """The plot of a finished sweep folder; written to ``OUT/<y>_vs_<x>.png`` unless ``path``."""
    _check_kinds(x, y)
    out_dir = Path(out_dir)
    curves, summary = sweep_curves(out_dir, x, y, all_multipliers)
    target = summary.get("target")
    return draw(curves, Path(path) if path else out_dir / f"{y}_vs_{x}.png", x=x, y=y, title=_title(summary),
                target=target)


def plot_dirs(dirs: list[str | Path], x: str = "bits", y: str = "grad_norm_sq", path: str | Path | None = None,
              all_multipliers: bool = False) -> Path:
    """One plot of several sweep and/or run folders (``commpress plot``)."""
    _check_kinds(x, y)
    curves: list[Curve] = []
    summaries = []
    for d in map(Path, dirs):
        if _is_sweep(d):
            c, s = sweep_curves(d, x, y, all_multipliers)
            curves += c
            summaries.append(s)
        elif (d / store.DONE).is_file() or (d / "config.json").is_file() and (d / "metrics.csv").is_file():
            curves.append(run_curve(d, x, y))
        else:
            raise DataFileError(f"{str(d)!r} is neither a sweep folder (with summary.json and runs/) nor a run "
                                "folder (with done.json); give the --out folder of 'commpress run' or one of its runs/*.")
    if not curves:
        raise DataFileError("nothing to plot.")
    if path is None:
        path = Path(dirs[0]) / f"{y}_vs_{x}.png"
    targets = {s.get("target") for s in summaries}
    title = _title(summaries[0]) if len(summaries) == 1 else ""
    return draw(curves, Path(path), x=x, y=y, title=title, target=targets.pop() if len(targets) == 1 else None)
