"""Claim check of ``basis-learn`` (Qian, Islamov, Safaryan, Richtárik 2022). See ``basis-learn.toml``.

``compute`` runs BL1 in the data and the standard basis (deterministic: Top-K) and records the uplink bits
to the level; :func:`fewer_bits` and :func:`is_newton` are the pure verdicts, tested on fake numbers in
``tests/reproductions/test_smoothness_claims.py``.
"""

from __future__ import annotations

import math

from commpress.reproductions._compare import less
from commpress.reproductions._results import Claim


def fewer_bits(data_bits: float, standard_bits: float) -> bool | None:
    """The data basis reaches the level with fewer bits (None when neither reached it)."""
    return less(data_bits, standard_bits)


def is_newton(rounds_full: float, rounds_newton: float) -> bool | None:
    """Full-budget BL1 needs exactly the rounds of Newton's method (None when either did not reach)."""
    if math.isinf(rounds_full) and math.isinf(rounds_newton):
        return None
    return rounds_full == rounds_newton


def _bits_to(problem, alg, rounds: int, level: float, f_star: float) -> tuple[float, float]:
    s = alg.init()
    f0 = problem.loss(s.x) - f_star
    for k in range(1, rounds + 1):
        s = alg.step(s)
        gap = problem.loss(s.x) - f_star
        if not math.isfinite(gap):
            break
        if gap <= level * f0:
            return float(alg.network.ledger.total("up").double().mean()), float(k)
    return math.inf, math.inf


def compute(results) -> None:
    import commpress as cp

    p = results.params
    rows = []
    for name, n in p.get("datasets", [["splice", 20]]):
        P = cp.problems.make("logreg", dataset=str(name), n_clients=int(n), l2=float(p.get("l2", 1e-3)))
        f_star, _ = P.optimum()
        rounds, level = int(p.get("rounds", 40)), float(p.get("level", 1e-10))
        probe = cp.algorithms.make("basis_learn", P)
        r, d = probe.r_max, P.d
        row = {"dataset": str(name), "n": int(n), "d": d, "r_max": r, "bits": {}, "rounds": {}}
        for factor in p.get("k_factors", [1]):
            k = int(factor) * r
            for basis in ("data", "standard"):
                alg = cp.algorithms.make("basis_learn", P, basis=basis, compressor={"name": "topk", "k": k})
                b, it = _bits_to(P, alg, rounds, level, f_star)
                row["bits"][f"{basis} K={k}"] = b
                row["rounds"][f"{basis} K={k}"] = it
        full = cp.algorithms.make("basis_learn", P, compressor={"name": "topk", "k": r * (r + 1) // 2})
        newton = cp.algorithms.make("basis_learn", P, basis="standard", compressor={"name": "topk", "k": d * (d + 1) // 2})
        row["rounds"]["data full"] = _bits_to(P, full, rounds, level, f_star)[1]
        row["rounds"]["newton"] = _bits_to(P, newton, rounds, level, f_star)[1]
        rows.append(row)
    results.data.update({"rows": rows})


def _show(v: float):
    return "not reached" if math.isinf(v) else round(v)


def check(results) -> list[Claim]:
    rows = results.data.get("rows", [])
    decisions, numbers = {}, {}
    for r in rows:
        for key in r["bits"]:
            if key.startswith("data "):
                k = key.removeprefix("data ")
                decisions[f"{r['dataset']} {k}"] = fewer_bits(r["bits"][key], r["bits"][f"standard {k}"])
                numbers[f"{r['dataset']} {k}"] = f"data {_show(r['bits'][key])} vs standard {_show(r['bits'][f'standard {k}'])}"
    lost = [k for k, v in decisions.items() if v is False]
    open_ = [k for k, v in decisions.items() if v is None]
    claims = [Claim(
        "At equal Top-K, BL1 in the data basis reaches the level with fewer uplink bits per client than in the "
        "standard basis (one-time costs included)",
        bool(decisions) and not lost and not open_, {"bits to the level": numbers,
                                                     "r_max / d": {r["dataset"]: f"{r['r_max']} / {r['d']}" for r in rows}},
        note=(f"the standard basis needed no more bits on {', '.join(lost)}" if lost else ""),
        unmeasurable=("" if lost or not open_ else f"neither basis reached the level on {', '.join(open_)}")
        if decisions else "no measurement")]
    dec = {r["dataset"]: is_newton(r["rounds"]["data full"], r["rounds"]["newton"]) for r in rows}
    lost2 = [k for k, v in dec.items() if v is False]
    open2 = [k for k, v in dec.items() if v is None]
    claims.append(Claim(
        "With the whole coefficient matrix sent, BL1 in the data basis takes exactly the rounds of Newton's method",
        bool(dec) and not lost2 and not open2,
        {r["dataset"]: {"rounds BL1 full": _show(r["rounds"]["data full"]), "rounds Newton": _show(r["rounds"]["newton"])}
         for r in rows},
        note=(f"different round counts on {', '.join(lost2)}" if lost2 else ""),
        unmeasurable=("" if lost2 or not open2 else f"neither reached the level on {', '.join(open2)}") if dec else "no measurement"))
    return claims
