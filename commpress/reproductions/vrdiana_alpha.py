"""Claim check of ``vrdiana-alpha`` (VR-DIANA poster, Figure 1): the shift stepsize α of VR-DIANA.
See ``vrdiana-alpha.toml`` for the claim and the choices.

The verdicts are pure functions of measured numbers (:func:`linear_verdict` from
:mod:`.vrdiana`, :func:`monotone_verdict`, :func:`breaks_verdict`), tested on synthetic numbers.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.reproductions._curves import mean_curve, rounded, run_series
from commpress.reproductions._results import Claim
from commpress.reproductions.vrdiana import linear_verdict

VARIANTS = {"lsvrg": "L-SVRG", "saga": "SAGA"}


# ----------------------------------------------------------------------------- pure verdicts
def monotone_verdict(alphas: list[float], iterations: list[float | None], tol: float = 0.0) -> tuple[bool, list]:
    """Larger α converges no slower: sorted by α, the iterations to the level never increase by
    more than ``tol`` (None = never reached = infinite). Returns (held, the offending pairs)."""
    pts = sorted(zip(alphas, [math.inf if k is None else float(k) for k in iterations]))
    bad = [(a0, a1) for (a0, k0), (a1, k1) in zip(pts, pts[1:]) if k1 > k0 + tol]
    return not bad, bad


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


def measure(results) -> list[dict[str, Any]]:
    level = float(results.params["level"])
    panel = next(iter(results.panels.values()))
    rows = []
    for label in panel.methods:
        m = panel.method(label)
        entry = panel.summary["methods"][label]
        params = m.runs[0]["summary"]["params"]
        gap = mean_curve([run_series(r, "iteration", "rel_gap") for r in m.runs])
        dist = mean_curve([run_series(r, "iteration", "rel_dist") for r in m.runs])
        hit = next((int(t) for t, v in zip(gap.x, gap.y) if v <= level), None)
        a_star = _alpha_star(panel, entry)
        rows.append({"label": label, "variant": params["variant"], "alpha": float(params["alpha"]),
                     "alpha_star": a_star, "ratio": float(params["alpha"]) / a_star,
                     "stepsize": float(m.runs[0]["summary"]["stepsize"]),
                     "final_rel_gap": gap.y[-1], "final_rel_dist": dist.y[-1], "iterations": gap.x[-1],
                     "iterations_to_level": None if gap.diverged else hit, "diverged": gap.diverged})
    return rows


def compute(results) -> None:
    results.data["rows"] = measure(results)
    panel = next(iter(results.panels.values()))
    results.data["record_every"] = panel.config.run.record_every


# ----------------------------------------------------------------------------- claims
def check(results) -> list[Claim]:
    level = float(results.params["level"])
    rows = results.data["rows"]
    tol = float(results.data.get("record_every", 0))
    inside = [r for r in rows if r["ratio"] <= 1 + 1e-6]
    outside = [r for r in rows if r["ratio"] > 2 + 1e-6]
    claims = []
    held = all(linear_verdict(r["final_rel_gap"], r["final_rel_dist"], level) for r in inside)
    slow = [r["label"] for r in inside if not linear_verdict(r["final_rel_gap"], r["final_rel_dist"], level)]
    claims.append(Claim(
        f"Every α ≤ 1/(ω+1) converges linearly: relative f − f* and ‖x − x*‖² ≤ {level:g} within the budget",
        held, {r["label"]: {"rel gap": rounded(r["final_rel_gap"]), "rel dist": rounded(r["final_rel_dist"])}
               for r in inside},
        "" if held else f"{', '.join(slow)} did not get there within {rows[0]['iterations']:,.0f} iterations: with a "
                        "small α the shifts h_i learn the local gradients at rate about α, slower than the γμ rate of "
                        "the iterates, and the budget ends first."))
    per, bad_all = {}, []
    for variant, name in VARIANTS.items():
        mine = [r for r in inside if r["variant"] == variant]
        if len(mine) < 2:
            continue
        ok, bad = monotone_verdict([r["alpha"] for r in mine], [r["iterations_to_level"] for r in mine], tol)
        per[name] = {f"α/α*={r['ratio']:.3g}": r["iterations_to_level"] if r["iterations_to_level"] is not None
                     else "not reached" for r in sorted(mine, key=lambda r: r["alpha"])}
        bad_all += [f"{name}: α = {a0:.3g} → {a1:.3g}" for a0, a1 in bad]
    claims.append(Claim(
        f"Larger α up to 1/(ω+1) converges no slower: iterations to a relative gap of {level:g} do not increase "
        f"with α (up to the recording step of {tol:g} iterations)",
        not bad_all, per,
        "" if not bad_all else f"slower at the larger α in {'; '.join(bad_all)}: once α exceeds about 2γμ the shifts are no "
                               "longer the bottleneck, and the extra variance α²ω of a larger shift step can cost a few "
                               "iterations."))
    held = bool(outside) and all(breaks_verdict(r["final_rel_gap"], r["diverged"], level) for r in outside)
    claims.append(Claim(
        f"α far beyond 1/(ω+1) (here {', '.join(sorted({format(r['ratio'], '.3g') + '/(ω+1)' for r in outside})) or 'none tested'}, "
        "where (1 − α)² + α²ω > 1) loses the linear convergence",
        held, {r["label"]: {"rel gap": rounded(r["final_rel_gap"]), "diverged": r["diverged"],
                            "iterations to level": r["iterations_to_level"]} for r in outside},
        "" if held else "it still converged: ω is the worst case over all vectors (the sup of the error ratio), while "
                        "the differences g_i − h_i met in the run are quantized with a much smaller error ratio, "
                        "so the shifts still contract."))
    return claims


# ----------------------------------------------------------------------------- figure and report
def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from commpress.reproductions._figure import finish_figure

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
                cv = mean_curve([run_series(x, "iteration", y) for x in runs])
                ys = [max(v, 1e-16) if math.isfinite(v) else math.nan for v in cv.y]  # round-off: f − f* can be ≤ 0
                axes[row][col].plot(cv.x, ys, color=colour[round(r["ratio"], 6)], lw=1.5,
                                    ls="--" if r["ratio"] > 1 + 1e-6 else "-",
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
    return finish_figure(fig, results, path, f"{results.name}: {results.spec.title}")


def report_extra(results) -> str:
    from commpress.reproductions._report import fmt

    rows = results.data["rows"]
    r0 = rows[0]
    lines = ["## Measured numbers", "",
             f"α* = 1/(ω+1) = {fmt(r0['alpha_star'])}; γ = {fmt(r0['stepsize'])} for every run "
             f"(Theorem 1's stepsize × the multiplier of the file).", "",
             "| method | α | α/α* | final rel. gap | final rel. distance | iterations to rel. gap "
             f"{float(results.params['level']):g} |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["variant"], r["alpha"])):
        hit = "diverged" if r["diverged"] else (fmt(r["iterations_to_level"]) if r["iterations_to_level"] is not None
                                                else "not reached")
        lines.append(f"| {r['label']} | {fmt(r['alpha'])} | {fmt(r['ratio'])} | {fmt(r['final_rel_gap'])} | "
                     f"{fmt(r['final_rel_dist'])} | {hit} |")
    return "\n".join(lines) + "\n"


__all__ = ["breaks_verdict", "check", "compute", "figure", "measure", "monotone_verdict", "report_extra"]
