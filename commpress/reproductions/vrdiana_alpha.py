"""Claim check of ``vrdiana-alpha`` (VR-DIANA poster, Figure 1): the shift stepsize α of VR-DIANA.
See ``vrdiana-alpha.toml`` for the claim and the choices.

The verdicts are pure functions of measured numbers (:func:`linear_verdict` from
:mod:`.vrdiana`, :func:`monotone_verdict`, :func:`breaks_verdict`), tested on synthetic numbers;
the numbers are medians over seeds (min–max in the report, bands in the figure).
"""

from __future__ import annotations

import math
from typing import Any

from commpress.reproductions._curves import run_series
from commpress.reproductions._report import fmt
from commpress.reproductions._results import Claim
from commpress.reproductions._seeds import Spread, plot_band
from commpress.reproductions.vrdiana import linear_verdict, row_text

VARIANTS = {"lsvrg": "L-SVRG", "saga": "SAGA"}


# ----------------------------------------------------------------------------- pure verdicts
def monotone_verdict(alphas: list[float], iterations: list[float | None], tol: float = 0.0) -> tuple[bool, list]:
    """Larger α converges no slower: sorted by α, the iterations to the level never increase by
    more than ``tol`` (None = never reached = infinite). Returns (held, the offending pairs)."""
    pts = sorted(zip(alphas, [math.inf if k is None else float(k) for k in iterations]))
    bad = [(a0, a1) for (a0, k0), (a1, k1) in zip(pts, pts[1:]) if k1 > k0 + tol]
    return not bad, bad


def undecided_pairs(alphas: list[float], iterations: list[float | None]) -> list[tuple[float, float]]:
    """Neighbouring α (sorted) whose order :func:`monotone_verdict` cannot decide: neither reached the level
    (inf and inf)."""
    pts = sorted(zip(alphas, [math.inf if k is None else float(k) for k in iterations]))
    return [(a0, a1) for (a0, k0), (a1, k1) in zip(pts, pts[1:]) if math.isinf(k0) and math.isinf(k1)]


def breaks_verdict(final_rel_gap: float, diverged: bool, level: float) -> bool:
    """The method does *not* converge linearly: diverged, or its relative gap at the end is above ``level``."""
    return bool(diverged or not (math.isfinite(final_rel_gap) and final_rel_gap <= level))


# ----------------------------------------------------------------------------- measurements
def _alpha_star(panel, entry: dict[str, Any]) -> float:
    from commpress.compressors import make

    spec = dict(entry["compressor"])
    problem = panel.problem()
    omega = make(spec.pop("name"), **spec).theory(problem.n, problem.d).omega
    return 1.0 / (1.0 + float(omega))


def _seed_numbers(run, level: float) -> dict[str, float]:
    """One seed: final relative gap and distance (inf if diverged), iterations to a relative gap <= ``level``
    (inf if never or diverged)."""
    gap, dist = run_series(run, "iteration", "rel_gap"), run_series(run, "iteration", "rel_dist")
    if gap.diverged:
        return {"final_rel_gap": math.inf, "final_rel_dist": math.inf, "iterations_to_level": math.inf}
    hit = next((t for t, v in zip(gap.x, gap.y) if v <= level), None)
    return {"final_rel_gap": gap.y[-1], "final_rel_dist": dist.y[-1],
            "iterations_to_level": math.inf if hit is None else float(hit)}


def measure(results) -> list[dict[str, Any]]:
    """One row per method (α, variant): medians over seeds of :func:`_seed_numbers` (iterations to the level
    None when the median seed never got there), the number of diverged seeds, each number's min–max."""
    level = float(results.params["level"])
    panel = next(iter(results.panels.values()))
    rows = []
    for label in panel.methods:
        m = panel.method(label)
        entry = panel.summary["methods"][label]
        params = m.runs[0]["summary"]["params"]
        seeds = [_seed_numbers(r, level) for r in m.runs]
        spread = {k: Spread.of(s[k] for s in seeds) for k in ("final_rel_gap", "final_rel_dist", "iterations_to_level")}
        hit = spread["iterations_to_level"].median
        a_star = _alpha_star(panel, entry)
        rows.append({"label": label, "variant": params["variant"], "alpha": float(params["alpha"]),
                     "alpha_star": a_star, "ratio": float(params["alpha"]) / a_star,
                     "stepsize": float(m.runs[0]["summary"]["stepsize"]),
                     "final_rel_gap": spread["final_rel_gap"].median, "final_rel_dist": spread["final_rel_dist"].median,
                     "iterations": run_series(m.runs[0], "iteration", "rel_gap").x[-1],
                     "iterations_to_level": hit if math.isfinite(hit) else None,
                     "diverged": sum(math.isinf(s["final_rel_gap"]) for s in seeds), "seeds": len(seeds),
                     "spread": {k: v.as_dict() for k, v in spread.items()}})
    return rows


