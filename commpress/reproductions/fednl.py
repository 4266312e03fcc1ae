"""FedNL reproduction: runs every method itself (``compute``) and checks the headline claims."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from commpress.reproductions import Claim
from commpress.reproductions._second_order import (fewer_claim, first_order_at_budget, fmt, newton_zero, over_seeds,
                                                   plot_curve, split_problem, trace)


def _problem(params: dict, l2: float):
    return split_problem(params["dataset"], int(params["n_clients"]), int(params["samples_per_client"]), l2=l2)


def compute(results) -> None:
    prm = results.params
    rounds, target = int(prm["rounds"]), float(prm["target"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batched eigh: one thread is far faster on a shared machine
    try:
        p = _problem(prm, float(prm["l2"]))
        p_ill = _problem(prm, float(prm["l2_ill"]))
        xs, xs_ill = p.optimum()[1], p_ill.optimum()[1]
        x0, far = xs + float(prm["shift"]), xs + float(prm["far_shift"])
        d = p.d
        runs: dict[str, Any] = {}

        seeds = [int(s) for s in prm["seeds"]]

        def go(key, problem, name, start, n_rounds=rounds, random=False, **kw):
            if random:  # medians over the seeds decide
                runs[key] = over_seeds(seeds, lambda s: trace(problem, name, start, n_rounds, target=target, seed=s, **kw))
            else:
                runs[key] = trace(problem, name, start, n_rounds, target=target, **kw)

        go("rank1", p, "fednl", x0, compressor="rank")
        go("rank1_ill", p_ill, "fednl", xs_ill + float(prm["shift"]), compressor="rank")
        go("rank1_conservative", p, "fednl", x0, compressor="rank", alpha="conservative")
        go("rank1_option2", p, "fednl", x0, compressor="rank", option=2)
        go("topd", p, "fednl", x0, compressor={"name": "topk", "k": d})
        go("randd", p, "fednl", x0, random=True, compressor={"name": "randk", "k": d})
        runs["n0"] = newton_zero(p, x0, rounds, target=target)
        go("ls_far", p, "fednl_ls", far, compressor="rank")
        go("cr_far", p, "fednl_cr", far, compressor="rank")
        go("plain_far", p, "fednl", far, compressor="rank")
        go("pp", p, "fednl_pp", x0, int(prm["pp_rounds"]), random=True, compressor="rank", tau=max(1, p.n // 2))
        go("bc", p, "fednl_bc", x0, random=True, compressor="rank", p=0.5, model_compressor={"name": "topk", "k": max(1, d // 2)})
        go("bc_full", p, "fednl_bc", x0, compressor="rank", p=1.0, model_compressor="identity")
        budget = runs["rank1"]["bits_to_target"] or runs["rank1"]["bits"][-1]
        runs["gd_at_budget"] = first_order_at_budget(p, "gd", x0, budget)
        runs["diana_at_budget"] = first_order_at_budget(p, "diana", x0, budget,
                                                        compressor={"name": "dithering", "s": round(math.sqrt(d))})
        sm, sm_ill = p.smoothness(), p_ill.smoothness()
        results.data.update(runs=runs, kappa=sm.L_minus / sm.mu, kappa_ill=sm_ill.L_minus / sm_ill.mu,
                            budget=budget, n=p.n, d=d)
    finally:
        torch.set_num_threads(threads)


def figure(results, path: Path) -> Path:
    """(a) ‖x − x*‖² against bits per node: FedNL Rank-1 (α = 1 and α = 1 − √(1 − δ)), Top-d, Rand-d,
    Newton Zero, and GD / DIANA within FedNL's bit budget; (b) against rounds: λ = 1e-3 vs 1e-4 and
    options 1 vs 2; (c) the Hessian error 𝓗^k against rounds; (d) the variants LS / CR / plain FedNL
    from x* + 2·1, PP and BC, against bits per node. The target is the dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = results.data
    runs = data.get("runs", {})
    target = float(results.params["target"])
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    (a1, a2), (a3, a4) = axes
    plot_curve(a1, runs.get("rank1"), "FedNL Rank-1, α = 1", color="C0", lw=2)
    plot_curve(a1, runs.get("rank1_conservative"), "FedNL Rank-1, α = 1 − √(1 − δ)", color="C0", ls="--")
    plot_curve(a1, runs.get("topd"), "FedNL Top-d", color="C1")
    plot_curve(a1, runs.get("randd"), "FedNL Rand-d (first seed)", color="C2")
    plot_curve(a1, runs.get("n0"), "Newton Zero", color="C3")
    for key, label, color, ls in (("gd_at_budget", "GD (1/L)", "C4", "-"),
                                  ("diana_at_budget", "DIANA (dithering)", "C5", "--")):
        r = runs.get(key)
        if r and "curve_dist2" in r:
            plot_curve(a1, r, f"{label}, within FedNL's bits", color=color, ls=ls)
        elif r and data.get("budget") is not None:
            a1.scatter([data["budget"]], [r["dist2"]], color=color, label=f"{label} at FedNL's bits")
    if data.get("budget") is not None:
        a1.axvline(data["budget"], color="grey", lw=0.8, ls="-.", label="FedNL's bits to target")
    a1.set_xlabel("bits per node (up + down, cumulative)")
    a1.set_title("(a) FedNL vs Newton Zero, GD, DIANA; compressors")
    plot_curve(a2, runs.get("rank1"), f"Rank-1, λ = 1e-3 (L/μ ≈ {data.get('kappa', math.nan):.3g})", x="rounds",
               color="C0", lw=2)
    plot_curve(a2, runs.get("rank1_ill"), f"Rank-1, λ = 1e-4 (L/μ ≈ {data.get('kappa_ill', math.nan):.3g})",
               x="rounds", color="C1")
    plot_curve(a2, runs.get("rank1_option2"), "Rank-1, option 2 (λ = 1e-3)", x="rounds", color="C2", ls="--")
    a2.set_xlabel("rounds")
    a2.set_title("(b) condition number; options 1 and 2")
    for key, label, color in (("rank1", "Rank-1, λ = 1e-3", "C0"), ("rank1_ill", "Rank-1, λ = 1e-4", "C1"),
                              ("topd", "Top-d, λ = 1e-3", "C2")):
        h = [v for v in (runs.get(key) or {}).get("hess_err", []) if v is not None and math.isfinite(v) and v > 0]
        if h:
            a3.plot(range(1, len(h) + 1), h, color=color, label=label)
    a3.set_xlabel("rounds")
    a3.set_ylabel(r"$\mathcal{H}^k = \frac{1}{n}\sum_i \|H_i^k - \nabla^2 f_i(x^*)\|_F^2$")
    a3.set_yscale("log")
    a3.set_title("(c) Hessian learning")
    a3.legend(fontsize=8)
    a3.grid(True, which="both", alpha=0.3)
    plot_curve(a4, runs.get("ls_far"), "FedNL-LS from x* + 2·1", color="C0")
    plot_curve(a4, runs.get("cr_far"), "FedNL-CR from x* + 2·1", color="C1")
    plot_curve(a4, runs.get("plain_far"), "FedNL from x* + 2·1", color="C3", ls=":")
    plot_curve(a4, runs.get("pp"), f"FedNL-PP, τ = n/2 (n = {data.get('n', '?')})", color="C2")
    plot_curve(a4, runs.get("bc"), "FedNL-BC p = 0.5, Top-d/2 model", color="C4")
    plot_curve(a4, runs.get("bc_full"), "FedNL-BC p = 1, dense model", color="C5", ls="--")
    a4.set_xlabel("bits per node (up + down, cumulative)")
    for ax in (a1, a4):
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    a4.set_title("(d) globalisation (LS, CR), partial participation, BC")
    for ax in (a1, a2, a4):
        ax.axhline(target, color="k", lw=0.8, ls=":", label=f"target {target:g}")
        ax.set_yscale("log")
        ax.set_ylabel("‖x − x*‖²")
        ax.legend(fontsize=7, loc="center right" if ax is a1 else "best")
        ax.grid(True, which="both", alpha=0.3)
    n, d = data.get("n"), data.get("d")
    fig.suptitle(f"FedNL, L2-regularised logistic regression ({results.params.get('dataset', '')}, n = {n}, d = {d}"
                 f"{', quick' if getattr(results, 'quick', False) else ''})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _fewer(a, b, what_a: str, what_b: str, claim: str, numbers: dict) -> Claim:
    """a < b with None = not reached."""
    return fewer_claim(a, b, claim, numbers, what_a, what_b)


def check(results) -> list[Claim]:
    data = results.data
    runs, target = data["runs"], float(results.params["target"])
    r1 = runs["rank1"]
    claims = []
    nums = {"FedNL Rank-1 bits": fmt(r1["bits_to_target"]), "N0 bits": fmt(runs["n0"]["bits_to_target"]),
            "FedNL rounds": fmt(r1["rounds_to_target"]), "N0 rounds": fmt(runs["n0"]["rounds_to_target"])}
    claims.append(_fewer(r1["bits_to_target"], runs["n0"]["bits_to_target"], "FedNL", "Newton Zero",
                         f"FedNL (Rank-1, α = 1) needs fewer bits per node than Newton Zero to ‖x − x*‖² ≤ {target:g}", nums))
    gd, di = runs["gd_at_budget"], runs["diana_at_budget"]
    nums = {"budget (FedNL bits)": fmt(data["budget"]), "GD rounds in budget": gd["rounds"],
            "GD ‖x − x*‖² at budget": fmt(gd["dist2"]), "DIANA rounds in budget": di["rounds"],
            "DIANA ‖x − x*‖² at budget": fmt(di["dist2"])}
    if r1["bits_to_target"] is None:
        claims.append(Claim("FedNL needs fewer bits than GD and DIANA", False, nums, unmeasurable="FedNL did not reach the target"))
    else:
        held = gd["best_dist2"] > target and di["best_dist2"] > target
        claims.append(Claim("FedNL needs fewer bits per node than GD and DIANA (they are above the target "
                            "when FedNL's bits are spent)", held, nums,
                            note="" if held else "a first-order method reached the target within FedNL's bits"))
    k1, k2 = r1["rounds_to_target"], runs["rank1_ill"]["rounds_to_target"]
    nums = {"rounds λ=1e-3": fmt(k1), "rounds λ=1e-4": fmt(k2), "L/μ λ=1e-3": fmt(data["kappa"]),
            "L/μ λ=1e-4": fmt(data["kappa_ill"])}
    c = "FedNL's rounds barely depend on the condition number (≤ 2× while L/μ grows ≥ 9×)"
    if k1 is None or k2 is None:
        claims.append(Claim(c, False, nums, unmeasurable="a run did not reach the target"))
    else:
        claims.append(Claim(c, k2 <= 2 * k1 and data["kappa_ill"] >= 9 * data["kappa"], nums))
    e = r1["dist2"]
    ratios = [b / a for a, b in zip(e, e[1:]) if a > 0]
    nums = {"first ratio": fmt(ratios[0] if ratios else None), "last ratio": fmt(ratios[-1] if ratios else None)}
    c = "superlinear local convergence: the contraction factor of ‖x − x*‖² shrinks (last ≤ first / 4)"
    if len(ratios) < 2:
        claims.append(Claim(c, False, nums, unmeasurable="fewer than three iterates"))
    else:
        held = ratios[-1] <= ratios[0] / 4
        claims.append(Claim(c, held, nums, note="" if held else
                            "the factor stays roughly constant (fast linear) until 1e-10: the Rank-1 Hessian "
                            "estimate is not yet accurate enough for the superlinear phase"))
    h = r1["hess_err"]
    nums = {"𝓗 first": fmt(h[0] if h else None), "𝓗 last": fmt(h[-1] if h else None)}
    c = "Hessian learning: 𝓗^k = mean ‖H_i^k − ∇²f_i(x*)‖_F² decreases by 10× or more"
    claims.append(Claim(c, bool(h) and h[-1] * 10 <= h[0], nums, unmeasurable="" if h else "no rounds"))
    nums = {"bits α=1": fmt(r1["bits_to_target"]), "bits α=1−√(1−δ)": fmt(runs["rank1_conservative"]["bits_to_target"])}
    claims.append(_fewer(r1["bits_to_target"], runs["rank1_conservative"]["bits_to_target"], "α = 1", "α = 1 − √(1 − δ)",
                         "α = 1 needs fewer bits than α = 1 − √(1 − δ)", nums))
    nums = {"Rank-1": fmt(r1["bits_to_target"]), "Top-d": fmt(runs["topd"]["bits_to_target"]),
            "Rand-d": fmt(runs["randd"]["bits_to_target"])}
    others = [runs["topd"]["bits_to_target"], runs["randd"]["bits_to_target"]]
    c = "Rank-1 is the best compressor per bit (vs Top-d, Rand-d)"
    if r1["bits_to_target"] is None:
        claims.append(Claim(c, False, nums, unmeasurable="Rank-1 did not reach the target"))
    else:
        held = all(o is None or r1["bits_to_target"] < o for o in others)
        note = "another compressor needed fewer bits" if not held else (
            "a compressor that did not reach the target within the rounds counts as needing more bits"
            if any(o is None for o in others) else "")
        claims.append(Claim(c, held, nums, note=note))
    k_opt2 = runs["rank1_option2"]["rounds_to_target"]
    nums = {"rounds option 1": fmt(k1), "rounds option 2": fmt(k_opt2)}
    c = "options 1 and 2 behave alike (rounds within 2×)"
    if k1 is None or k_opt2 is None:
        claims.append(Claim(c, False, nums, unmeasurable="an option did not reach the target"))
    else:
        held = max(k1, k_opt2) <= 2 * min(k1, k_opt2)
        claims.append(Claim(c, held, nums, note="" if held else
                            "option 2's shift l^k I (Frobenius) over-regularises far from x*: many more rounds"))
    ls, cr, plain = runs["ls_far"], runs["cr_far"], runs["plain_far"]
    nums = {"LS rounds": fmt(ls["rounds_to_target"]), "CR rounds": fmt(cr["rounds_to_target"]),
            "CR final ‖x − x*‖²": fmt(cr["dist2"][-1] if cr["dist2"] else None),
            "plain FedNL rounds": fmt(plain["rounds_to_target"]), "plain FedNL diverged": plain["diverged"]}
    held = ls["rounds_to_target"] is not None and cr["rounds_to_target"] is not None and plain["rounds_to_target"] is None
    claims.append(Claim("from x* + 2·1, FedNL-LS and FedNL-CR reach the target and plain FedNL does not", held, nums,
                        note="" if held else "see the rounds: CR's cubic term (logistic L_* bound) makes its steps short"))
    pp = runs["pp"]
    nums = {"PP rounds": fmt(pp["rounds_to_target"]), "τ/n": f"{data['n'] // 2}/{data['n']}"}
    claims.append(Claim("FedNL-PP with τ = n/2 converges to the target", pp["rounds_to_target"] is not None, nums,
                        unmeasurable=""))
    bc, full = runs["bc"], runs["bc_full"]
    nums = {"BC p=0.5 Top-d/2 bits": fmt(bc["bits_to_target"]), "BC p=1 dense model bits": fmt(full["bits_to_target"])}
    claims.append(_fewer(bc["bits_to_target"], full["bits_to_target"], "BC p=0.5", "BC p=1",
                         "FedNL-BC with p < 1 and a compressed model needs fewer total bits than p = 1 with a dense model",
                         nums))
    return claims
