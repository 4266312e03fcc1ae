"""``cq-dn-plane`` (CQ paper §4.4, Figure 4; App. B.2): improvement factors of MARINA with IQ and CQ over
GD in the d–n plane and the d = n numbers 0.23 / 0.03 / 7.29. Theory only (no optimiser runs): the
numbers come from :func:`commpress.theory.dn_plane` and :func:`commpress.theory.dn_equal_analysis`.
See ``cq-dn-plane.toml``."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np

from commpress.reproductions._compare import rounded
from commpress.reproductions._results import Claim


def round_sig(x: float, digits: int) -> float:
    """``x`` rounded to ``digits`` significant digits (half up, as printed numbers are)."""
    if x == 0 or not math.isfinite(x):
        return x
    exp = math.floor(math.log10(abs(x)))
    q = Decimal(1).scaleb(exp - digits + 1)
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


def decimals_of(printed: float) -> int:
    """Decimals of a number as printed (0.23 -> 2, 7.29 -> 2, 0.03 -> 2)."""
    text = repr(float(printed))
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


def significant_of(printed: float) -> int:
    """Significant digits of a number as printed (0.23 -> 2, 7.29 -> 3, 0.03 -> 1)."""
    digits = repr(float(printed)).replace(".", "").lstrip("0").rstrip("0")
    return max(1, len(digits))


def matches_paper(ours: float, printed: float) -> dict:
    """Does ``ours`` reproduce the printed number? At the paper's decimals, and (where the paper prints
    two or more significant digits) to two significant digits."""
    dec = decimals_of(printed)
    at_decimals = round(Decimal(repr(ours)).quantize(Decimal(1).scaleb(-dec), rounding=ROUND_HALF_UP), dec)
    out = {"ours": ours, "paper": printed, "ours at the paper's decimals": float(at_decimals),
           "match at the paper's decimals": float(at_decimals) == printed}
    if significant_of(printed) >= 2:
        out["ours to 2 significant digits"] = round_sig(ours, 2)
        out["match to 2 significant digits"] = round_sig(ours, 2) == round_sig(printed, 2)
    return out


def compute(results) -> None:
    from commpress.theory import dn_equal_analysis, dn_plane

    top = float(results.params.get("log10_max", 5))
    points = int(results.params.get("points", 101))
    grid = np.logspace(0.0, top, points)
    plane = dn_plane(grid, grid)
    limit = dn_equal_analysis()
    finite = {int(d): dn_equal_analysis(int(d)) for d in (16, 64, 256, 1024, 4096, 65536)}
    results.data.update({
        "d": grid, "n": grid, "if_iq": plane.if_iq, "if_cq": plane.if_cq, "ratio": plane.ratio,
        "p_iq": plane.p_iq, "p_cq": plane.p_cq,
        "d_equals_n_limit": {"p_iq": limit.p_iq, "if_iq": limit.if_iq, "p_cq": limit.p_cq, "if_cq": limit.if_cq,
                             "ratio": limit.ratio},
        "d_equals_n_finite": {str(d): {"if_iq": a.if_iq, "if_cq": a.if_cq, "ratio": a.ratio}
                              for d, a in finite.items()},
    })


def check(results) -> list[Claim]:
    data = results.data
    paper = results.params.get("paper", {"if_iq": 0.23, "if_cq": 0.03, "ratio": 7.29})
    within = float(results.params.get("within", 1.25))
    lim = data["d_equals_n_limit"]
    claims = []

    # 1. The d = n numbers of App. B.2.
    bad = [k for k in ("if_iq", "if_cq", "ratio") if not math.isfinite(float(lim[k]))]
    checks = {k: matches_paper(float(lim[k]), float(paper[k])) for k in ("if_iq", "if_cq", "ratio") if k not in bad}
    ok = not bad and all(c["match at the paper's decimals"] and c.get("match to 2 significant digits", True)
                         for c in checks.values())
    claims.append(Claim(
        f"At d = n (d → ∞): IF_IQ ≈ {paper['if_iq']}, IF_CQ ≈ {paper['if_cq']}, speed-up IF_IQ/IF_CQ ≈ {paper['ratio']} "
        "(App. B.2)",
        ok,
        {"IF_IQ": rounded(lim["if_iq"], 4), "IF_CQ": rounded(lim["if_cq"], 4), "ratio": rounded(lim["ratio"], 4),
         "p*_IQ": rounded(lim["p_iq"], 4),
         **{f"{k}: {name}": v for k, c in checks.items() for name, v in c.items()
            if name.startswith("match") or name.startswith("ours ")},
         "finite d = n = 1024": {k: rounded(v, 3) for k, v in data["d_equals_n_finite"]["1024"].items()}},
        "" if ok or bad else "The published numbers are the d = n → ∞ limit in the paper's AB convention; a finite d "
                             "or the rigorous constants do not reproduce them.",
        f"the formulas gave no finite value for {', '.join(bad)}" if bad else ""))

    D, N = np.meshgrid(np.asarray(data["d"]), np.asarray(data["n"]), indexing="ij")
    if_iq, if_cq, ratio = (np.asarray(data[k]) for k in ("if_iq", "if_cq", "ratio"))
    one_bit = (D + 32.0) / (32.0 * D)

    # 2. IQ defaults to GD when d >> n.
    region = D >= 100 * N
    if not region.any():
        why = "no grid point with d ≥ 100 n (extend the grid: log10_max ≥ 2)"
    elif not np.all(np.isfinite(if_iq[region])):
        why = "IF_IQ is not finite at some grid points with d ≥ 100 n"
    else:
        why = ""
    worst = float(if_iq[region].min()) if region.any() else math.nan
    held = not why and bool(np.all(if_iq[region] >= 1.0 - 1e-12))
    claims.append(Claim(
        "With IQ, MARINA defaults to GD (IF_IQ = 1, p* = 1) when d ≫ n (here: every grid point with d ≥ 100 n)",
        held, {"grid points with d ≥ 100 n": int(region.sum()), "smallest IF_IQ there": rounded(worst, 4),
               "IQ = GD from d/n ≈ (top row of the grid)": _boundary(D, N, if_iq)},
        "" if held or why else "Some points with d ≥ 100 n still gain from IQ: there A_IQ = d/(4n) ≥ 25 but the 1-bit "
                               "payload saves enough for a small p to pay off.", why))

    # 3. IQ reaches the 1-bit limit when n >> d; CQ already when n >> sqrt(d).
    r_iq = N >= 1000 * D
    r_cq = N >= 100 * np.sqrt(D)
    q_iq = float((if_iq[r_iq] / one_bit[r_iq]).max()) if r_iq.any() else math.nan
    q_cq = float((if_cq[r_cq] / one_bit[r_cq]).max()) if r_cq.any() else math.nan
    # at the same points (n >= 100 sqrt(d)) IQ is often far from the limit: CQ gets there first
    q_iq_on_cq = float((if_iq[r_cq] / one_bit[r_cq]).max()) if r_cq.any() else math.nan
    missing = [name for name, region_ in (("n ≥ 1000 d", r_iq), ("n ≥ 100 √d", r_cq)) if not region_.any()]
    if missing:
        why = f"no grid point with {' or '.join(missing)} (extend the grid)"
    elif not all(math.isfinite(v) for v in (q_iq, q_cq, q_iq_on_cq)):
        why = "an improvement factor is not finite in the regions compared"
    else:
        why = ""
    held = not why and q_iq <= within and q_cq <= within and q_iq_on_cq > within
    claims.append(Claim(
        f"IQ reaches the 1-bit limit (d+32)/(32d) ≈ 1/32 when n ≫ d (n ≥ 1000 d), CQ already when n ≫ √d "
        f"(n ≥ 100 √d), where IQ does not (within {within:g} × the limit)",
        held, {"max IF_IQ/limit, n ≥ 1000 d": rounded(q_iq), "max IF_CQ/limit, n ≥ 100 √d": rounded(q_cq),
               "max IF_IQ/limit, n ≥ 100 √d": rounded(q_iq_on_cq)},
        "" if held or why else _limit_note(D, N, if_iq, if_cq, one_bit, within), why))

    # 4. CQ surpasses IQ by up to a factor X, largest where n^2 >> d >> n; bounded by 32.
    why = "" if ratio.size and np.all(np.isfinite(ratio)) else "IF_IQ/IF_CQ is not finite on the whole grid"
    k = np.unravel_index(int(np.argmax(np.where(np.isfinite(ratio), ratio, -np.inf))), ratio.shape)
    d_max, n_max, r_max = float(D[k]), float(N[k]), float(ratio[k])
    held = not why and r_max < 32.0 and d_max > n_max and d_max < n_max ** 2 and bool(np.all(ratio >= 1.0 - 1e-9))
    claims.append(Claim(
        "CQ surpasses IQ (IF_IQ/IF_CQ ≥ 1 everywhere) by up to a factor below 32, largest where n² ≫ d ≫ n",
        held, {"max IF_IQ/IF_CQ on the grid": rounded(r_max, 4), "at d": rounded(d_max), "at n": rounded(n_max),
               "d/n there": rounded(d_max / n_max), "n²/d there": rounded(n_max ** 2 / d_max),
               "grid": f"d, n in [1, {data['d'][-1]:.0e}], {len(data['d'])} points per axis",
               "paper's maximum": "lost in our copy"},
        "" if held or why else _max_note(r_max, d_max, n_max, ratio), why))
    return claims


def _max_note(r_max: float, d_max: float, n_max: float, ratio) -> str:
    """Which part of claim 4 failed."""
    parts = []
    if r_max >= 32.0:
        parts.append(f"the largest ratio, {r_max:.3g}, is not below 32")
    if not (n_max < d_max < n_max ** 2):
        parts.append(f"it lies at d = {d_max:.3g}, n = {n_max:.3g}, outside n < d < n²")
    if not np.all(ratio >= 1.0 - 1e-9):
        parts.append(f"IQ beats CQ somewhere (smallest ratio {float(np.min(ratio)):.3g})")
    return "The maximum is not where the claim puts it: " + "; ".join(parts) + "." if parts else ""


def _limit_note(D, N, if_iq, if_cq, one_bit, within) -> str:
    """Why the 1-bit-limit claim missed: how close each quantizer gets along growing n/d, n/√d."""
    def trend(z, scale):
        out = []
        for k in (1e2, 1e3, 1e4):
            mask = np.isclose(N, k * scale, rtol=0.03)
            if mask.any():
                out.append(f"{float((z[mask] / one_bit[mask]).max()):.3g} at n = {k:g}·{'d' if scale is D else '√d'}")
        return ", ".join(out)

    return ("The approach to the limit is slow: IF − limit shrinks like √A (√(d/(4n)) for IQ, √(d/(4n²)) for CQ), "
            f"so the a-priori thresholds for '≫' decide the verdict, not the trend. IF/limit for IQ: "
            f"{trend(if_iq, D) or 'n/a'}; for CQ: {trend(if_cq, np.sqrt(D)) or 'n/a'} (criterion: ≤ {within:g}). "
            "Qualitatively both reach the 1-bit limit, CQ at far smaller n.")


def _boundary(D, N, if_iq) -> float | None:
    row = D[-1]
    gd = if_iq[-1] >= 1.0 - 1e-12
    if not gd.any():
        return None
    n_edge = float(N[-1][gd].max())
    return rounded(float(row[0]) / n_edge)


def figure(results, path: Path) -> Path:
    """Figure 4 of the paper: heat maps of IF_IQ, IF_CQ (log colour scale, 1/32 to 1) and IF_IQ/IF_CQ over
    log d × log n, with the lines d = n and d = n²."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    data = results.data
    d, n = np.asarray(data["d"]), np.asarray(data["n"])
    panels = [(np.asarray(data["if_iq"]), "(a) IQ / GD: IF$_{IQ}$", LogNorm(1 / 32, 1), "viridis"),
              (np.asarray(data["if_cq"]), "(b) CQ / GD: IF$_{CQ}$", LogNorm(1 / 32, 1), "viridis"),
              (np.asarray(data["ratio"]), "(c) speed-up of CQ over IQ: IF$_{IQ}$/IF$_{CQ}$", LogNorm(1, 32), "magma")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, (z, title, norm, cmap) in zip(axes, panels):
        mesh = ax.pcolormesh(n, d, z, norm=norm, cmap=cmap, shading="nearest")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n (clients)")
        ax.set_ylabel("d (dimension)")
        ax.plot(n, n, color="w", ls="--", lw=1.0, label="d = n")
        ax.plot(n, n ** 2, color="w", ls=":", lw=1.0, label="d = n²")
        ax.set_xlim(n[0], n[-1])
        ax.set_ylim(d[0], d[-1])
        ax.set_title(title, fontsize=10)
        fig.colorbar(mesh, ax=ax)
        ax.legend(fontsize=7, loc="lower right")
    lim = data["d_equals_n_limit"]
    heading = (f"{results.name}: improvement factors over GD (paper convention); d = n → ∞: IF_IQ = {lim['if_iq']:.4f}, "
               f"IF_CQ = {lim['if_cq']:.4f}, ratio = {lim['ratio']:.3f}")
    from commpress.reproductions._figure import finish_figure

    return finish_figure(fig, results, path, heading)