def compute(results) -> None:
    results.data["rows"] = measure(results)
    panel = next(iter(results.panels.values()))
    results.data["record_every"] = panel.config.run.record_every


def _show_hit(v: float) -> str:
    return "not reached" if math.isinf(v) else fmt(v)


def _majority_diverged(r: dict[str, Any]) -> bool:
    return 2 * r.get("diverged", 0) > r.get("seeds", 1)


# ----------------------------------------------------------------------------- claims
def check(results) -> list[Claim]:
    """Three claims on medians over seeds (see ``vrdiana-alpha.toml``); each is not measurable rather than held
    vacuously: no α ≤ 1/(ω+1) tested, no variant with two such α, two α that both never reached the level,
    no α far beyond 1/(ω+1) tested, or no run with α ≤ 1/(ω+1) that converged (nothing to lose)."""
    level = float(results.params["level"])
    rows = results.data["rows"]
    tol = float(results.data.get("record_every", 0))
    inside = [r for r in rows if r["ratio"] <= 1 + 1e-6]
    outside = [r for r in rows if r["ratio"] > 2 + 1e-6]
    claims = []

    # 1. every α <= α* converges linearly
    linear = {r["label"]: linear_verdict(r["final_rel_gap"], r["final_rel_dist"], level) for r in inside}
    slow = [k for k, v in linear.items() if not v]
    nan = [r["label"] for r in inside if math.isnan(r["final_rel_gap"]) or math.isnan(r["final_rel_dist"])]
    why = ("no α ≤ 1/(ω+1) was tested" if not inside else
           f"the relative gap or distance of {', '.join(nan)} is nan (f* or x* not known)" if nan else "")
    held = not why and not slow
    claims.append(Claim(
        f"Every α ≤ 1/(ω+1) converges linearly: relative f − f* and ‖x − x*‖² ≤ {level:g} within the budget "
        "(medians over seeds)",
        held, {r["label"]: {"rel gap": row_text(r, "final_rel_gap"), "rel dist": row_text(r, "final_rel_dist")}
               for r in inside},
        "" if held or why else f"{', '.join(slow)} did not get there within {rows[0]['iterations']:,.0f} iterations: "
                               "with a small α the shifts h_i learn the local gradients at rate about α, slower than "
                               "the γμ rate of the iterates, and the budget ends first.", why))

    # 2. larger α (up to α*) converges no slower
    per, bad_all, open_all, tested = {}, [], [], []
    for variant, name in VARIANTS.items():
        mine = [r for r in inside if r["variant"] == variant]
        if len(mine) < 2:
            continue
        tested.append(name)
        alphas, hits = [r["alpha"] for r in mine], [r["iterations_to_level"] for r in mine]
        ok, bad = monotone_verdict(alphas, hits, tol)
        per[name] = {f"α/α*={r['ratio']:.3g}": row_text(r, "iterations_to_level", _show_hit)
                     for r in sorted(mine, key=lambda r: r["alpha"])}
        bad_all += [f"{name}: α = {a0:.3g} → {a1:.3g}" for a0, a1 in bad]
        open_all += [f"{name}: α = {a0:.3g} and {a1:.3g}" for a0, a1 in undecided_pairs(alphas, hits)]
    if bad_all:
        why = ""
    elif not tested:
        why = "no variant was run at two or more α ≤ 1/(ω+1): nothing to compare"
    elif open_all:
        why = (f"neither of {'; '.join(open_all)} reached a relative gap of {level:g} (median over seeds): "
               "their order is not measured")
    else:
        why = ""
    held = not bad_all and not why
    claims.append(Claim(
        f"Larger α up to 1/(ω+1) converges no slower: iterations to a relative gap of {level:g} do not increase "
        f"with α (up to the recording step of {tol:g} iterations; medians over seeds)",
        held, per or {"variants with two or more α ≤ 1/(ω+1)": 0},
        "" if not bad_all else f"slower at the larger α in {'; '.join(bad_all)}: once α exceeds about 2γμ the shifts "
                               "are no longer the bottleneck, and the extra variance α²ω of a larger shift step can "
                               "cost a few iterations.", why))

    # 3. α far beyond α* breaks the linear convergence (only meaningful where some α <= α* converged)
    breaks = {r["label"]: breaks_verdict(r["final_rel_gap"], _majority_diverged(r), level) for r in outside}
    converged = [k for k, v in linear.items() if v]
    if not outside:
        why = "no α beyond 2/(ω+1) was tested"
    elif not converged:
        why = ("no run with α ≤ 1/(ω+1) converged linearly either: a failure at a large α would say nothing about "
               "α")
    elif any(math.isnan(r["final_rel_gap"]) for r in outside):
        why = "the relative gap of a large-α run is nan (f* not known)"
    else:
        why = ""
    held = not why and all(breaks.values())
    claims.append(Claim(
        f"α far beyond 1/(ω+1) (here {', '.join(sorted({format(r['ratio'], '.3g') + '/(ω+1)' for r in outside})) or 'none tested'}, "
        "where (1 − α)² + α²ω > 1) loses the linear convergence (medians over seeds)",
        held, {r["label"]: {"rel gap": row_text(r, "final_rel_gap"), "diverged seeds": f"{r['diverged']} of {r['seeds']}",
                            "iterations to level": row_text(r, "iterations_to_level", _show_hit)} for r in outside}
        or {"runs with α > 2/(ω+1)": 0},
        "" if held or why else "it still converged: ω is the worst case over all vectors (the sup of the error "
                               "ratio), while the differences g_i − h_i met in the run are quantized with a much "
                               "smaller error ratio, so the shifts still contract.", why))
    return claims


