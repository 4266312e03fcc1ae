r"""Smoothness matrices: DCGD+, DIANA+, smoothness-aware quantization: formulas and default parameters.

Sources: Safaryan, Hanzely, Richtárik, *Smoothness matrices beat smoothness constants: better
communication compression techniques for distributed optimization*, NeurIPS 2021 (DCGD+, DIANA+;
arXiv 2102.07245); Wang, Safaryan, Richtárik, *Theoretically better and numerically faster distributed
optimization with smoothness-aware quantization techniques*, NeurIPS 2022 (arXiv 2106.03524).
Only the papers' abstracts could be read: every constant below is **derived** here (argument in the
docstring) and the sampling rules are library defaults, not the papers' "optimal probabilities".

Client i is :math:`\mathbf L_i`-smooth (``problem.smoothness_matrices()``). Sparsification with
independent keep probabilities :math:`p_{ij}` (:math:`\mathcal C_i(v)=\sum_j\frac{\xi_{ij}}{p_{ij}}v_je_j`)
has, for any PSD :math:`\mathbf M`, :math:`\mathbb E\|\mathcal C_i(v)-v\|_{\mathbf M}^2=\sum_j(1/p_{ij}-1)\mathbf M_{jj}v_j^2`,
and on gradient differences :math:`v=\mathbf L_i^{1/2}y` the constant replacing :math:`\omega L_{\max}` is

.. math:: \nu_i(p)=\lambda_{\max}\big(\mathbf L_i^{1/2}\,\mathrm{Diag}(1/p_{ij}-1)\,\mathbf L_i^{1/2}\big).

Smoothness-aware compression of any :math:`\mathcal Q` (SAQ): send :math:`\mathcal Q(\mathbf L_i^{\dagger1/2}v)`,
decode :math:`\mathbf L_i^{1/2}\mathcal Q(\cdot)`; its constant is
:math:`\nu_i=\sup_y\mathbb E\|\mathbf L_i^{1/2}(\mathcal Q(y)-y)\|^2/\|y\|^2`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError
from commpress.theory._validate import check_choice, nonneg, pos

__all__ = [
    "SAMPLING_RULES",
    "uniform_probabilities",
    "trace_probabilities",
    "equalising_probabilities",
    "exact_probabilities",
    "sampling_probabilities",
    "sparsification_nu",
    "transformed_sparsification_nu",
    "sparsification_omega",
    "block_quantization_nu",
    "varying_steps",
    "varying_steps_nu",
    "dcgd_plus_stepsize",
    "diana_plus_stepsize",
    "diana_plus_alpha",
    "BUILDERS",
]

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
    rule = check_choice("sampling", rule, "smoothness-aware sparsification", SAMPLING_RULES)
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


def dcgd_plus_stepsize(L: Any, nu_max: Any, n: int) -> float:
    r"""DCGD+ [derived]: :math:`\gamma=\frac1{2(L+2\nu_{\max}/n)}`.

    DCGD+ is SGD with :math:`\mathbb E\|g\|^2\le2(L+2\nu_{\max}/n)D_f(x,x^*)+\sigma^2_*`, so this stepsize gives
    :math:`(1-\gamma\mu)^k` to a neighbourhood (strongly convex, convex :math:`f_i`). The paper's own
    constant is not recovered.
    """
    L, nu = pos("L", L, "DCGD+"), nonneg("nu_max", nu_max, "DCGD+")
    return 1.0 / (2.0 * (L + 2.0 * nu / int(n)))


def diana_plus_stepsize(L_max: Any, nu_max: Any, n: int) -> float:
    r"""DIANA+ [derived by analogy, constants unverified]: :math:`\gamma=\frac1{L_{\max}+6\nu_{\max}/n}`.

    DIANA's strongly convex :math:`\frac1{(1+6\omega/n)L_{\max}}` with :math:`\omega L_{\max}` replaced by
    :math:`\nu_{\max}` (equal for uniform sampling on :math:`\mathbf L_i=L_{\max}I`; :math:`\nu_i\le\omega_iL_i`
    always). Complexity :math:`O(L/\mu+\nu_{\max}/(n\mu)+\omega)\log\frac1\varepsilon`.
    """
    L, nu = pos("L_max", L_max, "DIANA+"), nonneg("nu_max", nu_max, "DIANA+")
    return 1.0 / (L + 6.0 * nu / int(n))


def diana_plus_alpha(omega: Any) -> float:
    r"""Shift stepsize :math:`\alpha=\frac1{\omega+1}`, :math:`\omega=\max_i\omega_i` of the compressor acting on
    the shifts (for SAQ: the inner compressor, the shifts live in the transformed space)."""
    return 1.0 / (nonneg("omega", omega, "DIANA+") + 1.0)


# ---------------------------------------------------------------------------- builders
def _nu(c) -> tuple[float, str]:
    """``nu_max`` given, else the bound :math:`\\nu_i\\le\\omega_iL_i` (the DCGD/DIANA constant)."""
    if c.get("nu_max") is None:
        from commpress.theory.stepsizes import _omega

        return _omega(c) * float(c.sm.L_max), "omega * L_max (bound; the algorithms pass the sharp nu_max)"
    nu = float(c.get("nu_max"))
    if math.isinf(nu):
        raise ConfigError(
            f"{c.name}: the compressor states no variance constant (omega), so its smoothness-aware constant "
            "nu is unknown; pass nu_max=..."
        )
    return nonneg("nu_max", nu, c.name), "given"


def _dcgd_plus(c):
    from commpress.theory.stepsizes import _dcgd

    regime = check_choice("regime", c.get("regime", "strongly_convex"), c.name, ("strongly_convex", "nonconvex"))
    if regime == "nonconvex":
        out, info = _dcgd(c)
        info = {**info, "source": "nonconvex: DCGD's ABC stepsize with the sparsifier's omega (conservative) [derived]"}
        return out, info
    nu, how = _nu(c)
    L = c.sm.L_minus
    return {"gamma": dcgd_plus_stepsize(L, nu, c.n)}, {
        "L_minus": L, "nu_max": nu, "nu_max_from": how, "regime": regime,
        "source": "DCGD+ (Safaryan, Hanzely, Richtarik 2021): 1/(2(L+2 nu_max/n)) [derived; paper's constant not recovered]"}


def _diana_plus(c):
    from commpress.theory import diana
    from commpress.theory.stepsizes import _omega

    regime = check_choice("regime", c.get("regime", "strongly_convex"), c.name, ("strongly_convex", "nonconvex"))
    w = float(c.get("omega")) if c.get("omega") is not None else _omega(c)
    if math.isinf(w):
        raise ConfigError(f"{c.name}: the compressor states no finite omega; pass omega=... (or gamma= and alpha=).")
    w = nonneg("omega", w, c.name)
    alpha = c.get("alpha", diana_plus_alpha(w))
    L_max = c.sm.L_max
    if regime == "nonconvex":
        g = diana.diana_stepsize(L_max, w, c.n, regime="nonconvex")
        return {"gamma": g, "alpha": alpha}, {"L_max": L_max, "omega": w, "regime": regime,
                                              "source": "nonconvex: DIANA's stepsize with the compressor's omega [derived]"}
    nu, how = _nu(c)
    return {"gamma": diana_plus_stepsize(L_max, nu, c.n), "alpha": alpha}, {
        "L_max": L_max, "nu_max": nu, "nu_max_from": how, "omega": w, "regime": regime,
        "source": "DIANA+ (Safaryan, Hanzely, Richtarik 2021): 1/(L_max+6 nu_max/n), alpha=1/(omega+1) "
                  "[derived by analogy with DIANA; paper's constants not recovered]"}


#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {
    "dcgd_plus": (_dcgd_plus, ("nu_max", "regime", "K", "A", "B", "convention", "identical_clients")),
    "diana_plus": (_diana_plus, ("nu_max", "regime", "omega", "alpha")),
}
#: Other accepted spellings of the names above.
ALIASES: dict = {"dcgd+": "dcgd_plus", "diana+": "diana_plus"}
