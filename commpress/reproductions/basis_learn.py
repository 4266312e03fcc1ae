"""Claim check of ``basis-learn`` (Qian, Islamov, Safaryan, Richtárik 2022). See ``basis-learn.toml``.

``compute`` runs BL1 in the data and the standard basis (deterministic: Top-K) and records the uplink bits
to the level and the gap-against-bits curves that :func:`figure` draws; :func:`fewer_bits` and
:func:`is_newton` are the pure verdicts, tested on fake numbers in ``tests/reproductions/test_smoothness_claims.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

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


def _bits_to(problem, alg, rounds: int, level: float, f_star: float,
             curve: dict | None = None) -> tuple[float, float]:
    """Uplink bits per client and rounds to the relative gap ``level``; ``curve`` (when given) receives the
    per-round uplink bits per client (one-time costs included) and relative gaps, round 0 after the init."""
    s = alg.init()
    f0 = problem.loss(s.x) - f_star
    up = lambda: float(alg.network.ledger.total("up").double().mean())  # noqa: E731
    if curve is not None:
        curve.update({"bits": [up()], "gap": [1.0]})
    for k in range(1, rounds + 1):
        s = alg.step(s)
        gap = problem.loss(s.x) - f_star
        if not math.isfinite(gap):
            break
        if curve is not None:
            curve["bits"].append(up())
            curve["gap"].append(float(gap / f0))
        if gap <= level * f0:
            return up(), float(k)
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
        row = {"dataset": str(name), "n": int(n), "d": d, "r_max": r, "bits": {}, "rounds": {}, "curves": {}}
        for factor in p.get("k_factors", [1]):
            k = int(factor) * r
            for basis in ("data", "standard"):
                alg = cp.algorithms.make("basis_learn", P, basis=basis, compressor={"name": "topk", "k": k})
                b, it = _bits_to(P, alg, rounds, level, f_star, row["curves"].setdefault(f"{basis} K={k}", {}))
                row["bits"][f"{basis} K={k}"] = b
                row["rounds"][f"{basis} K={k}"] = it
        full = cp.algorithms.make("basis_learn", P, compressor={"name": "topk", "k": r * (r + 1) // 2})
        newton = cp.algorithms.make("basis_learn", P, basis="standard", compressor={"name": "topk", "k": d * (d + 1) // 2})
        row["rounds"]["data full"] = _bits_to(P, full, rounds, level, f_star, row["curves"].setdefault("data full", {}))[1]
        row["rounds"]["newton"] = _bits_to(P, newton, rounds, level, f_star, row["curves"].setdefault("newton", {}))[1]
        rows.append(row)
    results.data.update({"rows": rows})


def figure(results, path: Path) -> Path:
    """Per dataset: the relative optimality gap (f − f*)/(f(x0) − f*) against the uplink bits per client
    (one-time costs included) of BL1 in the data basis and in the standard basis (FedNL) at each Top-K, of BL1
    sending the whole coefficient matrix and of Newton's method (the whole Hessian), log y, the level dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results.data.get("rows", [])
    level = float(results.params.get("level", 1e-10))
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(6.2 * max(1, len(rows)), 4.5), squeeze=False)
    styles = {"data": "-", "standard": "--"}
    for ax, row in zip(axes[0], rows):
        curves = row.get("curves", {})
        ks = sorted({key.split(" ", 1)[1] for key in curves if key.startswith(("data K=", "standard K="))},
                    key=lambda s: int(s.removeprefix("K=")))
        for j, k in enumerate(ks):
            for basis in ("data", "standard"):
                c = curves.get(f"{basis} {k}")
                if c and c.get("bits"):
                    name = "data basis (BL1)" if basis == "data" else "standard basis (FedNL)"
                    ax.plot(c["bits"], [max(g, 1e-300) for g in c["gap"]], styles[basis], color=f"C{j}",
                            marker="o" if basis == "data" else "s", ms=3, label=f"{name}, Top-{k}")
        for key, label, style in (("data full", "BL1, whole coefficient matrix", "C7:"),
                                  ("newton", "Newton (whole Hessian)", "k-")):
            c = curves.get(key)
            if c and c.get("bits"):
                ax.plot(c["bits"], [max(g, 1e-300) for g in c["gap"]], style, marker="^", ms=3, label=label)
        ax.axhline(level, color="gray", lw=0.8, ls=":", label=f"level {level:g}")
        ax.set_yscale("log")
        ax.set_xlabel("uplink bits per client (one-time costs included)")
        ax.set_ylabel(r"relative gap $(f - f^*)/(f(x^0) - f^*)$")
        ax.set_title(f"{row['dataset']} (n = {row['n']}, d = {row['d']}, r_max = {row['r_max']})", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


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