# ----------------------------------------------------------------------------- figure and report
def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from commpress.reproductions._figure import finish_figure, seeds_caption

    panel = next(iter(results.panels.values()))
    rows = results.data["rows"]
    ratios = sorted({round(r["ratio"], 6) for r in rows})
    cmap = plt.get_cmap("viridis")
    colour = {q: cmap(k / max(1, len(ratios) - 1)) for k, q in enumerate(ratios)}
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.2), squeeze=False)
    for col, (variant, name) in enumerate(VARIANTS.items()):
        for r in rows:
            if r["variant"] != variant:
                continue
            runs = panel.method(r["label"]).runs
            for row, y in enumerate(("rel_gap", "rel_dist")):
                curves = [(cv.x, cv.y) for cv in (run_series(x, "iteration", y) for x in runs)]
                # round-off: f − f* can be <= 0, clipped at 1e-16
                plot_band(axes[row][col], curves, color=colour[round(r["ratio"], 6)], lw=1.5,
                          ls="--" if r["ratio"] > 1 + 1e-6 else "-", floor=1e-16,
                          label=f"α = {r['alpha']:.3g} (= {r['ratio']:.3g}/(ω+1))")
        for row, ylabel in enumerate((r"$(f(x^k)-f^\star)/(f(x^0)-f^\star)$", r"$\|x^k-x^\star\|^2/\|x^0-x^\star\|^2$")):
            ax = axes[row][col]
            ax.set_yscale("log")
            ax.set_ylim(3e-17, 1e3)  # a diverging run leaves the plot
            ax.set_xlabel("iterations")
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            prob = panel.config.problem.params
            ax.set_title(f"VR-DIANA ({name}), {prob.get('dataset')}, n = {prob.get('n_clients')}, "
                         f"λ₂ = {prob.get('l2'):g}", fontsize=9)
            ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    return finish_figure(fig, results, path, f"{results.name}: {results.spec.title}" + seeds_caption(results))


def report_extra(results) -> str:
    rows = results.data["rows"]
    r0 = rows[0]
    lines = ["## Measured numbers", "",
             f"α* = 1/(ω+1) = {fmt(r0['alpha_star'])}; γ = {fmt(r0['stepsize'])} for every run "
             f"(Theorem 1's stepsize × the multiplier of the file). `median [min–max]` over the seeds (a diverged "
             "seed counts as inf).", "",
             "| method | α | α/α* | seeds (diverged) | final rel. gap | final rel. distance | iterations to rel. gap "
             f"{float(results.params['level']):g} |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["variant"], r["alpha"])):
        hit = "diverged" if _majority_diverged(r) else row_text(r, "iterations_to_level", _show_hit)
        lines.append(f"| {r['label']} | {fmt(r['alpha'])} | {fmt(r['ratio'])} | {r['seeds']} ({r['diverged']}) | "
                     f"{row_text(r, 'final_rel_gap')} | {row_text(r, 'final_rel_dist')} | {hit} |")
    return "\n".join(lines) + "\n"


__all__ = ["breaks_verdict", "check", "compute", "figure", "measure", "monotone_verdict", "report_extra",
           "undecided_pairs"]
