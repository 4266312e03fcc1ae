"""Claim check of ``pp`` (partial participation: PP-MARINA, MARINA paper Alg. 4; DASHA-PP, Tyurin &
Richtárik 2023): rounds and uplink bits per client to a target under nice sampling. See ``pp.toml``
for the claims and the choices.

The verdicts are pure functions of medians over seeds (:func:`increasing_verdict`,
:func:`not_more_verdict`, :func:`sublinear_verdict`), tested on fake numbers.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.reproductions._bidirectional import select_to_level, show_bits, spread_to_level
from commpress.reproductions._results import Claim
from commpress.reproductions._seeds import text_of


# ----------------------------------------------------------------------------- pure verdicts
def increasing_verdict(values: list[float]) -> tuple[bool, str]:
    """``values`` strictly increase (inf = not reached: larger than any number, but two infs are not
    ordered). Returns (held, unmeasurable reason)."""
    if len(values) < 2:
        return False, "fewer than two numbers to order"
    if any(math.isnan(v) for v in values):
        return False, "a median is nan"
    if not math.isfinite(values[0]):
        return False, "full participation did not reach the target: the order cannot be read"
    if sum(not math.isfinite(v) for v in values) > 1:
        return False, "more than one method did not reach the target: their order is not measured"
    return all(a < b for a, b in zip(values, values[1:])), ""


def not_more_verdict(full: float, partial: list[float]) -> tuple[bool, str]:
    """Every ``partial`` value is at most ``full`` (inf = not reached). Returns (held, unmeasurable reason)."""
    if math.isnan(full) or any(math.isnan(v) for v in partial) or not partial:
        return False, "a median is nan (or nothing to compare)"
    if not math.isfinite(full) and all(not math.isfinite(v) for v in partial):
        return False, "no method reached the target: nothing to compare"
    return all(v <= full for v in partial), ""


def sublinear_verdict(full: float, partial: list[float], p_a: list[float]) -> tuple[bool, list[float], str]:
    """``partial[j] / full < 1 / p_a[j]`` for every j: bits grow less than 1/p_a. Returns (held, the ratios
    times p_a, unmeasurable reason)."""
    if not partial or len(partial) != len(p_a):
        return False, [], "nothing to compare"
    if not (math.isfinite(full) and full > 0):
        return False, [], "DASHA-PP with p_a = 1 did not reach the target: no reference"
    scaled = [v / full * p for v, p in zip(partial, p_a)]
    if any(math.isnan(s) for s in scaled):
        return False, scaled, "a median is nan"
    return all(s < 1.0 for s in scaled), scaled, ""


# ----------------------------------------------------------------------------- measurements
def measure_panel(panel) -> dict[str, Any]:
    """Per method, at the multiplier with the fewest median uplink bits per client to the target: bits and rounds."""
    level = float(panel.target)
    rows = {}
    for label in panel.methods:
        sel = select_to_level(panel, label, level, x="bits_up")
        rows[label] = {"bits_up": spread_to_level(sel, level, x="bits_up").as_dict(),
                       "rounds": spread_to_level(sel, level, x="iteration").as_dict(),
                       "multiplier": sel.multiplier, "edge": sel.at_grid_edge,
                       "stepsize": float(sel.runs[0]["summary"].get("stepsize") or math.nan)}
    return rows


def reductions(problem, rounds: int) -> dict[str, bool]:
    """PP-MARINA ``full`` == MARINA and DASHA-PP (p_a = 1) == DASHA (g0 = "grad"), bitwise over ``rounds``."""
    import commpress.algorithms  # noqa: F401
    from commpress import algorithms

    comp = {"name": "randk", "k": max(1, problem.d // 8)}
    pairs = {"PP-MARINA full = MARINA": (("marina_pp", {"participation": "full", "p": 0.2}), ("marina", {"p": 0.2})),
             "DASHA-PP p_a = 1 = DASHA": (("dasha_pp", {"participation": "full"}), ("dasha", {"g0": "grad"}))}
    out = {}
    for key, ((a_name, a_kw), (b_name, b_kw)) in pairs.items():
        a = algorithms.make(a_name, problem, compressor=comp, seed=1, **a_kw)
        b = algorithms.make(b_name, problem, compressor=comp, seed=1, **b_kw)
        sa, sb = a.init(), b.init()
        same = a.gamma == b.gamma
        for _ in range(rounds):
            sa, sb = a.step(sa), b.step(sb)
            same = same and torch.equal(a.output(sa), b.output(sb))
        out[key] = bool(same)
    return out


def compute(results) -> None:
    for name, panel in results.panels.items():
        results.data[name] = measure_panel(panel)
    first = next(iter(results.panels.values()))
    results.data["reductions"] = reductions(first.problem(), int(results.params["reduction_rounds"]))


# ----------------------------------------------------------------------------- claims
def _med(rows: dict[str, Any], label: str, key: str) -> float:
    return float(rows[label][key]["median"]) if label in rows else math.nan


def check(results) -> list[Claim]:
    p = results.params
    marina, dasha, p_a = list(p["marina"]), list(p["dasha"]), [float(v) for v in p["p_a"]]
    claims = []
    for name, panel in results.panels.items():
        rows = results.data[name]
        where = panel.label or name
        level = "the target" if panel.target is None else f"{panel.target:g}"

        def shown(label: str) -> dict[str, Any]:
            r = rows[label]
            return {"bits/client": text_of(r["bits_up"], show_bits), "rounds": text_of(r["rounds"], show_bits),
                    "γ mult": r["multiplier"]}

        missing = [m for m in marina + dasha if m not in rows]
        if missing:
            claims.append(Claim(f"{where}: the panel holds every method", False, {"missing": missing},
                                unmeasurable=f"methods not run: {missing}"))
            continue
        rounds = [_med(rows, m, "rounds") for m in marina]
        held, un = increasing_verdict(rounds)
        claims.append(Claim(
            f"{where}: PP-MARINA needs more rounds to ‖∇f‖² ≤ {level} as fewer clients take part "
            "(full < τ = n/2 < τ = n/4; medians over seeds)", held, {m: shown(m) for m in marina},
            "" if held or un else "the rounds did not increase: the stepsize picked for each τ (best bits) and the "
                                  "coin probability p also change with τ.", un))
        bits = [_med(rows, m, "bits_up") for m in marina]
        held, un = not_more_verdict(bits[0], bits[1:])
        ratios = [round(b / bits[0], 3) if math.isfinite(b) and math.isfinite(bits[0]) else None for b in bits[1:]]
        claims.append(Claim(
            f"{where}: PP-MARINA's uplink bits per client to ‖∇f‖² ≤ {level} with τ ∈ {{n/2, n/4}} are at most "
            "full participation's (medians over seeds)", held,
            {**{m: shown(m) for m in marina}, "bits(τ)/bits(full)": ratios},
            "" if held or un else (f"partial participation cost {', '.join(f'{r:g}×' for r in ratios if r)} the bits "
                                   "of full participation per client: the theory's O(·) says they do not grow, up to "
                                   "constants; here the sampled mean's variance (B_τ) slows the compressed rounds "
                                   "about as much as the idle rounds save (compare the seed ranges)."), un))
        bits = [_med(rows, m, "bits_up") for m in dasha]
        held, scaled, un = sublinear_verdict(bits[0], bits[1:], p_a[1:])
        claims.append(Claim(
            f"{where}: DASHA-PP's uplink bits per client to ‖∇f‖² ≤ {level} grow less than 1/p_a as p_a decreases "
            "(bits(p_a)·p_a / bits(1) < 1; medians over seeds)", held,
            {**{m: shown(m) for m in dasha}, "bits(p_a)·p_a/bits(1)": [round(s, 3) for s in scaled]},
            "" if held or un else "the bits grew at least as 1/p_a: the sampled messages' variance (1/p_a) dominates.",
            un))
    red = results.data.get("reductions", {})
    held = bool(red) and all(red.values())
    claims.append(Claim(f"reductions hold bitwise over {int(p['reduction_rounds'])} rounds: "
                        + ", ".join(red) if red else "reductions", held, dict(red),
                        "" if held else "a method with every client differs from its parent."))
    return claims


def report_extra(results) -> str:
    lines = ["## Measured numbers", "", "Uplink bits per client (averaged over all n clients) and rounds to the target, "
             "each method at the stepsize multiplier with the fewest median bits (* = at the edge of the grid); "
             "`median [min–max]` over seeds.", ""]
    for name, panel in results.panels.items():
        rows = results.data[name]
        lines += [f"### {panel.label or name}", "", "| method | γ multiplier | γ | bits per client | rounds |",
                  "|---|---|---|---|---|"]
        for m, r in rows.items():
            lines.append(f"| {m} | {r['multiplier']:g}{'*' if r['edge'] else ''} | {r['stepsize']:.4g} | "
                         f"{text_of(r['bits_up'], show_bits)} | {text_of(r['rounds'], show_bits)} |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["check", "compute", "increasing_verdict", "measure_panel", "not_more_verdict", "reductions",
           "report_extra", "sublinear_verdict"]
