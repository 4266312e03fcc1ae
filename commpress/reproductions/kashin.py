"""``kashin``: the uncertainty principle for compression (UP), Kashin compression's dimension-free variance,
spherical compression near the average-case bound (OGC) and Top-k versus random sparsification (BC).
Distributed mean estimation only (no optimiser runs): :func:`compute` measures, :func:`check` decides.
See ``kashin.toml``."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from commpress.reproductions._compare import rounded
from commpress.reproductions._results import Claim

#: kinds whose declared constant gives an UP error epsilon
_UP_KINDS = ("unbiased", "correlated", "contractive")


def heavy_tailed(vectors: int, d: int, seed: int) -> torch.Tensor:
    """``(vectors, d)`` Student-t (2 degrees of freedom) rows, float64, from a seeded generator."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + d)
    z = torch.randn(vectors, d, generator=g, dtype=torch.float64)
    chi2 = torch.randn(vectors, d, 2, generator=g, dtype=torch.float64).pow(2).sum(-1)
    return z / (chi2 / 2.0).sqrt()


def measure_vnmse(C, X: torch.Tensor, repetitions: int, seed: int) -> tuple[list[float], float]:
    """Per row E||C(x) - x||^2/||x||^2 over ``repetitions`` round seeds, and the mean bits per coordinate."""
    from commpress._rng import derive_seed

    err = torch.zeros(X.shape[0], dtype=torch.float64)
    bits = 0.0
    for r in range(repetitions):
        Y, b = C.apply(X, derive_seed(seed, "kashin-repro", C.name, X.shape[1], r))
        err += (Y.double() - X).pow(2).sum(1)
        bits += float(b.double().mean())
    return (err / repetitions / X.pow(2).sum(1)).tolist(), bits / repetitions / X.shape[1]


def up_table(dims: list[int], n: int = 4) -> list[dict]:
    """Every registered compressor's declared (epsilon, bits) and epsilon 4^(b/d) at each d."""
    from commpress import compressors
    from commpress.theory.compression_limits import normalized_error, up_product

    rows = []
    for name in compressors.names():
        for d in dims:
            try:
                C = compressors.make(name)
                th = C.theory(n, d)
            except Exception as err:  # a compressor that cannot serve this (n, d)
                rows.append({"compressor": name, "d": d, "skipped": f"{type(err).__name__}: {err}"})
                continue
            if th.kind not in _UP_KINDS or (th.omega is None and th.delta is None):
                rows.append({"compressor": name, "d": d, "skipped": f"kind {th.kind}: no class constant"})
                continue
            eps = normalized_error(th.kind, th.omega, th.delta)
            if eps == 0:  # exact on floats (the identity): the bound is for x in R^d, floats are a finite set
                rows.append({"compressor": name, "d": d, "skipped": "exact (epsilon = 0 on float inputs)"})
                continue
            rows.append({"compressor": name, "d": d, "kind": th.kind, "epsilon": eps, "bits": th.bits,
                         "product": up_product(eps, th.bits, d)})
    return rows


def compute(results) -> None:
    from commpress.experiments.runner import _OneThread

    with _OneThread():  # small transforms: one thread is far faster than several contending ones
        _compute(results)


def _median(values) -> float:
    return float(torch.tensor([float(v) for v in values], dtype=torch.float64).median()) if values else math.nan


