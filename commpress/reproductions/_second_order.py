"""Problems and helpers of the second-order reproductions (FedNL, Newton-3PC)."""

from __future__ import annotations

import math

import torch

from commpress._rng import shared_generator


def split_problem(dataset: str, n_clients: int, samples_per_client: int, *, l2: float = 1e-3, seed: int = 0,
                  dtype: str = "float64"):
    r"""L2-regularised logistic regression on ``dataset`` split as in the FedNL / Newton-3PC code:
    shuffle (seeded), keep the first :math:`N=nm` rows, give each of the n clients m consecutive rows
    (Islamov et al., TMLR 2023, Table "Datasets"; FedNL code ``default_dataset_parameters``)."""
    from commpress import datasets, problems

    X, y = datasets.load(dataset)
    N = int(n_clients) * int(samples_per_client)
    if N > X.shape[0]:
        raise ValueError(f"{dataset} has {X.shape[0]} rows; n * m = {N} needs more.")
    perm = torch.randperm(X.shape[0], generator=shared_generator(seed, "second_order/shuffle"))[:N].numpy()
    return problems.make("logreg", data=(X[perm], y[perm]), n_clients=n_clients, l2=l2, split="contiguous",
                         dtype=dtype)


def trace(problem, name: str, x0: torch.Tensor, rounds: int, *, target: float = 1e-10, seed: int = 0,
          **params) -> dict:
    """Run a registered method for up to ``rounds`` rounds (stop at ||x - x*||^2 <= target or on
    divergence); record per round ||x - x*||^2, f - f*, bits per client (up + down, cumulative,
    one-time initial transfer included) and, where the state has client Hessians, the Hessian error
    :math:`\\mathcal H^k=\\frac1n\\sum_i\\|H_i^k-\\nabla^2f_i(x^*)\\|_F^2`."""
    from commpress import algorithms
    from commpress.compressors.matrix import frobenius_weights, sym_to_tri
    from commpress.network import LocalNetwork

    f_star, xs = problem.optimum()
    net = LocalNetwork(problem.n)
    alg = algorithms.make(name, problem, net, seed=seed, **params)
    state = alg.init(x0)
    H_star = None
    if hasattr(state, "H_i"):
        H_star = sym_to_tri(problem.hessians(xs)).to(problem.dtype)
        w = frobenius_weights(problem.d, problem.dtype)

    def bits() -> float:
        return float(net.ledger.mean_total("up") + net.ledger.mean_total("down"))

    out = {"dist2": [], "gap": [], "bits": [], "hess_err": [], "rounds_to_target": None, "bits_to_target": None,
           "init_bits": bits(), "diverged": False, "dist2_0": float(((alg.output(state) - xs) ** 2).sum())}
    for k in range(rounds):
        state = alg.step(state)
        x = alg.output(state)
        e = float(((x - xs) ** 2).sum())
        out["dist2"].append(e)
        out["gap"].append(float(problem.loss(x)) - f_star if e < 1e8 else float("inf"))
        out["bits"].append(bits())
        if H_star is not None:
            out["hess_err"].append(float(((state.H_i - H_star) ** 2 * w).sum(-1).mean()))
        if e <= target:
            out["rounds_to_target"], out["bits_to_target"] = k + 1, bits()
            break
        if not e < 1e8:
            out["diverged"] = True
            break
    extra = {k: getattr(state, k) for k in ("hessians", "trials") if hasattr(state, k)}
    out.update(extra)
    return out


def first_order_at_budget(problem, name: str, x0: torch.Tensor, budget: float, *, max_rounds: int = 100000,
                          max_points: int = 500, **params) -> dict:
    """Run a first-order method while its bits per client (up + down) stay within ``budget``; its final
    ||x - x*||^2 and the rounds it had, and for the figure the curve ``curve_bits`` / ``curve_dist2``
    (from the start, 0 bits; thinned to at most ``max_points`` points, the last one kept)."""
    from commpress import algorithms
    from commpress.network import LocalNetwork

    xs = problem.optimum()[1]
    net = LocalNetwork(problem.n)
    alg = algorithms.make(name, problem, net, **params)
    state = alg.init(x0)
    k = 0
    best = float(((alg.output(state) - xs) ** 2).sum())
    curve_bits, curve_dist2 = [0.0], [best]
    while k < max_rounds:
        nxt = alg.step(state)
        spent = float(net.ledger.mean_total("up") + net.ledger.mean_total("down"))
        if spent > budget:
            break
        state, k = nxt, k + 1
        e = float(((alg.output(state) - xs) ** 2).sum())
        best = min(best, e)
        curve_bits.append(spent)
        curve_dist2.append(e)
    if len(curve_bits) > max_points:
        keep = sorted(set(range(0, len(curve_bits), math.ceil(len(curve_bits) / max_points))) | {len(curve_bits) - 1})
        curve_bits, curve_dist2 = [curve_bits[i] for i in keep], [curve_dist2[i] for i in keep]
    return {"rounds": k, "dist2": float(((alg.output(state) - xs) ** 2).sum()), "best_dist2": best,
            "curve_bits": curve_bits, "curve_dist2": curve_dist2}


