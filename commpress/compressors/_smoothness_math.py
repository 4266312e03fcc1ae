r"""Smoothness-aware sampling and quantization steps: the pure formulas the smoothness-aware
compressors need (Safaryan, Hanzely, Richtárik, Smoothness matrices beat smoothness constants,
NeurIPS 2021; smoothness-aware quantization, arXiv 2106.03524). They live with the compressors,
which use them; :mod:`commpress.theory` re-exports them beside the methods' stepsizes.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError

#: Sampling rules of the smoothness-aware sparsification (all with expected budget sum_j p_ij = tau).
SAMPLING_RULES = ("trace", "exact", "uniform", "equalise")


def _diag(L: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(L.to(torch.float64), dim1=-2, dim2=-1).clamp_min(0.0)


def _check_tau(tau: Any, d: int, owner: str = "sampling") -> float:
    try:
        t = float(tau)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs a budget tau in (0, d]; got tau={tau!r}.") from None
    if not (0.0 < t <= d) or not math.isfinite(t):
        raise ConfigError(f"{owner} needs a budget tau in (0, {d}] (expected kept coordinates); got tau={tau!r}.")
    return t


def uniform_probabilities(n: int, d: int, tau: float) -> torch.Tensor:
    r""":math:`p_{ij}=\tau/d`: Bernoulli Rand-:math:`\tau` (the baseline DCGD/DIANA sparsifier)."""
    return torch.full((n, d), _check_tau(tau, d) / d, dtype=torch.float64)


def trace_probabilities(L: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Trace rule [choice, derived]: :math:`p_{ij}=\min\{1,\sqrt{\mathbf L_{i,jj}}/\theta_i\}`, :math:`\sum_jp_{ij}=\tau`.

    Minimises :math:`\mathrm{tr}\big(\mathbf L_i^{1/2}\mathrm{Diag}(1/p-1)\mathbf L_i^{1/2}\big)=\sum_j(1/p_j-1)\mathbf L_{i,jj}\ge\nu_i(p)`
    (Cauchy–Schwarz / KKT). Coordinates with :math:`\mathbf L_{i,jj}=0` get :math:`p_{ij}=0`; with at most
    :math:`\tau` nonzero diagonal entries every one is kept. ``L`` ``(n, d, d)``; returns ``(n, d)`` float64.
    """
    from commpress.compressors.wangni import kkt_probabilities

    _check_tau(tau, L.shape[-1])
    return kkt_probabilities(_diag(L).sqrt(), kappa=float(tau))


def equalising_probabilities(L: torch.Tensor, tau: float, *, iterations: int = 200) -> torch.Tensor:
    r"""SAQ sparsification rule [derived]: :math:`p_{ij}=\mathbf L_{i,jj}/(\mathbf L_{i,jj}+c_i)` with
    :math:`\sum_jp_{ij}=\tau` (bisection on :math:`\log c_i`).

    Equalises :math:`(1/p_j-1)\mathbf L_{i,jj}=c_i`, which minimises
    :math:`\max_j(1/p_j-1)\mathbf L_{i,jj}` (:func:`transformed_sparsification_nu`) under the budget.
    Zero diagonal entries get 0; rows with at most :math:`\tau` nonzero entries keep them all.
    """
    diag = _diag(L)
    tau = _check_tau(tau, diag.shape[-1])
    nz = diag > 0
    count = nz.sum(-1, keepdim=True).to(torch.float64)
    scale = diag.max(-1, keepdim=True).values.clamp_min(1e-300)
    lo = torch.log(scale) - 80.0  # sum p ~ count (too many)
    hi = torch.log(scale) + 80.0  # sum p ~ 0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        s = torch.where(nz, diag / (diag + mid.exp()), torch.zeros_like(diag)).sum(-1, keepdim=True)
        too_many = s > tau
        lo = torch.where(too_many, mid, lo)
        hi = torch.where(too_many, hi, mid)
    c = hi.exp()
    p = torch.where(nz, diag / (diag + c), torch.zeros_like(diag))
    return torch.where(count <= tau, nz.to(torch.float64), p)


