"""Claim check of ``gradskip`` (GradSkip paper): GradSkip against Scaffnew on quadratics whose clients have
different condition numbers: communication rounds, and gradient computations per device. See
``gradskip.toml`` for the claim and the choices. The methods run directly
(:mod:`commpress.reproductions._local_training`): the sweep runner does not record gradient computations.

The verdicts are pure functions of the measured numbers (:func:`rounds_verdict`, :func:`savings_verdict`,
:func:`band_verdict`, :func:`per_round_verdict`), tested on fabricated numbers too.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.reproductions._local_training import one_thread, run_to_target
from commpress.reproductions._results import Claim
from commpress.reproductions._seeds import Spread, text_of


# ----------------------------------------------------------------------------- pure verdicts
def _median(values: list[float | None]) -> float:
    return Spread.of([math.inf if v is None else v for v in values]).median


def rounds_verdict(gradskip: list[float | None], scaffnew: list[float | None], limit: float) -> tuple[bool, float, str]:
    """GradSkip's median rounds ≤ ``limit`` × Scaffnew's. Returns (held, ratio, why unmeasurable or "")."""
    a, b = _median(gradskip), _median(scaffnew)
    if not (math.isfinite(a) and math.isfinite(b) and b > 0):
        return False, math.nan, "a median seed did not reach the target within the budget"
    return a / b <= limit, a / b, ""


def savings_verdict(gradskip: list[float | None], scaffnew: list[float | None],
                    limit: float) -> tuple[bool, float, str]:
    """The median (over seeds) gradient computations of the small-κ devices under GradSkip ≤ ``limit`` ×
    Scaffnew's. Returns (held, ratio, why unmeasurable or "")."""
    return rounds_verdict(gradskip, scaffnew, limit)


def band_verdict(value: float, reference: float, band: float) -> bool:
    """``value`` within a factor ``band`` of ``reference`` (both finite and positive)."""
    if not (math.isfinite(value) and math.isfinite(reference) and value > 0 and reference > 0):
        return False
    return 1.0 / band <= value / reference <= band


def per_round_verdict(measured: list[float], predicted: list[float], tol: float) -> tuple[bool, float]:
    """Every device's measured computations per round within relative ``tol`` of the prediction.
    Returns (held, the largest relative deviation)."""
    devs = [abs(m / p - 1.0) if p > 0 else math.inf for m, p in zip(measured, predicted)]
    worst = max(devs) if devs else math.nan
    return bool(devs) and math.isfinite(worst) and worst <= tol, worst


# ----------------------------------------------------------------------------- measurements
def build_problem(kappas: list[float], d: int, seed: int):
    """Quadratics with a shared random rotation, spectra log-spaced in [1, κ_i], b_i ~ N(0, I), x⁰ = 0."""
    from commpress.problems import QuadraticProblem

    g = torch.Generator().manual_seed(int(seed))
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    A = torch.stack([Q @ torch.diag(torch.logspace(0.0, math.log10(float(k)), d, dtype=torch.float64)) @ Q.T
                     for k in kappas])
    A = (A + A.transpose(1, 2)) / 2
    b = torch.randn(len(kappas), d, generator=g, dtype=torch.float64)
    return QuadraticProblem(A, b)


def compute(results) -> None:
    with one_thread():
        _compute(results)


def _compute(results) -> None:
    import commpress as cp
    from commpress.theory import expected_gradients_per_round

    p = results.params
    kappas = [float(k) for k in p["kappas"]]
    P = build_problem(kappas, int(p["dim"]), int(p["problem_seed"]))
    _, x_star = P.optimum()
    r0 = float((P.x0() - x_star).pow(2).sum())
    dist = lambda x: float((x - x_star).pow(2).sum()) / r0  # noqa: E731
    data: dict[str, Any] = {"kappas": kappas, "d": P.d, "mu": P.smoothness().mu}
    for name in ("scaffnew", "gradskip"):
        runs = []
        for seed in p["seeds"]:
            alg = cp.algorithms.make(name, P, seed=int(seed))
            out = run_to_target(alg, dist, float(p["target"]), int(p["max_iterations"]))
            q = getattr(alg, "q", torch.ones(P.n, dtype=torch.float64))
            runs.append({"seed": int(seed), "gamma": alg.gamma, "p": alg.p, "q": q.tolist(),
                         "predicted_per_round": expected_gradients_per_round(alg.p, q).tolist(), **out})
        data[name] = runs
    results.data.update(data)


def _small(kappas: list[float]) -> list[int]:
    k_max = max(kappas)
    return [i for i, k in enumerate(kappas) if k < k_max]


def _devices(run: dict[str, Any], idx: list[int]) -> float | None:
    return None if run["grads"] is None else float(sum(run["grads"][i] for i in idx))


