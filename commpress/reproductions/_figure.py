"""The default figure of a reproduction: one subplot per panel, in the style of the papers'
convergence plots (log :math:`\\|\\nabla f(x^k)\\|^2` against uplink bits per client), one colour per
method across all subplots, each method at its selected stepsize multiplier (legend ``γ×k``): the
median over seeds as a line and the min–max over seeds as a shaded band of the same colour."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from commpress.experiments.plots import X_KINDS, Y_KINDS, _bits_label, x_values
from commpress.reproductions._seeds import plot_band

_TINY = 1e-300


def _y_values(run: dict[str, Any], y: str) -> list[float]:
    m = run["metrics"]
    if y == "grad_norm_sq":
        ys = m["grad_norm_sq"]
    elif y == "loss_gap":
        f_star = run["summary"].get("f_star")
        ys = [v - float(f_star) for v in m["loss"]] if f_star is not None else [math.nan for _ in m["loss"]]
    else:
        ys = m.get("dist_sq", [math.nan for _ in m["loss"]])
    return [max(float(v), _TINY) if math.isfinite(float(v)) else math.nan for v in ys]


def panel_title(panel) -> str:
    """The panel's label and, for problems with known constants, L_-, L_+ and L_±."""
    label = panel.label or panel.name
    try:
        c = panel.constants()
    except Exception:  # noqa: BLE001 - a problem without constants: the label alone
        return label
    if c["exact"]:
        return f"{label}\n$L_-$={c['L_minus']:.3g}, $L_+$={c['L_plus']:.3g}, $L_\\pm$={c['L_pm']:.3g}"
    return panel.label or f"{panel.name}: n={c['n']}, d={c['d']}"  # constants are bounds here: not shown


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path


def _fit_heading(fig, heading: str, fontsize: float) -> str:
    """``heading`` with every line that is wider than the figure wrapped at spaces to fit it."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    room = 0.92 * fig.bbox.width

    def width(text: str) -> float:
        probe = fig.text(0, 0, text, fontsize=fontsize)
        try:
            return probe.get_window_extent(renderer).width
        finally:
            probe.remove()

    lines = []
    for line in heading.split("\n"):
        chars = len(line)
        pieces = [line]
        while chars > 10 and max(map(width, pieces)) > room:
            chars -= max(1, chars // 20)
            pieces = textwrap.wrap(line, chars, break_long_words=False)
        lines += pieces
    return "\n".join(lines)


def finish_figure(fig, results, path: Path, heading: str, fontsize: int = 10) -> Path:
    """Title the figure (marked ``[--quick]`` for quick runs; lines too wide for the figure wrapped),
    lay it out, write it atomically, close it."""
    import matplotlib.pyplot as plt

    heading = _fit_heading(fig, heading + ("  [--quick]" if results.quick else ""), fontsize)
    fig.suptitle(heading, fontsize=fontsize)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def convergence_figure(results, path: Path, *, panels: list[str] | None = None, title: str | None = None,
                       titles: dict[str, str] | None = None) -> Path:
    """Write the default figure of ``results`` to ``path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig_spec = results.spec.figure
    x, y = fig_spec.x, fig_spec.y
    names = panels or list(results.panels)
    cols = min(fig_spec.columns, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.5 * rows + 0.9), squeeze=False)
    labels: list[str] = []
    for pname in names:
        labels += [m for m in results.panel(pname).methods if m not in labels]
    cmap = plt.get_cmap("tab10")
    for k, pname in enumerate(names):
        ax = axes[k // cols][k % cols]
        panel = results.panel(pname)
        for label in panel.methods:
            m = panel.method(label)
            colour = cmap(labels.index(label) % 10)
            curves = [(x_values(run["metrics"], x), _y_values(run, y)) for run in m.runs]
            off = " →" if label in fig_spec.xmax_exclude else ""
            seeds = f", {len(curves)} seeds" if len(curves) > 1 else ""
            plot_band(ax, curves, color=colour, lw=1.6, label=f"{label} (γ×{m.multiplier:g}{seeds}){off}")
        kept = [x_values(r["metrics"], x)[-1] for label in panel.methods
                if label not in fig_spec.xmax_exclude for r in panel.method(label).runs]
        if fig_spec.xmax_exclude and kept:
            ax.set_xlim(right=1.1 * max(kept))
        if panel.target is not None and y == "grad_norm_sq":
            ax.axhline(panel.target, color="0.4", ls=":", lw=1.0)
        ax.set_yscale("log")
        ax.set_xlabel(X_KINDS[x][1])
        ax.set_ylabel(Y_KINDS[y][1])
        if x in ("bits", "bits_total"):
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_bits_label))
        ax.set_xlim(left=0)
        ax.set_title((titles or {}).get(pname) or panel_title(panel), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    return finish_figure(fig, results, path, (title or fig_spec.title or f"{results.name}: {results.spec.title}")
                         + seeds_caption(results), fontsize=11)


def seeds_caption(results) -> str:
    """``"\\n(median over N seeds, band: min–max)"`` for a figure's heading; empty for one seed."""
    n = max((len(p.config.run.seeds) for p in results.panels.values()), default=1)
    return f"\n(lines: median over {n} seeds; bands: min–max over the seeds)" if n > 1 else ""