def _compute(results) -> None:
    from commpress._rng import derive_seed
    from commpress.compressors import make
    from commpress.compressors.kashin import Kashin
    from commpress.compressors.topk import topk_mask

    p = results.params
    seeds = [int(s) for s in p.get("seeds", [0, 1])]
    dims = [int(d) for d in p.get("dims", [64, 256, 1024])]
    vectors, reps = int(p.get("vectors", 3)), int(p.get("repetitions", 12))
    K = Kashin(lam=float(p.get("lam", 2.0)), eta=float(p.get("eta", 0.7)), delta=float(p.get("delta", 0.5)),
               iterations=int(p.get("iterations", 20)))
    Q = make("qsgd", s=1)
    kashin, dith = {}, {}
    for d in dims:
        lam = K.frame_size(d) / d
        entry = {"lam": lam, "levels": [], "omega": [], "omega_se": [], "bound": [], "omega_by_seed": []}
        q_entry = {"omega": [], "omega_by_seed": []}
        bits_k, bits_q = [], []
        for seed in seeds:
            X = heavy_tailed(vectors, d, seed)
            err = torch.zeros(vectors, dtype=torch.float64)
            err2 = torch.zeros(vectors, dtype=torch.float64)
            bound = torch.zeros(vectors, dtype=torch.float64)
            bits = 0.0
            for r in range(reps):  # the bound of each call is at the level of that call's frames
                s = derive_seed(seed, "kashin-repro", K.name, d, r)
                Y, b = K.apply(X, s)
                e = (Y - X).pow(2).sum(1) / X.pow(2).sum(1)
                err += e
                err2 += e * e
                level = K.level(X, s)
                bound += (level.pow(2) - 1.0) / lam
                entry["levels"] += level.tolist()
                bits += float(b.double().mean())
            mean = err / reps
            se = ((err2 / reps - mean * mean).clamp_min(0.0) / max(reps - 1, 1)).sqrt()
            entry["omega"] += mean.tolist()
            entry["omega_se"] += se.tolist()
            entry["bound"] += (bound / reps).tolist()
            entry["omega_by_seed"].append(mean.tolist())
            bits_k.append(bits / reps / d)
            om_q, b_q = measure_vnmse(Q, X, reps, seed)
            q_entry["omega"] += om_q
            q_entry["omega_by_seed"].append(om_q)
            bits_q.append(b_q)
        entry["bits_per_coordinate"] = sum(bits_k) / len(bits_k)
        q_entry["bits_per_coordinate"] = sum(bits_q) / len(bits_q)
        kashin[str(d)], dith[str(d)] = entry, q_entry

    sph_d = int(p.get("spherical_dim", 8))
    trials = max(10, int(p.get("spherical_trials", 150)) // len(seeds))
    spherical = {}
    for b in [int(v) for v in p.get("spherical_bits", [8, 12, 16])]:
        S = make("spherical", bits=b, block=sph_d)
        by_seed = []
        for seed in seeds:
            g = torch.Generator().manual_seed(seed * 1009 + b)
            X = torch.randn(trials, sph_d, generator=g, dtype=torch.float64)
            errs = []
            for t in range(0, trials, 10):  # a fresh codebook per 10 vectors: the average over codebooks and directions
                Y, _ = S.apply(X[t: t + 10], derive_seed(seed, "kashin-repro/spherical", b, t))
                errs += ((Y - X[t: t + 10]).pow(2).sum(1) / X[t: t + 10].pow(2).sum(1)).tolist()
            by_seed.append(sum(errs) / len(errs))
        spherical[str(b)] = {"mean_error": _median(by_seed), "by_seed": by_seed, "bound": 4.0 ** (-b / sph_d)}

    d, k = int(p.get("topk_d", 1000)), int(p.get("topk_k", 100))
    T = max(2, int(p.get("topk_trials", 60)) // len(seeds))
    R = make("biased_sparsification", p=k / d)
    e_top, e_rand = [], []
    for seed in seeds:
        X = torch.randn(T, d, generator=torch.Generator().manual_seed(seed * 7 + 3), dtype=torch.float64)
        e_top.append(float(((X * ~topk_mask(X, k)).pow(2).sum(1) / X.pow(2).sum(1)).mean()))
        Y, _ = R.apply(X, derive_seed(seed, "kashin-repro/topk"))
        e_rand.append(float(((Y - X).pow(2).sum(1) / X.pow(2).sum(1)).mean()))
    topk = {"d": d, "k": k, "trials": T * len(seeds), "topk_error": _median(e_top), "random_error": _median(e_rand),
            "topk_by_seed": e_top, "random_by_seed": e_rand}

    results.data.update({"seeds": seeds, "dims": dims, "kashin": kashin, "dithering": dith, "spherical": spherical,
                         "topk": topk, "up": up_table(dims)})


def _finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def check(results) -> list[Claim]:
    data, p = results.data, results.params
    claims = []

    # 1. T-UP-1: every declared (epsilon, b) obeys epsilon 4^(b/d) >= 1.
    rows = [r for r in data.get("up", []) if "product" in r]
    if not rows:
        claims.append(Claim("UP: every compressor's declared error and bits obey ε·4^{b/d} ≥ 1", False, {},
                            unmeasurable="no compressor declared a class constant"))
    else:
        bad = [r for r in rows if not r["product"] >= 1.0 - 1e-9]
        low = min(rows, key=lambda r: r["product"])
        claims.append(Claim(
            "UP: every compressor's declared error and bits obey ε·4^{b/d} ≥ 1 (ε = ω/(ω+1) or 1 − δ)",
            not bad,
            {"(compressor, d) checked": len(rows), "violations": [(r["compressor"], r["d"], rounded(r["product"], 4))
                                                                 for r in bad],
             "closest to the limit": (low["compressor"], low["d"], rounded(low["product"], 4))},
            "" if not bad else "A declared constant is below the information-theoretic limit: it cannot be a bound "
                               "for every x (float inputs are finite, so only an exact compressor, ω = 0, escapes)."))

    dims = [str(d) for d in data.get("dims", [])]
    kas, dit = data.get("kashin", {}), data.get("dithering", {})
    # 2. T-UP-2a: level bounded, variance within (K^2 - 1)/lambda.
    level_max = float(p.get("level_max", 5.0))
    if not dims or any(d not in kas for d in dims):
        claims.append(Claim(f"Kashin: realised level K ≤ {level_max:g} and ω ≤ (K² − 1)/λ at every d", False, {},
                            unmeasurable="no Kashin measurements"))
    else:
        top = {d: max(kas[d]["levels"]) for d in dims}
        om = {d: max(kas[d]["omega"]) for d in dims}
        # per vector: measured omega against the mean over the same calls of (K^2 - 1)/lambda at each call's level
        # (z = 5 standard errors of the Monte-Carlo mean: the exact conditional variance is
        # (d/N)(N M^2 - ||a||^2), the bound has ||x||^2 in place of ||a||^2, a small slack)
        z = float(p.get("z", 5.0))
        slack = {d: min(b - o + z * s for o, s, b in zip(kas[d]["omega"], kas[d].get("omega_se", [0.0] * len(kas[d]["omega"])),
                                                         kas[d]["bound"])) for d in dims}
        bnd = {d: max(kas[d]["bound"]) for d in dims}
        measurable = all(_finite(top[d], om[d], bnd[d], slack[d]) for d in dims)
        held = measurable and all(top[d] <= level_max and slack[d] >= 0 for d in dims)
        claims.append(Claim(
            f"Kashin (λ = {p.get('lam', 2.0)}): realised level K ≤ {level_max:g} and, per vector, measured ω ≤ (K² − 1)/λ "
            "at the realised levels (averaged over the same calls; within 5 standard errors) at every d",
            held,
            {"largest level per d": {d: rounded(top[d], 3) for d in dims},
             "largest measured ω per d": {d: rounded(om[d], 3) for d in dims},
             "largest bound (K² − 1)/λ per d (mean over the calls)": {d: rounded(bnd[d], 3) for d in dims},
             "smallest bound − ω + 5 standard errors over the vectors": {d: rounded(slack[d], 3) for d in dims}},
            "" if held or not measurable else _level_note(top, slack, level_max),
            "" if measurable else "a level or variance is not finite"))

    # 3. T-UP-2b: Kashin's variance dimension-free, dithering's grows like sqrt(d), Kashin below at the largest d.
    factor = float(p.get("free_factor", 3.0))
    if len(dims) < 2 or any(d not in kas or d not in dit for d in dims):
        claims.append(Claim("Kashin's ω is dimension-free, 1-level dithering's grows like √d", False, {},
                            unmeasurable="fewer than two dimensions measured"))
    else:
        # per seed the largest omega over its vectors, then the median over the seeds
        ok_ = {d: _median([max(v) for v in kas[d].get("omega_by_seed", [kas[d]["omega"]])]) for d in dims}
        oq = {d: _median([max(v) for v in dit[d].get("omega_by_seed", [dit[d]["omega"]])]) for d in dims}
        lo, hi = dims[0], dims[-1]
        sqrt_growth = math.sqrt(int(hi) / int(lo))
        measurable = all(_finite(ok_[d], oq[d]) for d in dims) and min(ok_.values()) > 0 and oq[lo] > 0
        k_ratio = max(ok_.values()) / min(ok_.values()) if measurable else math.nan
        q_growth = oq[hi] / oq[lo] if measurable else math.nan
        held = measurable and k_ratio <= factor and q_growth >= 0.5 * sqrt_growth and ok_[hi] < oq[hi]
        claims.append(Claim(
            f"Kashin's ω (medians over the seeds) is dimension-free (max/min over d ≤ {factor:g}) while 1-level ℓ2 dithering's grows like √d "
            "(at least half as fast), and Kashin's is the smaller at the largest d with similar bits",
            held,
            {"Kashin ω per d": {d: rounded(ok_[d], 3) for d in dims}, "dithering ω per d": {d: rounded(oq[d], 3) for d in dims},
             "Kashin max/min": rounded(k_ratio, 3), "dithering growth": rounded(q_growth, 3),
             "√(d_max/d_min)": rounded(sqrt_growth, 3),
             "bits per coordinate (Kashin, dithering) at d_max": (rounded(kas[hi]["bits_per_coordinate"], 3),
                                                                  rounded(dit[hi]["bits_per_coordinate"], 3))},
            "" if held or not measurable else "Kashin's variance drifts with d or dithering's does not grow as √d on "
                                              "these inputs.",
            "" if measurable else "a variance is zero or not finite"))

    # 4. T-OGC-1: spherical within a factor of 4^(-b/d).
    sph = data.get("spherical", {})
    sf = float(p.get("spherical_factor", 2.0))
    if not sph:
        claims.append(Claim("Spherical compression within a factor 2 of 4^{-b/d}", False, {},
                            unmeasurable="no spherical measurements"))
    else:
        ratios = {b: v["mean_error"] / v["bound"] for b, v in sph.items()}
        measurable = all(_finite(r) for r in ratios.values())
        held = measurable and all(1.0 / sf <= r <= sf for r in ratios.values())
        claims.append(Claim(
            f"Spherical compression (d = {p.get('spherical_dim', 8)}) has mean error (median over the seeds) within a factor {sf:g} of the "
            "average-case bound 4^{-b/d}",
            held, {"mean error / 4^{-b/d} per b": {b: rounded(r, 3) for b, r in ratios.items()},
                   "mean error per b": {b: rounded(v["mean_error"], 4) for b, v in sph.items()}},
            "" if held or not measurable else "The random codebook is not close to the average-case bound.",
            "" if measurable else "an error is not finite"))

    # 5. T-BC-1: Top-k error on Gaussian vectors.
    tk = data.get("topk")
    target, tol = float(p.get("topk_target", 0.56)), float(p.get("topk_tol", 0.03))
    if not tk or not _finite(tk.get("topk_error"), tk.get("random_error")):
        claims.append(Claim("Top-k's error on Gaussian vectors ≈ 0.56, far below random sparsification's 0.9", False,
                            {}, unmeasurable="no Top-k measurements"))
    else:
        held = abs(tk["topk_error"] - target) <= tol and tk["topk_error"] < tk["random_error"]
        claims.append(Claim(
            f"Top-k (d = {tk['d']}, k = {tk['k']}) on Gaussian vectors: error (median over the seeds) ≈ {target} (within {tol}), below random "
            f"sparsification's 1 − k/d = {1 - tk['k'] / tk['d']:.2f}",
            held, {"Top-k error": rounded(tk["topk_error"], 4), "random sparsification error": rounded(tk["random_error"], 4),
                   "trials": tk["trials"]},
            "" if held else "Top-k's error is off the Gaussian tail value."))
    return claims


def _level_note(top: dict, slack: dict, level_max: float) -> str:
    """Which half of claim 2 failed, and what it says about the frame."""
    parts = []
    over = {d: k for d, k in top.items() if k > level_max}
    if over:
        parts.append("the largest realised level over all frames drawn exceeds {:g} at d = {} ({}): the randomized "
                     "Hadamard frame has no dimension-free level for every draw; its tail grows slowly with d (the "
                     "number of frames drawn per d is the same, so this is not a sample-size effect)".format(
                         level_max, ", ".join(over), ", ".join(f"{k:.3g}" for k in over.values())))
    neg = {d: v for d, v in slack.items() if v < 0}
    if neg:
        parts.append("a vector's measured ω exceeds (K² − 1)/λ at its realised levels by more than 5 standard errors "
                     "at d = " + ", ".join(neg))
    else:
        parts.append("the variance bound (K² − 1)/λ at the realised levels holds for every vector")
    return "; ".join(parts) + "."


def figure(results, path: Path) -> Path:
    """Left: ω against d (Kashin, 1-level dithering, the √d − 1 line); right: every declared compressor's
    error after the best scale against bits per coordinate at the largest d, with the UP line 4^{-b}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = results.data
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    dims = [int(d) for d in data.get("dims", [])]
    if dims:
        a1.plot(dims, [max(data["kashin"][str(d)]["omega"]) for d in dims], "o-", label="Kashin (λ = 2, 1 bit)")
        a1.plot(dims, [max(data["dithering"][str(d)]["omega"]) for d in dims], "s-", label="1-level ℓ2 dithering")
        a1.plot(dims, [math.sqrt(d) - 1 for d in dims], "k:", label="√d − 1")
        a1.set_xscale("log", base=2)
        a1.set_yscale("log")
    a1.set_xlabel("d")
    a1.set_ylabel("measured ω (largest over the vectors)")
    a1.legend(fontsize=8)
    a1.grid(True, which="both", alpha=0.3)
    rows = [r for r in data.get("up", []) if "product" in r and dims and r["d"] == max(dims)]
    for r in rows:
        b = r["bits"] / r["d"]
        a2.scatter(b, max(r["epsilon"], 1e-18), s=20)
        a2.annotate(r["compressor"], (b, max(r["epsilon"], 1e-18)), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if rows:
        import numpy as np

        xs = np.linspace(0.05, max(r["bits"] / r["d"] for r in rows) * 1.1, 200)
        a2.plot(xs, np.maximum(4.0 ** (-xs), 1e-18), "k-", label=r"UP: $\varepsilon = 4^{-b}$")
        a2.set_xscale("log", base=2)
        a2.set_yscale("log")
        a2.legend(fontsize=8)
    a2.set_xlabel("bits per coordinate (declared)")
    a2.set_ylabel(r"declared $\varepsilon$ (ω/(ω+1) or 1 − δ)")
    a2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