# ----------------------------------------------------------------------------- claims
def check(results) -> list[Claim]:
    p, d = results.params, results.data
    kappas = d["kappas"]
    sc, gs = d["scaffnew"], d["gradskip"]
    small = _small(kappas)
    top = kappas.index(max(kappas))
    claims = []
    held, r, why = rounds_verdict([s["rounds"] for s in gs], [s["rounds"] for s in sc], float(p["rounds_ratio"]))
    claims.append(Claim(
        f"GradSkip needs at most {float(p['rounds_ratio']):g}× Scaffnew's communication rounds "
        f"(κ = ({', '.join(f'{k:g}' for k in kappas)}); medians over seeds)",
        held, {"GradSkip rounds": text_of(Spread.of([_inf(s["rounds"]) for s in gs]).as_dict()),
               "Scaffnew rounds": text_of(Spread.of([_inf(s["rounds"]) for s in sc]).as_dict()), "ratio": r},
        "" if held or why else "GradSkip's control variates of the small-κ clients move less often; here that cost "
                               "more rounds than the recalled theorem allows.", why))
    lim = float(p["grad_ratio"])
    g_small = [_devices(s, small) for s in gs]
    s_small = [_devices(s, small) for s in sc]
    held, r, why = savings_verdict(g_small, s_small, lim)
    pred = gs[0]["predicted_per_round"] if gs else []
    p_val = gs[0]["p"] if gs else math.nan
    predicted_ratio = (sum(pred[i] for i in small) * p_val / len(small)) if small and gs else math.nan
    claims.append(Claim(
        f"The κ < κ_max devices compute at most {lim:g}× Scaffnew's gradients (κ_max = {max(kappas):g}; medians over "
        "seeds)",
        held, {"GradSkip, small-κ devices": text_of(Spread.of([_inf(v) for v in g_small]).as_dict()),
               "Scaffnew, same devices": text_of(Spread.of([_inf(v) for v in s_small]).as_dict()), "ratio": r,
               "predicted p/(1 − q(1 − p))": predicted_ratio},
        "" if held or why else f"the measured ratio {r:.3g} is above {lim:g}; the recalled theory predicts "
                               f"{predicted_ratio:.3g} at this κ_max.", why))
    g_top = _median([None if s["grads"] is None else s["grads"][top] for s in gs])
    s_dev = _median([None if s["grads"] is None else sum(s["grads"]) / len(s["grads"]) for s in sc])
    band = float(p["kmax_band"])
    held = band_verdict(g_top, s_dev, band)
    why = "" if math.isfinite(g_top) and math.isfinite(s_dev) else "a median seed did not reach the target"
    claims.append(Claim(
        f"The κ_max device computes as many gradients as each Scaffnew device (within a factor {band:g}; medians)",
        held and not why, {"GradSkip κ_max device": g_top, "Scaffnew device (mean over devices)": s_dev,
                           "ratio": g_top / s_dev if s_dev and math.isfinite(s_dev) else math.nan},
        "" if held or why else "the κ_max device computed a different number of gradients than a Scaffnew device.",
        why))
    measured, predicted = _per_round(gs)
    tol = float(p["per_round_tol"])
    held, worst = per_round_verdict(measured, predicted, tol)
    why = "" if measured else "no seed reached the target (no complete rounds to average over)"
    claims.append(Claim(
        f"Per communication round each device computes 1/(1 − q_i(1 − p)) gradients (within {tol:.0%}; median over seeds)",
        held and not why, {"measured": [round(v, 3) for v in measured], "predicted": [round(v, 3) for v in predicted],
                           "largest relative deviation": worst},
        "" if held or why else "the measured per-round computations depart from the prediction by more than the "
                               "tolerance.", why))
    return claims


def _inf(v: float | None) -> float:
    return math.inf if v is None else v


def _per_round(runs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Median over the seeds that reached the target of (computations − 1)/rounds per device, and the prediction."""
    done = [s for s in runs if s["grads"] is not None and s["rounds"]]
    if not done:
        return [], []
    n = len(done[0]["grads"])
    measured = [Spread.of([(s["grads"][i] - 1) / s["rounds"] for s in done]).median for i in range(n)]
    return measured, list(done[0]["predicted_per_round"])


# ----------------------------------------------------------------------------- figure and report
def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from commpress.reproductions._figure import finish_figure

    d = results.data
    kappas = d["kappas"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].bar(range(len(kappas)), kappas, color="grey")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("device")
    axes[0].set_ylabel(r"$\kappa_i$")
    for name, color in (("scaffnew", "tab:blue"), ("gradskip", "tab:red")):
        for k, s in enumerate(d[name]):
            x, y = zip(*s["curve"])
            axes[1].plot(x, [max(v, 1e-20) for v in y], color=color, lw=1, alpha=0.7,
                         label=("Scaffnew" if name == "scaffnew" else "GradSkip") if k == 0 else None)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("communication rounds")
    axes[1].set_ylabel(r"$\|x-x^\star\|^2/\|x^0-x^\star\|^2$")
    axes[1].legend(fontsize=8)
    width = 0.4
    for j, (name, color) in enumerate((("scaffnew", "tab:blue"), ("gradskip", "tab:red"))):
        done = [s for s in d[name] if s["grads"] is not None]
        if done:
            med = [Spread.of([s["grads"][i] for s in done]).median for i in range(len(kappas))]
            axes[2].bar([i + (j - 0.5) * width for i in range(len(kappas))], med, width=width, color=color,
                        label="Scaffnew" if name == "scaffnew" else "GradSkip")
    axes[2].set_xlabel("device")
    axes[2].set_ylabel("gradient computations to the target (median)")
    axes[2].legend(fontsize=8)
    shown = ", ".join(f"{k:g}" for k in kappas)
    return finish_figure(fig, results, path, f"{results.name}: κ = ({shown}), d = {d['d']}")


def report_extra(results) -> str:
    d = results.data
    lines = ["## Measured numbers", "",
             f"Seeds: {len(d['scaffnew'])} per method (the coins are random). q = {d['gradskip'][0]['q'] if d['gradskip'] else '–'}.",
             "", "| method | seed | γ | p | rounds | iterations | gradient computations per device |",
             "|---|---|---|---|---|---|---|"]
    for name in ("scaffnew", "gradskip"):
        for s in d[name]:
            lines.append(f"| {name} | {s['seed']} | {s['gamma']:.4g} | {s['p']:.4g} | {s['rounds']} | {s['iterations']} | "
                         f"{s['grads']} |")
    return "\n".join(lines + [""])


__all__ = ["band_verdict", "build_problem", "check", "compute", "figure", "per_round_verdict", "report_extra",
           "rounds_verdict", "savings_verdict"]