def newton_zero(problem, x0: torch.Tensor, rounds: int, *, target: float = 1e-10) -> dict:
    r"""Newton Zero (N0, FedNL code): :math:`x^{k+1}=x^k-(\nabla^2f(x^0))^{-1}\nabla f(x^k)`; bits per client
    (paper accounting): the one-time Hessian :math:`32d(d+1)/2`, then :math:`32d` up and :math:`32d` down per round."""
    xs = problem.optimum()[1]
    d = problem.d
    H0 = problem.hessians(x0).mean(0)
    x = x0.clone()
    bits = 32 * d * (d + 1) / 2
    out = {"dist2": [], "bits": [], "rounds_to_target": None, "bits_to_target": None, "init_bits": bits,
           "dist2_0": float(((x0 - xs) ** 2).sum())}
    for k in range(rounds):
        x = x - torch.linalg.solve(H0, problem.grad(x))
        bits += 64 * d
        e = float(((x - xs) ** 2).sum())
        out["dist2"].append(e)
        out["bits"].append(bits)
        if e <= target:
            out["rounds_to_target"], out["bits_to_target"] = k + 1, bits
            break
        if not e < 1e8:
            break
    return out


def over_seeds(seeds, run) -> dict:
    """``run(seed)`` for every seed (each a :func:`trace` dict); the median summary the claims read:
    ``bits_to_target``/``rounds_to_target``/``hessians`` are medians over the seeds (a run that did not
    reach the target counts as +inf; a median of +inf is reported as None = not reached), the per-seed
    values are kept in ``"per_seed"``, and the first seed's curves are kept for the figures."""
    import statistics

    traces = [run(int(s)) for s in seeds]

    def med(key):
        vals = [t.get(key) for t in traces]
        if all(v is None and key not in t for v, t in zip(vals, traces)):
            return None
        m = statistics.median([math.inf if v is None else float(v) for v in vals])
        return None if math.isinf(m) else m

    out = dict(traces[0])
    out.update(bits_to_target=med("bits_to_target"), rounds_to_target=med("rounds_to_target"),
               diverged=sum(t["diverged"] for t in traces) * 2 > len(traces),
               per_seed={k: [t.get(k) for t in traces] for k in ("bits_to_target", "rounds_to_target", "hessians")})
    if "hessians" in traces[0]:
        out["hessians"] = med("hessians")
    return out


def plot_curve(ax, run: dict | None, label: str, *, x: str = "bits", **style) -> None:
    """Draw ``run``'s ||x - x*||^2 against its cumulative bits per client (``x="bits"``) or rounds
    (``x="rounds"``), from the start where recorded (``init_bits``/``dist2_0``); the curve of a
    first-order budget run (``curve_bits``/``curve_dist2``). Non-positive and non-finite values are left
    out (a log axis); a missing run, or one without a curve, draws nothing."""
    if not run:
        return
    if "curve_dist2" in run:
        xs, ys = list(run["curve_bits"]), list(run["curve_dist2"])
        if x == "rounds":
            xs = list(range(len(ys)))
    elif "dist2" in run and isinstance(run["dist2"], list):
        ys = list(run["dist2"])
        if x == "rounds":
            xs = list(range(1, len(ys) + 1))
        else:
            xs = list(run.get("bits", []))
        if "dist2_0" in run and (x == "rounds" or "init_bits" in run):
            xs, ys = [0 if x == "rounds" else run["init_bits"], *xs], [run["dist2_0"], *ys]
    else:  # e.g. a budget run without its curve (the caller may mark its final point)
        return
    pts = [(a, b) for a, b in zip(xs, ys) if a is not None and b is not None and math.isfinite(a)
           and math.isfinite(b) and b > 0]
    if pts:
        ax.plot([a for a, _ in pts], [b for _, b in pts], label=label, **style)


def fmt(v) -> str:
    """A report number: 4 significant digits for floats, "—" for not reached."""
    return "—" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def fewer_claim(a, b, claim: str, numbers: dict, a_name: str, b_name: str, more: str | None = None):
    """The claim "a < b" where None means the target was not reached: a not reached -> unmeasurable,
    b not reached (a reached) -> held; ``more`` is the note when a >= b (default: "a_name needed more")."""
    from commpress.reproductions import Claim

    if a is None:
        return Claim(claim, False, numbers, unmeasurable=f"{a_name} did not reach the target")
    if b is None:
        return Claim(claim, True, numbers, note=f"{b_name} did not reach the target within its rounds")
    return Claim(claim, a < b, numbers, note="" if a < b else (more or f"{a_name} needed more"))
