"""Claim check of ``ef21-bc`` (EF21-BC of *EF21 with Bells & Whistles*, Fatkhullin et al.): EF21-BC with
Top-k both ways against EF21 with a dense downlink, in total (uplink + downlink) bits per worker. See
``ef21-bc.toml`` for the claim and the choices.

Verdicts are pure functions of medians over seeds
(:func:`~commpress.reproductions._bidirectional.fewer_verdict`, :func:`reduction_verdict`), tested on fake
numbers.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.reproductions._bidirectional import fewer_verdict, select_to_level, show_bits, spread_to_level
from commpress.reproductions._results import Claim
from commpress.reproductions._seeds import text_of

BC, EF21 = "EF21-BC (Top-1 both ways)", "EF21 (dense downlink)"
METHODS = (BC, EF21)


def reduction_verdict(max_diff: float, tol: float) -> bool:
    """C_M = I gives EF21's iterates: the largest difference over the rounds is at most ``tol``."""
    return math.isfinite(max_diff) and max_diff <= tol


def reduction_gap(problem, rounds: int) -> float:
    """max_t ‖x_t(EF21-BC, C_M = I) − x_t(EF21)‖_∞ (Top-1 uplink, same stepsize, exact downlinks)."""
    import commpress.algorithms  # noqa: F401
    from commpress import algorithms, compressors

    exact = compressors.make("identity", float_bits=64)
    top1 = compressors.make("topk", k=1)
    ef21 = algorithms.make("ef21", problem, compressor=top1, downlink_compressor=exact)
    bc = algorithms.make("ef21_bc", problem, compressor=top1, downlink_compressor=exact, g0_broadcast="compressed",
                         gamma=ef21.gamma)
    a, b = ef21.init(), bc.init()
    worst = float((ef21.output(a) - bc.output(b)).abs().max())
    for _ in range(rounds):
        a, b = ef21.step(a), bc.step(b)
        worst = max(worst, float((ef21.output(a) - bc.output(b)).abs().max()))
    return worst if math.isfinite(worst) else math.inf


def measure_panel(panel) -> dict[str, Any]:
    """Per method at the multiplier with the fewest median bits_total to the sweep's target: bits_total,
    uplink bits, downlink bits and rounds to the target (spreads over seeds)."""
    level = float(panel.target)
    rows = {}
    for label in METHODS:
        if label not in panel.methods:
            continue
        sel = select_to_level(panel, label, level)
        rows[label] = {"multiplier": sel.multiplier, "edge": sel.at_grid_edge,
                       "stepsize": float(sel.runs[0]["summary"].get("stepsize") or math.nan),
                       **{k: spread_to_level(sel, level, x=x).as_dict() for k, x in
                          (("bits_total", "bits_total"), ("bits_up", "bits_up"), ("bits_down", "bits_down"),
                           ("rounds", "iteration"))}}
    return rows


def compute(results) -> None:
    for name, panel in results.panels.items():
        results.data[name] = {"rows": measure_panel(panel),
                              "reduction_max_diff": reduction_gap(panel.problem(),
                                                                  int(results.params["reduction_rounds"]))}


def check(results) -> list[Claim]:
    tol = float(results.params["reduction_tol"])
    claims = []
    for name, panel in results.panels.items():
        rows = results.data[name]["rows"]
        where = panel.label or name
        if BC not in rows or EF21 not in rows:
            claims.append(Claim(f"{where}: EF21-BC needs fewer total bits than EF21", False, {},
                                unmeasurable="a method was not run"))
        else:
            held, un = fewer_verdict(rows[BC]["bits_total"]["median"], rows[EF21]["bits_total"]["median"])
            claims.append(Claim(
                f"{where}: EF21-BC (Top-1 both ways) reaches ‖∇f‖² ≤ {panel.target:g} with fewer total (uplink + "
                "downlink) bits per worker than EF21 with a dense downlink (medians over seeds)", held,
                {m: {k: text_of(rows[m][k], show_bits) for k in ("bits_total", "bits_up", "bits_down", "rounds")}
                    | {"γ multiplier": rows[m]["multiplier"]} for m in METHODS},
                "" if held or un else "EF21-BC needed so many more rounds (its downlink error feedback slows it) "
                                      "that the dense downlink of EF21 was cheaper.", un))
        diff = float(results.data[name]["reduction_max_diff"])
        held = reduction_verdict(diff, tol)
        claims.append(Claim(
            f"{where}: EF21-BC with C_M = I equals EF21 iterate for iterate ({int(results.params['reduction_rounds'])} "
            f"rounds; float rounding ≤ {tol:g})", held, {"max |x_EF21-BC − x_EF21|": diff},
            "" if held else "the iterates differ: the downlink error feedback is not EF21's estimator."))
    return claims


def report_extra(results) -> str:
    lines = ["## Measured numbers", "", "Each method at the stepsize multiplier with the fewest median bits_total to the "
             "target (* = at the edge of the grid).", ""]
    for name, panel in results.panels.items():
        rows = results.data[name]["rows"]
        lines += [f"### {panel.label or name}", "",
                  "| method | γ multiplier | γ | bits_total | uplink bits | downlink bits | rounds |",
                  "|---|---|---|---|---|---|---|"]
        for m, r in rows.items():
            lines.append(f"| {m} | {r['multiplier']:g}{'*' if r['edge'] else ''} | {r['stepsize']:.4g} | "
                         + " | ".join(text_of(r[k], show_bits) for k in ("bits_total", "bits_up", "bits_down", "rounds"))
                         + " |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["check", "compute", "measure_panel", "reduction_gap", "reduction_verdict", "report_extra"]
