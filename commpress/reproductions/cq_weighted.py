"""Claim check of ``cq-weighted`` (CQ paper App. C.3): weighted MARINA with ISCC(DRIVE) vs MARINA with
DRIVE on quadratics with spread-out smoothness constants. See ``cq-weighted.toml``."""

from __future__ import annotations

import math

from commpress.reproductions._compare import all_hold, bits, less, ratio, ratio_reading, rounded, spread_text
from commpress.reproductions._results import Claim
from commpress.reproductions._seeds import median

ISCC, DRIVE = "Weighted MARINA + ISCC(DRIVE)", "MARINA + DRIVE"


def predicted_ratio(problem, eps2: float) -> dict[str, float]:
    """What the theory predicts for bits(ISCC) / bits(MARINA + DRIVE) on ``problem`` at ε² = ``eps2``: the
    ratio of the Corollary-4 bounds (τ = 1, p = ζ/(32dn) vs p = ζ/(32d)) and of the exact complexities at
    the optimal p (``theory.iscc_communication`` / ``theory.marina_communication``)."""
    from commpress import compressors, theory

    sm = problem.smoothness()
    n, d = problem.n, problem.d
    th = compressors.make("drive").theory(n, d)
    f_star = problem.optimum()[0]
    delta0 = float(problem.loss(problem.x0()) - f_star)
    eps = eps2 ** 0.5
    cor4 = (theory.iscc_corollary4_bound(sm.L_minus, sm.L_am, th.omega, d, th.bits, n, delta0, eps)
            / theory.marina_corollary4_bound(sm.L_minus, sm.L_plus, th.omega, d, th.bits, n, delta0, eps))
    exact = (theory.iscc_communication(sm.L_minus, sm.L_am, th.omega, d, th.bits, n, delta0, eps).bits
             / theory.marina_communication(sm.L_minus, sm.L_plus, sm.L_pm, th.omega / n, 0.0, d, th.bits, delta0,
                                           eps).bits)
    return {"corollary4": float(cor4), "optimal_p": float(exact)}


def compute(results) -> None:
    results.data["predicted_ratio"] = {p.name: predicted_ratio(p.problem(), p.target)
                                       for p in results.panels.values() if p.target is not None}