def sparsification_nu(L: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    r""":math:`\nu_i(p)=\lambda_{\max}(\mathbf L_i^{1/2}\mathrm{Diag}(1/p_{ij}-1)\mathbf L_i^{1/2})` per client, ``(n,)``.

    Computed as :math:`\lambda_{\max}(S\mathbf L_iS)`, :math:`S=\mathrm{Diag}(1/p_{ij}-1)^{1/2}` (same nonzero
    spectrum). Coordinates with :math:`p_{ij}=0` must have :math:`\mathbf L_{i,jj}=0` (their gradient
    entries vanish) and count 0.
    """
    L = L.to(torch.float64)
    p = p.to(torch.float64)
    w = torch.where(p > 0, 1.0 / p.clamp_min(1e-300) - 1.0, torch.zeros_like(p)).clamp_min(0.0).sqrt()
    M = w[:, :, None] * L * w[:, None, :]
    return torch.linalg.eigvalsh(M)[:, -1].clamp_min(0.0)


def transformed_sparsification_nu(L: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    r""":math:`\nu_i=\max_j(1/p_{ij}-1)\mathbf L_{i,jj}` of sparsification inside the SAQ transform
    (:math:`\mathbb E\|\mathbf L^{1/2}(\mathcal C(y)-y)\|^2=\sum_j(1/p_j-1)\mathbf L_{jj}y_j^2`) [derived]."""
    diag = _diag(L)
    p = p.to(torch.float64)
    w = torch.where(p > 0, 1.0 / p.clamp_min(1e-300) - 1.0, torch.zeros_like(p))
    return (w * diag).max(-1).values.clamp_min(0.0)


def sparsification_omega(p: torch.Tensor) -> float:
    r""":math:`\omega=\max_{i,j:\,p_{ij}>0}(1/p_{ij}-1)` (coordinates with :math:`p_{ij}=0` excluded)."""
    p = p.to(torch.float64)
    kept = p[p > 0]
    return float((1.0 / kept - 1.0).max().clamp_min(0.0)) if kept.numel() else 0.0


def exact_probabilities(L: torch.Tensor, tau: float, *, iterations: int = 150) -> torch.Tensor:
    r"""Exact rule [choice]: minimise :math:`\nu_i(p)` over :math:`\{p\in(0,1]^d:\sum_jp_j=\tau\}` numerically.

    :math:`\nu_i` is convex in :math:`p` (a maximum over unit :math:`u` of :math:`\sum_j(1/p_j-1)w_j^2`,
    :math:`w=\mathbf L_i^{1/2}u`); projected subgradient steps (subgradient :math:`-w_j^2/p_j^2` at the top
    eigenvector), started from the better of the trace and uniform rules and keeping the best iterate,
    so the result is never worse than either. Zero-diagonal coordinates keep :math:`p=0`.
    """
    L = L.to(torch.float64)
    n, d = L.shape[0], L.shape[-1]
    tau = _check_tau(tau, d)
    nz = _diag(L) > 0
    count = nz.sum(-1).to(torch.float64)
    trace = trace_probabilities(L, tau)
    uni = torch.where(nz, (tau / count.clamp_min(1.0))[:, None].clamp(max=1.0), torch.zeros_like(trace))
    nu_t, nu_u = sparsification_nu(L, trace), sparsification_nu(L, uni)
    best = torch.where((nu_u < nu_t)[:, None], uni, trace)
    best_nu = torch.minimum(nu_t, nu_u)
    p = best.clone()
    floor = 1e-6
    budget = torch.minimum(torch.full_like(count, tau), count)
    for k in range(iterations):
        w = torch.where(p > 0, 1.0 / p.clamp_min(1e-300) - 1.0, torch.zeros_like(p)).sqrt()
        evals, evecs = torch.linalg.eigh(w[:, :, None] * L * w[:, None, :])
        v = evecs[:, :, -1]
        # top eigenvector of L^{1/2} D L^{1/2} is L^{1/2} u; its weights w_j^2 = (L^{1/2}u)_j^2 = (S v)_j^2 * ... use
        # the equivalent form: nu = v^T S L S v with S = diag(w): d nu / d p_j = -(L S v)_j (S v)_j ... simplified:
        Sv = w * v
        LSv = torch.bmm(L, Sv[:, :, None]).squeeze(-1)
        # nu(p) = Sv^T L Sv with Sv_j = w_j v_j; d/dp_j of w_j = -1/(2 p_j^2 w_j): grad_j = -(LSv)_j v_j / (p_j^2 w_j)
        grad = torch.where(nz & (w > 0), -LSv * v / (p.clamp_min(1e-300) ** 2 * w.clamp_min(1e-300)), torch.zeros_like(p))
        gnorm = grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        step = 0.5 * tau / d / math.sqrt(k + 1)
        p = _project_budget(p - step * grad / gnorm, nz, budget, floor)
        nu = sparsification_nu(L, p)
        better = nu < best_nu
        best = torch.where(better[:, None], p, best)
        best_nu = torch.where(better, nu, best_nu)
    return best


def _project_budget(q: torch.Tensor, nz: torch.Tensor, budget: torch.Tensor, floor: float) -> torch.Tensor:
    """Euclidean projection of every row onto {floor <= p_j <= 1 on nz, 0 off nz, sum p = budget} (bisection)."""
    lo = (q - 1.0).where(nz, torch.full_like(q, math.inf)).min(-1).values - 1.0
    hi = (q - floor).where(nz, torch.full_like(q, -math.inf)).max(-1).values + 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        s = torch.where(nz, (q - mid[:, None]).clamp(floor, 1.0), torch.zeros_like(q)).sum(-1)
        big = s > budget
        lo = torch.where(big, mid, lo)
        hi = torch.where(big, hi, mid)
    return torch.where(nz, (q - hi[:, None]).clamp(floor, 1.0), torch.zeros_like(q))


def sampling_probabilities(L: torch.Tensor, tau: float, rule: str = "trace") -> torch.Tensor:
    """Keep probabilities ``(n, d)`` of the rule (``"trace"``, ``"exact"``, ``"uniform"``, ``"equalise"``)."""
    if rule not in SAMPLING_RULES:
        raise ConfigError(f"smoothness-aware sparsification needs sampling in {list(SAMPLING_RULES)}; got {rule!r}.")
    if rule == "uniform":
        return uniform_probabilities(L.shape[0], L.shape[-1], tau)
    if rule == "trace":
        return trace_probabilities(L, tau)
    if rule == "equalise":
        return equalising_probabilities(L, tau)
    return exact_probabilities(L, tau)


def block_quantization_nu(L: torch.Tensor, block_size: int, s: int = 1) -> torch.Tensor:
    r"""Bound on :math:`\nu_i` of random dithering (:math:`\ell_2`, s levels) per contiguous block inside the
    SAQ transform [derived]: per coordinate the variance is at most
    :math:`\min\{\|y_b\|^2/(4s^2),\ |y_j|\,\|y_b\|/s\}`, hence

    .. math:: \nu_i\le\max_b\min\Big\{\frac{\sum_{j\in b}\mathbf L_{i,jj}}{4s^2},\ \frac{(\sum_{j\in b}\mathbf L_{i,jj}^2)^{1/2}}s\Big\}.
    """
    diag = _diag(L)
    n, d = diag.shape
    B = max(1, int(block_size))
    t = math.ceil(d / B)
    pad = torch.zeros(n, t * B - d, dtype=torch.float64)
    blocks = torch.cat([diag, pad], dim=1).reshape(n, t, B)
    a = blocks.sum(-1) / (4.0 * s * s)
    b = blocks.pow(2).sum(-1).sqrt() / s
    return torch.minimum(a, b).max(-1).values


def varying_steps(L: torch.Tensor, s: int) -> torch.Tensor:
    r"""Relative steps :math:`t_{ij}=\frac1s\sqrt{G_i/\mathbf L_{i,jj}}` [derived], :math:`G_i` the geometric mean
    of the positive diagonal entries (``inf`` where :math:`\mathbf L_{i,jj}=0`: nothing is sent there).

    Minimises :math:`\sum_j\mathbf L_{i,jj}t_j^2` at the fixed :math:`\sum_j\log_2(1/t_j)=d\log_2 s` of the
    uniform step :math:`1/s`, so the bits are about those of :math:`s`-level uniform quantization.
    """
    diag = _diag(L)
    nz = diag > 0
    logs = torch.where(nz, diag.clamp_min(1e-300).log(), torch.zeros_like(diag))
    G = (logs.sum(-1, keepdim=True) / nz.sum(-1, keepdim=True).clamp_min(1)).exp()
    return torch.where(nz, (G / diag.clamp_min(1e-300)).sqrt() / s, torch.full_like(diag, math.inf))


def varying_steps_nu(L: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    r""":math:`\nu_i\le\frac14\sum_j\mathbf L_{i,jj}t_{ij}^2` of the varying-step quantizer (variance of
    stochastic rounding to :math:`h_j\mathbb Z` is at most :math:`h_j^2/4`, :math:`h_j=t_j\|y\|`) [derived]."""
    diag = _diag(L)
    t = torch.where(torch.isfinite(steps), steps.to(torch.float64), torch.zeros_like(diag))
    return 0.25 * (diag * t * t).sum(-1)
