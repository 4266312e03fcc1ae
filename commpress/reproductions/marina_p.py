"""Claim check of ``marina-p`` (MARINA-P, Gruntkowska, Tyurin, Richtárik 2024): downlink coordinates per
worker of MARINA-P with PermK, independent RandK and the same RandK, and their dependence on n. See
``marina-p.toml`` for the claim and the choices.

Verdicts are pure functions of medians over seeds
(:func:`~commpress.reproductions._bidirectional.order_verdict`, :func:`decrease_verdict`), tested on
fake numbers.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.reproductions._bidirectional import order_verdict, select_to_level, show_bits, spread_to_level
from commpress.reproductions._results import Claim
from commpress.reproductions._seeds import text_of

FLOAT_BITS = 32


# ----------------------------------------------------------------------------- pure verdicts
def decrease_verdict(coords: list[float]) -> tuple[bool, str]:
    """Coordinates per worker strictly decrease along the panels (growing n). Returns (held, unmeasurable)."""
    if len(coords) < 2:
        return False, "fewer than two panels to compare"
    if any(not math.isfinite(c) for c in coords):
        return False, "PermK did not reach the target in every panel (median over seeds)"
    return all(b < a for a, b in zip(coords, coords[1:])), ""


def reduction_equal(problem, rounds: int) -> bool:
    """MARINA-P with p = 1 (64-bit model broadcast) equals GD (exact downlink) bit for bit over ``rounds``."""
    import commpress.algorithms  # noqa: F401
    from commpress import algorithms, compressors

    gamma = 0.5 / problem.smoothness().L_minus
    gd = algorithms.make("gd", problem, gamma=gamma, downlink_compressor=compressors.make("identity", float_bits=64))
    mp = algorithms.make("marina_p", problem, gamma=gamma, p=1.0, model_float_bits=64)
    a, b = gd.init(), mp.init()
    for _ in range(rounds):
        a, b = gd.step(a), mp.step(b)
        if not torch.equal(gd.output(a), mp.output(b)):
            return False
    return True


# ----------------------------------------------------------------------------- measurements
def measure_panel(panel) -> dict[str, Any]:
    """Per method: downlink bits (and coordinates = bits/32) per worker and rounds to the sweep's target."""
    level = float(panel.target)
    rows = {}
    for label in panel.methods:
        sel = select_to_level(panel, label, level, x="bits_down")
        bits = spread_to_level(sel, level, x="bits_down")
        rows[label] = {"bits_down": bits.as_dict(),
                       "coordinates": {**bits.as_dict(), **{k: bits.as_dict()[k] / FLOAT_BITS
                                                           for k in ("median", "min", "max")}},
                       "rounds": spread_to_level(sel, level, x="iteration").as_dict(),
                       "bits_total": spread_to_level(sel, level).as_dict(),
                       "stepsize": float(sel.runs[0]["summary"].get("stepsize") or math.nan)}
    return rows


def compute(results) -> None:
    for name, panel in results.panels.items():
        results.data[name] = measure_panel(panel)
    first = next(iter(results.panels.values()))
    results.data["reduction_p1_equals_gd"] = reduction_equal(first.problem(), int(results.params["reduction_rounds"]))


# ----------------------------------------------------------------------------- claims
def check(results) -> list[Claim]:
    p = results.params
    order = list(p["order"])
    claims = []
    for name, panel in results.panels.items():
        rows = results.data[name]
        where = panel.label or name
        missing = [m for m in order if m not in rows]
        vals = [rows[m]["coordinates"]["median"] for m in order if m in rows]
        held, un = (False, f"methods not run: {missing}") if missing else order_verdict(vals)
        claims.append(Claim(
            f"{where}: at the theoretical stepsize, downlink coordinates per worker to ‖∇f‖² ≤ {panel.target:g} order "
            "PermK < independent RandK < same RandK (medians over seeds)", held,
            {m: {"coordinates": text_of(rows[m]["coordinates"], show_bits), "rounds": text_of(rows[m]["rounds"], show_bits),
                 "γ": rows[m]["stepsize"]} for m in order if m in rows},
            "" if held or un else "the order of the theory's stepsizes did not carry over to the coordinates: with "
                                  "these (L_A, L_B) the stepsizes are close and the random coin rounds decide.", un))
    names = [n for n in p["n_panels"] if n in results.panels]
    permk = order[0]
    coords = [results.data[n][permk]["coordinates"]["median"] if permk in results.data[n] else math.nan for n in names]
    held, un = decrease_verdict(coords) if len(names) == len(p["n_panels"]) else (False, "a panel of n_panels is missing")
    claims.append(Claim(
        f"homogeneous task: with PermK the downlink coordinates per worker to the target decrease as n grows "
        f"({', '.join(results.panels[n].label or n for n in names)})", held,
        {results.panels[n].label or n: show_bits(c) for n, c in zip(names, coords)},
        "" if held or un else "the coordinates did not decrease: the coin rounds (dense, probability 1/n) dominate.", un))
    eq = bool(results.data["reduction_p1_equals_gd"])
    claims.append(Claim(f"MARINA-P with p = 1 equals GD iterate for iterate ({int(p['reduction_rounds'])} rounds, bitwise)",
                        eq, {"equal": eq}, "" if eq else "the iterates differ: the model broadcast is not GD's step."))
    return claims


def report_extra(results) -> str:
    lines = ["## Measured numbers", "", "Downlink coordinates per worker (downlink bits / 32: values only, supports from "
             "shared seeds; coin rounds send the dense model) to reach the target; `median [min–max]` over seeds.", ""]
    for name, panel in results.panels.items():
        rows = results.data[name]
        lines += [f"### {panel.label or name}", "", "| method | γ | downlink coordinates | rounds | bits_total |",
                  "|---|---|---|---|---|"]
        for m, r in rows.items():
            lines.append(f"| {m} | {r['stepsize']:.4g} | {text_of(r['coordinates'], show_bits)} | "
                         f"{text_of(r['rounds'], show_bits)} | {text_of(r['bits_total'], show_bits)} |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["check", "compute", "decrease_verdict", "measure_panel", "reduction_equal", "report_extra"]
