"""Claim check of ``tamuna`` (CompressedScaffnew and TAMUNA papers): uplink reals per client to a target
against Scaffnew, and linear convergence to the exact solution. See ``tamuna.toml`` for the claim and the
choices. The methods run directly (:mod:`commpress.reproductions._local_training`).

The verdicts are pure functions of the measured numbers (:func:`reals_verdict`, :func:`linear_verdict`),
tested on fabricated numbers too.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.reproductions._local_training import one_thread, run_to_target
from commpress.reproductions._results import Claim
from commpress.reproductions._seeds import Spread, text_of

METHODS = ("Scaffnew", "CompressedScaffnew", "TAMUNA")


# ----------------------------------------------------------------------------- pure verdicts
def reals_verdict(method: list[float | None], scaffnew: list[float | None], limit: float) -> tuple[bool, float, str]:
    """The method's median uplink reals (None = never reached the target: inf) ≤ ``limit`` × Scaffnew's.
    Returns (held, ratio, why unmeasurable or "")."""
    a = Spread.of([math.inf if v is None else v for v in method]).median
    b = Spread.of([math.inf if v is None else v for v in scaffnew]).median
    if not math.isfinite(b) or b <= 0:
        return False, math.nan, "Scaffnew's median seed did not reach the target: no reference"
    if not math.isfinite(a):
        return False, math.inf, "the method's median seed did not reach the target within the budget"
    return a / b <= limit, a / b, ""


def linear_verdict(reached: list[bool]) -> bool:
    """Every seed reached the target within the budget."""
    return bool(reached) and all(reached)


# ----------------------------------------------------------------------------- measurements
def compute(results) -> None:
    with one_thread():
        _compute(results)


def _compute(results) -> None:
    import commpress as cp
    from commpress.reproductions.gradskip import build_problem

    p = results.params
    n, k = int(p["n"]), float(p["kappa_max"])
    P = build_problem([k] + [k / 3.0] * (n - 1), int(p["dim"]), int(p["problem_seed"]))
    _, x_star = P.optimum()
    r0 = float((P.x0() - x_star).pow(2).sum())
    dist = lambda x: float((x - x_star).pow(2).sum()) / r0  # noqa: E731
    setups = {"Scaffnew": ("scaffnew", {}), "CompressedScaffnew": ("compressed_scaffnew", {}),
              "TAMUNA": ("tamuna", {"c": max(2, n // 2)})}
    data: dict[str, Any] = {"n": n, "d": P.d, "kappa_max": k}
    for label, (name, kw) in setups.items():
        runs = []
        for seed in p["seeds"]:
            alg = cp.algorithms.make(name, P, seed=int(seed), **kw)
            out = run_to_target(alg, dist, float(p["target"]), int(p["max_iterations"]))
            reals = alg.network.ledger.mean_total("up") / 32.0
            runs.append({"seed": int(seed), "p": alg.p, "gamma": alg.gamma, "eta": getattr(alg, "eta", None),
                         "c": getattr(alg, "c", n), "reals_up": reals if out["reached"] else None, **out})
        data[label] = runs
    results.data.update(data)


# ----------------------------------------------------------------------------- claims
def check(results) -> list[Claim]:
    p, d = results.params, results.data
    lim = float(p["reals_ratio"])
    ref = [s["reals_up"] for s in d["Scaffnew"]]
    claims = []
    for label, what in (("CompressedScaffnew", "CompressedScaffnew (s = 2, c = n)"),
                        ("TAMUNA", "TAMUNA (s = 2, c = n/2)")):
        runs = d[label]
        held, r, why = reals_verdict([s["reals_up"] for s in runs], ref, lim)
        claims.append(Claim(
            f"{what} reaches ‖x − x*‖²/‖x⁰ − x*‖² ≤ {float(p['target']):g} with ≤ {lim:g}× Scaffnew's uplink reals "
            f"per client (n = {d['n']}, d = {d['d']}, κ_max = {d['kappa_max']:g}; medians over seeds)",
            held, {label: text_of(Spread.of([_inf(s["reals_up"]) for s in runs]).as_dict()),
                   "Scaffnew": text_of(Spread.of([_inf(v) for v in ref]).as_dict()), "ratio": r,
                   "rounds": [s["rounds"] for s in runs], "Scaffnew rounds": [s["rounds"] for s in d["Scaffnew"]]},
            "" if held or why else (f"the ratio {r:.3g} is above {lim:g}: at this n and d the ≈ 2d/c reals per round do not "
                                    "make up for the extra rounds the sparsified averaging needs."), why))
    reached = {label: [bool(s["reached"]) for s in d[label]] for label in METHODS}
    held = all(linear_verdict(v) for v in reached.values())
    claims.append(Claim(
        f"All three methods converge to the exact solution (every seed reaches {float(p['target']):g} within the budget)",
        held, {label: f"{sum(v)} of {len(v)} seeds" for label, v in reached.items()},
        "" if held else "some seed stopped short of the target within the iteration budget."))
    return claims


def _inf(v: float | None) -> float:
    return math.inf if v is None else v


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from commpress.reproductions._figure import finish_figure

    d = results.data
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"Scaffnew": "tab:blue", "CompressedScaffnew": "tab:red", "TAMUNA": "tab:green"}
    for label in METHODS:
        for k, s in enumerate(d[label]):
            x, y = zip(*s["curve"])
            per_round = (s["reals_up"] / s["rounds"]) if s["reals_up"] and s["rounds"] else math.nan
            axes[0].plot(x, [max(v, 1e-20) for v in y], color=colors[label], lw=1, alpha=0.7,
                         label=label if k == 0 else None)
            axes[1].plot([r * per_round for r in x], [max(v, 1e-20) for v in y], color=colors[label], lw=1,
                         alpha=0.7, label=label if k == 0 else None)
    for ax, xl in zip(axes, ("communication rounds", "uplink reals per client (average rate)")):
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel(r"$\|x-x^\star\|^2/\|x^0-x^\star\|^2$")
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    return finish_figure(fig, results, path, f"{results.name}: n = {d['n']}, d = {d['d']}, κ_max = {d['kappa_max']:g}")


def report_extra(results) -> str:
    d = results.data
    lines = ["## Measured numbers", "", "| method | seed | c | p | η | rounds | iterations | uplink reals per client |",
             "|---|---|---|---|---|---|---|---|"]
    for label in METHODS:
        for s in d[label]:
            eta = "–" if s["eta"] is None else f"{s['eta']:.4g}"
            reals = "not reached" if s["reals_up"] is None else f"{s['reals_up']:,.0f}"
            lines.append(f"| {label} | {s['seed']} | {s['c']} | {s['p']:.4g} | {eta} | {s['rounds']} | "
                         f"{s['iterations']} | {reals} |")
    return "\n".join(lines + [""])


__all__ = ["check", "compute", "figure", "linear_verdict", "reals_verdict", "report_extra"]