def check(results) -> list[Claim]:
    """The two claims, on medians over seeds of the bits to the target (see ``cq-weighted.toml``)."""
    rows = []
    for p in results.panels.values():
        c = p.constants()
        iscc, drive = p.method(ISCC), p.method(DRIVE)
        rows.append({"panel": p.name, "spread": c["L_qm"] / c["L_am"], "L_am": c["L_am"], "L_qm": c["L_qm"],
                     "n": c["n"], "iscc": bits(iscc), "drive": bits(drive),
                     "text": {"iscc": spread_text(iscc), "drive": spread_text(drive)},
                     "rounds": {m: _median_rounds(p.method(m)) for m in (ISCC, DRIVE)}})
    rows.sort(key=lambda r: r["spread"])
    eps2 = next(iter(results.panels.values())).target
    claims = []

    # 1. ISCC needs fewer bits than DRIVE in the tested regimes (the paper: "in various regimes").
    per = {_key(r): rounded(ratio(r["iscc"], r["drive"])) for r in rows}
    decisions = {_key(r): less(r["iscc"], r["drive"]) for r in rows}
    held, lost, open_ = all_hold(decisions)
    wins = [k for k, v in decisions.items() if v]
    claims.append(Claim(
        f"Weighted MARINA + ISCC(DRIVE) needs fewer uplink bits per client than MARINA + DRIVE to reach "
        f"‖∇f‖² ≤ {eps2:g}, in every regime tested (medians over seeds)",
        held,
        {"bits ISCC / bits DRIVE per panel": per,
         **{f"bits {r['panel']}": f"ISCC {r['text']['iscc']}, DRIVE {r['text']['drive']}" for r in rows}},
        "" if not lost else f"ISCC won in {len(wins)} of {len(rows)} regimes. In a compressed round only one client "
                            "sends, so the per-client bits are ζ/n, but the estimator's variance ((ω+1)·L_AM² instead "
                            "of ω/n·L_+²) costs more rounds; the balance depends on n and the spread of the L_i.",
        "" if lost or not open_ else f"neither method reached the target at {', '.join(open_)} (median over "
                                     "seeds): their order is not measured"))

    # 2. The gain grows with the spread L_QM / L_AM (Corollary 4's L_+ -> L_AM).
    first, last = rows[0], rows[-1]
    r0, r1 = ratio(first["iscc"], first["drive"]), ratio(last["iscc"], last["drive"])
    decided = less(r1, r0, zero=True) if len(rows) > 1 else None
    held = decided is True
    if len(rows) < 2:
        unmeasurable = "a single spread tested: no growth to measure"
    elif decided is None:
        unmeasurable = (f"bits ISCC / bits DRIVE is {ratio_reading(r0, 'ISCC', 'DRIVE')} at the smallest spread and "
                        f"{ratio_reading(r1, 'ISCC', 'DRIVE')} at the largest (medians over seeds): the two cannot be "
                        "ordered")
    else:
        unmeasurable = ""
    pred = results.data.get("predicted_ratio", {})
    numbers = {"ratio at smallest spread": rounded(r0), "ratio at largest spread": rounded(r1),
               "smallest spread L_QM/L_AM": rounded(first["spread"]), "largest spread L_QM/L_AM": rounded(last["spread"]),
               "gain DRIVE/ISCC at largest spread": rounded(ratio(last["drive"], last["iscc"])),
               "√n (Corollary 4: 'up to √n', through L_QM/L_AM ≤ √n)": rounded(math.sqrt(first["n"]))}
    if pred:
        numbers["predicted ratio per panel (Cor. 4 bounds / exact at optimal p)"] = {
            r["panel"]: f"{pred[r['panel']]['corollary4']:.3g} / {pred[r['panel']]['optimal_p']:.3g}"
            for r in rows if r["panel"] in pred}
    note = ""
    if not held and not unmeasurable:
        note = ("The spread reached by the placeholder generator is small (L_QM/L_AM < √2), so the L_+ → L_AM gain of "
                "Corollary 4 is at most a few tens of percent and is hidden by the other differences between the two "
                "methods (p, bits per round, seed noise).")
    elif held and pred and all(r["panel"] in pred for r in (first, last)):
        p0, p1 = pred[first["panel"]]["corollary4"], pred[last["panel"]]["corollary4"]
        if r1 < 0.5 * p1:
            note = (f"Held, but not for the reason Corollary 4 gives: its bounds predict a ratio of {p0:.3g} → {p1:.3g} "
                    f"(spread {first['spread']:.3g} → {last['spread']:.3g}), the runs give {r0:.3g} → {r1:.3g}. The "
                    "measured gain exceeds what L_QM/L_AM can explain (and √n). "
                    + _rounds_text(first, last) + "Why MARINA + DRIVE's rounds grow so much faster with s than the "
                    "bounds say (both scale with L_-Δ⁰, which grows with s here) we did not isolate.")
    claims.append(Claim(
        "ISCC's gain over DRIVE grows with the spread L_QM/L_AM of the smoothness constants (Corollary 4; medians "
        "over seeds)",
        held, numbers, note, unmeasurable))
    return claims


def _key(r) -> str:
    return f"L_QM/L_AM={r['spread']:.3g}"


def _median_rounds(method) -> float | None:
    v = median(r["summary"].get("iterations_to_target") for r in method.runs)
    return v if math.isfinite(v) else None


def report_extra(results) -> str:
    from commpress.reproductions._report import seed_tables

    return seed_tables(results)


def _rounds_text(first, last) -> str:
    try:
        a0, a1 = first["rounds"][ISCC], last["rounds"][ISCC]
        b0, b1 = first["rounds"][DRIVE], last["rounds"][DRIVE]
        return (f"Rounds to the target (medians over seeds): MARINA + DRIVE {b0:,.0f} → {b1:,.0f} (×{b1 / b0:.3g}), "
                f"weighted MARINA + ISCC {a0:,.0f} → {a1:,.0f} (×{a1 / a0:.3g}). ")
    except (TypeError, ZeroDivisionError, KeyError):
        return ""
