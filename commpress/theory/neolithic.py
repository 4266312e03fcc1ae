r"""Lower bounds, NEOLITHIC and the rates of the compressed-SGD baselines; transient complexities.

Source: Huang, Chen, Yin, Yuan, *Lower bounds and nearly optimal algorithms in distributed
learning with communication compression*, NeurIPS 2022 (talk: Theorems 1–4, comparison table,
FCC Lemma 1).

Rates are the O/Ω/Õ-forms of the talk with every hidden constant set to 1, written as a sum of
terms :math:`c_j\,T^{-a_j}` (:func:`rate_terms`); ε here bounds :math:`\mathbb E\|\nabla f\|^2` (not its
square root). The **transient complexity** is the T after which the :math:`T^{-1/2}` term dominates
every other one: :math:`c_jT^{-a_j}=c_{1/2}T^{-1/2}\Rightarrow T_j=(c_j/c_{1/2})^{1/(a_j-1/2)}`, maximised
over j; it is infinite when the :math:`T^{-1/2}` coefficient is larger than the linear-speed-up one
(:math:`\sigma/\sqrt n`), i.e. there is no linear speed-up (QSGD with ω > 0, EF21-SGD).
Talk notes read with corrections (ours): Thm 2 holds for :math:`T\ge\delta^{-2}` and :math:`\mathcal C_\delta`
**[unverified]**; Top-K/Rand-K have :math:`\delta=k/d`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from commpress.errors import ConfigError
from commpress.theory._validate import check_choice, check_int, nonneg, pos, prob

__all__ = [
    "RATE_METHODS",
    "rate_terms",
    "rate",
    "transient_complexity",
    "lower_bound_valid_from",
    "linear_speedup_iterations",
    "fcc_error_factor",
    "neolithic_R",
    "neolithic_stepsize",
]

#: The method names :func:`rate_terms` and :func:`rate` accept: the lower bounds (Thm 1-2),
#: NEOLITHIC (Thm 3-4) and the baselines.
RATE_METHODS = (
    "lower_unbiased",         # Thm 1 (Ω), unbiased U(ω), uni- and bidirectional
    "lower_contractive",      # Thm 2 (Ω), contractive B(δ)
    "neolithic_contractive",  # Thm 3 (Õ), bidirectional contractive
    "neolithic_unbiased",     # Thm 4 (Õ), bidirectional unbiased
    "psgd",                   # P-SGD (minibatch SGD), the talk's linear-speed-up reference
    "qsgd",                   # unidirectional unbiased i.i.d.
    "mem_sgd",                # contractive, unidirectional
    "double_squeeze",         # contractive, bidirectional
    "cser",                   # contractive, unidirectional
    "ef21_sgd",               # contractive, unidirectional
)


def _need(value: Any, name: str, method: str) -> Any:
    if value is None:
        raise ConfigError(f"the rate of {method!r} needs the constant {name}; pass {name}=...")
    return value


def rate_terms(method: str, *, n: int, omega: Any = None, delta: Any = None, sigma: Any = 1.0, G: Any = 1.0,
               b: Any = 0.0, Delta: Any = 1.0, L: Any = 1.0) -> tuple[list[tuple[float, float]], float]:
    r"""The rate of ``method`` as ``([(c_j, a_j), ...], c_ref)``: rate :math:`=\sum_jc_jT^{-a_j}`, and
    ``c_ref`` the linear-speed-up coefficient of the :math:`T^{-1/2}` term. Forms (talk table, constants 1):

    =====================  ==================================================================================
    lower_unbiased         :math:`(\frac{\Delta L\sigma^2}{nT})^{1/2}+\frac{(1+\omega)\Delta L}T` (Thm 1, Ω)
    lower_contractive      :math:`(\frac{\Delta L\sigma^2}{nT})^{1/2}+\frac{\Delta L}{\delta T}` (Thm 2, Ω)
    neolithic_unbiased     as lower_unbiased (Thm 4, Õ)
    neolithic_contractive  as lower_contractive (Thm 3, Õ)
    psgd                   :math:`(\frac{\Delta L\sigma^2}{nT})^{1/2}+\frac{\Delta L}T`
    qsgd                   :math:`\frac{(1+\omega)^{1/2}\sigma+\omega^{1/2}b}{\sqrt{nT}}` (leading term only)
    mem_sgd, cser          :math:`\frac\sigma{\sqrt{nT}}+\frac{G^{2/3}}{\delta^{2/3}T^{2/3}}+\frac1T`
    double_squeeze         :math:`\frac\sigma{\sqrt{nT}}+\frac{G^{2/3}}{\delta^{4/3}T^{2/3}}+\frac1T`
    ef21_sgd               :math:`\frac\sigma{\sqrt{\delta^3T}}+\frac1{\delta T}`
    =====================  ==================================================================================
    """
    check_choice("method", method, "rate_terms", RATE_METHODS)
    n = check_int("n", n, "rate_terms")
    sigma, G, b = nonneg("sigma", sigma, "rate_terms"), nonneg("G", G, "rate_terms"), nonneg("b", b, "rate_terms")
    DL = nonneg("Delta", Delta, "rate_terms") * nonneg("L", L, "rate_terms")
    lead = math.sqrt(DL * sigma**2 / n)
    if method in ("lower_unbiased", "neolithic_unbiased"):
        w = nonneg("omega", _need(omega, "omega", method), method)
        return [(lead, 0.5), ((1.0 + w) * DL, 1.0)], lead
    if method in ("lower_contractive", "neolithic_contractive"):
        dl = prob("delta", _need(delta, "delta", method), method)
        return [(lead, 0.5), (DL / dl, 1.0)], lead
    if method == "psgd":
        return [(lead, 0.5), (DL, 1.0)], lead
    ref = sigma / math.sqrt(n)
    if method == "qsgd":
        w = nonneg("omega", _need(omega, "omega", method), method)
        return [((math.sqrt(1.0 + w) * sigma + math.sqrt(w) * b) / math.sqrt(n), 0.5)], ref
    dl = prob("delta", _need(delta, "delta", method), method)
    if method in ("mem_sgd", "cser"):
        return [(ref, 0.5), (G ** (2 / 3) / dl ** (2 / 3), 2 / 3), (1.0, 1.0)], ref
    if method == "double_squeeze":
        return [(ref, 0.5), (G ** (2 / 3) / dl ** (4 / 3), 2 / 3), (1.0, 1.0)], ref
    return [(sigma / math.sqrt(dl**3), 0.5), (1.0 / dl, 1.0)], ref  # ef21_sgd


def rate(method: str, T: Any, **constants: Any) -> Any:
    r"""The rate :math:`\sum_jc_jT^{-a_j}` of :func:`rate_terms` at budget ``T`` (gradient queries and
    communication rounds per worker; NEOLITHIC: :math:`T=KR`). Vectorised over ``T`` (numpy)."""
    terms, _ = rate_terms(method, **constants)
    T_a = np.asarray(T.detach().cpu().numpy() if hasattr(T, "detach") else T, dtype=np.float64)
    if np.any(~(T_a > 0)):
        raise ConfigError("rate needs a budget T > 0.")
    out = sum(c * T_a ** (-a) for c, a in terms)
    return float(out) if out.ndim == 0 else out


def transient_complexity(method: str, **constants: Any) -> float:
    r"""Budget T after which the :math:`T^{-1/2}` term of ``method`` dominates (module docstring);
    ``inf`` without linear speed-up. With :math:`\Delta=L=\sigma=G=1`: lower bounds and NEOLITHIC
    :math:`n(1+\omega)^2` / :math:`n/\delta^2`; MEM-SGD, CSER :math:`n^3/\delta^4`; DoubleSqueeze :math:`n^3/\delta^8`;
    QSGD (ω > 0), EF21-SGD: ∞. In general MEM-SGD gives :math:`\frac{G^4n^3}{\delta^4\sigma^6}` (solve
    second term = :math:`\sigma/\sqrt{nT}`)."""
    terms, ref = rate_terms(method, **constants)
    half = sum(c for c, a in terms if a == 0.5)
    if half <= 0.0:
        raise ConfigError(f"the transient complexity of {method!r} needs a noise term: pass sigma > 0.")
    if half > ref * (1.0 + 1e-12):
        return math.inf
    crossings = [(c / half) ** (1.0 / (a - 0.5)) for c, a in terms if a > 0.5 and c > 0]
    return max(crossings, default=0.0)


def lower_bound_valid_from(kind: str, *, n: int, omega: Any = None, delta: Any = None) -> float:
    r"""Smallest budget T for which the lower bound is stated: Thm 1 (unbiased, :math:`n\ge2`)
    :math:`T\ge(1+\omega)^2`; Thm 2 (contractive) :math:`T\ge\delta^{-2}` **[unverified reading]**."""
    check_choice("kind", kind, "lower_bound_valid_from", ("unbiased", "contractive"))
    if kind == "unbiased":
        if check_int("n", n, "lower bound (Thm 1)") < 2:
            raise ConfigError("the unbiased lower bound (Thm 1) is stated for n >= 2 workers.")
        return (1.0 + nonneg("omega", _need(omega, "omega", "lower_unbiased"), "Thm 1")) ** 2
    check_int("n", n, "lower bound (Thm 2)")
    return prob("delta", _need(delta, "delta", "lower_contractive"), "Thm 2") ** -2


def linear_speedup_iterations(sigma2: Any, n: int, eps: Any) -> float:
    r"""Budget for the linear-speed-up term alone to reach ε: :math:`\sigma/\sqrt{nT}\le\varepsilon\iff
    T\ge\sigma^2/(n\varepsilon^2)` (the talk's linear speed-up)."""
    owner = "linear speed-up"
    return nonneg("sigma2", sigma2, owner) / (check_int("n", n, owner) * pos("eps", eps, owner) ** 2)


def fcc_error_factor(delta: Any, R: int) -> float:
    r"""FCC Lemma 1: :math:`\mathbb E\|v^{(R)}-v^\star\|^2\le(1-\delta)^R\|v^\star\|^2`; so FCC with R rounds is
    contractive with :math:`\delta_R=1-(1-\delta)^R`."""
    return (1.0 - prob("delta", delta, "FCC")) ** check_int("R", R, "FCC")


def neolithic_R(delta: Any, T: Any = None) -> int:
    r"""Labelled default (ours, not the paper's constants; Huang et al. 2022 leave R open):
    :math:`R=\lceil\delta^{-1}\ln4\rceil` (so :math:`(1-\delta)^R\le1/4`), or
    :math:`\max\{\lceil\delta^{-1}\ln4\rceil,\lceil\delta^{-1}\ln T\rceil\}` given the budget T (the rate's choice
    :math:`R=\Theta(\delta^{-1}\log T)`). The paper's own R is **[not recovered]** (its runs used R = 2 or 4). δ = 1 gives R = 1."""
    dl = prob("delta", delta, "NEOLITHIC")
    if dl == 1.0:
        return 1  # an exact compressor: FCC is exact after one round
    R = math.ceil(math.log(4.0) / dl - 1e-12)
    if T is not None:
        R = max(R, math.ceil(math.log(pos("T", T, "NEOLITHIC")) / dl - 1e-12))
    return max(1, R)


def neolithic_stepsize(L: Any, n: int, R: int, *, delta0: Any = None, K: Any = None, sigma2: Any = None) -> float:
    r"""Labelled default (ours; Huang et al. 2022 give no constant): :math:`\gamma=\min\{\frac1{4L},
    \sqrt{\frac{nR\Delta^0}{LK\sigma^2}}\}` applied to the R-averaged gradient, K outer iterations.
    Without all of :math:`\Delta^0, K, \sigma^2` (or with :math:`\sigma^2=0`): :math:`1/(4L)`."""
    owner = "NEOLITHIC"
    L = pos("L", L, owner)
    g = 1.0 / (4.0 * L)
    if delta0 is None or K is None or sigma2 is None or float(sigma2) == 0.0:
        return g
    n, R = check_int("n", n, owner), check_int("R", R, owner)
    D0, K, s2 = pos("delta0", delta0, owner), pos("K", K, owner), pos("sigma2", sigma2, owner)
    return min(g, math.sqrt(n * R * D0 / (L * K * s2)))
