"""Claim check of ``dasha`` (DASHA paper, nonconvex LibSVM experiment): DASHA vs MARINA with RandK on
mushrooms. See ``dasha.toml``.

The verdicts are pure functions of measured numbers (:func:`per_round_bits`, :func:`dense_verdict`,
:func:`ratio_verdict`), tested on fabricated numbers as well; bits are medians over seeds.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.reproductions._results import Claim

DASHA, MARINA = "DASHA", "MARINA"


def per_round_bits(iterations: list[float], bits: list[float]) -> list[float]:
    """Uplink bits per node per round between consecutive records (the first entry: the initial traffic)."""
    out = [float(bits[0])] if bits else []
    for (i0, b0), (i1, b1) in zip(zip(iterations, bits), zip(iterations[1:], bits[1:])):
        if i1 > i0:
            out.append((b1 - b0) / (i1 - i0))
    return out


def dense_verdict(dasha_rounds: list[list[float]], marina_rounds: list[list[float]],
                  payload: float) -> tuple[bool, dict]:
    """DASHA sends exactly ``payload`` bits per round in every interval of every seed and nothing at
    initialisation, while MARINA exceeds ``payload`` somewhere (dense rounds)."""
    d_init = max((r[0] for r in dasha_rounds if r), default=math.nan)
    d_max = max((v for r in dasha_rounds for v in r[1:]), default=math.nan)
    d_min = min((v for r in dasha_rounds for v in r[1:]), default=math.nan)
    m_max = max((v for r in marina_rounds for v in r), default=math.nan)
    held = d_init == 0.0 and d_max == payload and d_min == payload and m_max > payload
    return bool(held), {"DASHA initial bits": d_init, "DASHA bits per round (min, max)": [d_min, d_max],
                        "MARINA max bits per round (incl. initialisation)": m_max, "RandK payload": payload}


def ratio_verdict(dasha_bits: float | None, marina_bits: float | None, ratio: float) -> tuple[bool | None, float]:
    """``dasha_bits <= ratio * marina_bits`` (None: undecided, neither reached the target). A method that did
    not reach the target counts as infinitely many bits."""
    d = math.inf if dasha_bits is None else dasha_bits
    m = math.inf if marina_bits is None else marina_bits
    if not math.isfinite(d) and not math.isfinite(m):
        return None, math.nan
    return bool(d <= ratio * m), (d / m if math.isfinite(m) and m > 0 else math.inf)


def check(results) -> list[Claim]:
    panel = next(iter(results.panels.values()))
    payload = float(results.params.get("payload_bits", 320))
    ratio = float(results.params.get("ratio", 1.5))
    dasha, marina = panel.method(DASHA), panel.method(MARINA)
    rounds = {lab: [per_round_bits(xs, ys) for xs, ys in m.curves("iteration", "bits_up")]
              for lab, m in ((DASHA, dasha), (MARINA, marina))}
    measured = all(rounds[lab] and all(len(r) > 1 for r in rounds[lab]) for lab in rounds)
    held, numbers = dense_verdict(rounds[DASHA], rounds[MARINA], payload) if measured else (False, {})
    claims = [Claim(
        "DASHA never sends an uncompressed vector: exactly the RandK payload per node in every round and nothing "
        "at initialisation, while MARINA sends dense vectors (its initialisation and coin rounds)",
        held, numbers,
        "" if held or not measured else "DASHA's per-round uplink differs from the RandK payload in some interval, or "
                                        "MARINA never exceeded it.",
        "" if measured else "fewer than two recorded points per run: the per-round bits are not measured")]
    d_bits, m_bits = dasha.bits_spread(), marina.bits_spread()
    won, r = ratio_verdict(None if not math.isfinite(d_bits.median) else d_bits.median,
                           None if not math.isfinite(m_bits.median) else m_bits.median, ratio)
    claims.append(Claim(
        f"DASHA reaches ‖∇f‖² ≤ {panel.target:g} with at most {ratio:g}× MARINA's uplink bits per node "
        "(each at its best stepsize multiplier, medians over seeds)",
        bool(won), {"DASHA bits": d_bits.text(), "MARINA bits": m_bits.text(),
                    "ratio DASHA/MARINA": r if math.isfinite(r) else str(r),
                    "multipliers": {DASHA: dasha.multiplier, MARINA: marina.multiplier}},
        "" if won is not False else "DASHA needed more bits: its momentum a = 1/(2ω+1) corrects the estimator slowly "
                                    "when ω is large, and the stepsize grid may not contain its best value.",
        "" if won is not None else "neither method reached the target (median over seeds)"))
    return claims


__all__ = ["check", "dense_verdict", "per_round_bits", "ratio_verdict"]
