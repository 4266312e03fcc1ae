"""Claim check of ``smoothness-matrices`` (Safaryan, Hanzely, Richtárik 2021): DCGD+/DIANA+ against DCGD/DIANA
with Rand-τ at the same τ. See ``smoothness-matrices.toml``.

Verdicts are pure functions of the medians over seeds (:func:`fewer_bits`, :func:`smaller_final`), tested on
fake numbers in ``tests/reproductions/test_smoothness_claims.py``.
"""

from __future__ import annotations

from commpress.reproductions._compare import all_hold, less, spread_text, unmeasured_reason
from commpress.reproductions._results import Claim

PAIRS = {"diana": ("DIANA+", "DIANA"), "dcgd": ("DCGD+", "DCGD")}


def _kind(panel_name: str) -> str:
    return panel_name.split("-")[0]


def check(results) -> list[Claim]:
    """T-SM-1: DIANA+ reaches ‖∇f‖² ≤ target with fewer bits than DIANA on every DIANA panel; DCGD+ ends
    with a smaller ‖∇f‖² than DCGD at the same bit budget on every DCGD panel."""
    claims = []
    for kind, measure in (("diana", "bits"), ("dcgd", "final")):
        plus, base = PAIRS[kind]
        panels = [p for name, p in results.panels.items() if _kind(name) == kind]
        if not panels:
            continue
        decisions, numbers = {}, {}
        for p in panels:
            a, b = p.method(plus), p.method(base)
            if measure == "bits":
                decisions[p.name] = less(a.bits_spread().median, b.bits_spread().median)
            else:
                decisions[p.name] = less(a.final_spread().median, b.final_spread().median)
            numbers[p.name] = f"{plus} {spread_text(a, measure)} vs {base} {spread_text(b, measure)}"
        held, refuted, open_ = all_hold(decisions)
        what = ("uplink bits per client to ‖∇f‖² ≤ target" if measure == "bits"
                else "final ‖∇f‖² at the same uplink budget per client")
        claims.append(Claim(
            f"{plus} beats {base} with Rand-τ at the same τ on every dataset ({what}, medians over seeds)",
            held, {what: numbers},
            note=(f"{base} did at least as well on {', '.join(refuted)}" if refuted else ""),
            unmeasurable=unmeasured_reason(refuted, open_, "neither reached the target / both diverged on")))
    return claims
