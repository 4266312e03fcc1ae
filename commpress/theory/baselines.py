r"""Stepsizes of the uncompressed and simple compressed baselines, and labelled defaults.

GD, P-SGD and DCGD have closed forms (descent lemma; standard SGD; Khaled & Richtárik 2020). For
QSVRG, TernGrad-Adam, EF/MEM-SGD, DoubleSqueeze and CSER no closed-form stepsize was recovered from
their papers (they are "tuned"); the functions here return **labelled library defaults** — a sensible starting
point for the :math:`2^j` multiplier sweep of the CQ paper's App. D.2.2, not a theorem.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.errors import ConfigError
from commpress.theory._validate import check_int, nonneg, pos, prob

__all__ = [
    "gd_stepsize",
    "psgd_stepsize",
    "dcgd_stepsize",
    "qsvrg_stepsize",
    "terngrad_adam_defaults",
    "ef_stepsize",
    "double_squeeze_stepsize",
    "cser_stepsize",
]


def gd_stepsize(L_minus: Any) -> float:
    r"""GD / DGD: :math:`\gamma=1/L_-` **[exact]**; :math:`\frac1K\sum_{k<K}\|\nabla f(x^k)\|^2\le\frac{2L_-\Delta^0}K`
    (descent lemma). MARINA with p = 1."""
    return 1.0 / pos("L_minus", L_minus, "GD")


def psgd_stepsize(L_minus: Any, n: int, *, delta0: Any = None, K: Any = None, sigma2: Any = None) -> float:
    r"""P-SGD (minibatch SGD over n workers; Ghadimi & Lan 2013) **[exact, standard]**:

    .. math:: \gamma=\min\Big\{\frac1{L_-},\sqrt{\frac{2n\Delta^0}{L_-K\sigma^2}}\Big\}
              \ \Rightarrow\ \frac1K\sum_{k<K}\mathbb E\|\nabla f(x^k)\|^2\le\frac{2L_-\Delta^0}K+2\sqrt{\frac{2L_-\Delta^0\sigma^2}{nK}}.

    Any :math:`\gamma\le1/L_-` satisfies the theorem (the bound then reads
    :math:`\frac{2\Delta^0}{\gamma K}+\frac{L_-\gamma\sigma^2}n`); the second argument of the min only
    balances the two terms, so without all of ``sigma2`` > 0, ``delta0`` (:math:`\Delta^0`) and ``K`` the
    result is :math:`1/L_-`.
    """
    owner = "P-SGD"
    L = pos("L_minus", L_minus, owner)
    if sigma2 is None or float(sigma2) == 0.0 or delta0 is None or K is None:
        return 1.0 / L
    s2 = pos("sigma2", sigma2, owner)
    n = check_int("n", n, owner)
    return min(1.0 / L, math.sqrt(2.0 * n * pos("delta0", delta0, owner) / (L * pos("K", K, owner) * s2)))


def dcgd_stepsize(L_minus: Any, L_max: Any, A: Any, B: Any = 0.0, *, K: Any = None,
                  identical_clients: bool = False) -> float:
    r"""DCGD / QSGD with an AB-compressor set (Khirirat et al. 2018; Alistarh et al. 2017).

    ABC framework (Khaled & Richtárik 2020) **[recalled theorem; exact ABC triple]**: unbiasedness and
    :math:`\|\nabla f_i\|^2\le2L_i(f_i-f_i^{\inf})` give :math:`\mathbb E\|g\|^2\le2A'(f-f^{\inf})+B'\|\nabla f\|^2+C`
    with :math:`A'=A\,L_{\max}`, :math:`B'=1-B`, and

    .. math:: \gamma=\min\Big\{\frac1{L_-},\frac1{\sqrt{L_-A'K}}\Big\}

    (independent :math:`\mathbb U(\omega)`: :math:`A=\omega/n`, so :math:`A'=\omega L_{\max}/n`).
    ``identical_clients=True`` (all :math:`\nabla f_i` equal): exact descent rule
    :math:`\gamma=\frac1{L_-(1+A-B)}` (:math:`=\frac1{L_-(1+\omega/n)}`), no horizon needed.
    """
    owner = "DCGD"
    L = pos("L_minus", L_minus, owner)
    A, B = nonneg("A", A, owner), nonneg("B", B, owner)
    if identical_clients:
        return 1.0 / (L * (1.0 + max(A - B, 0.0)))
    if A == 0.0:
        return 1.0 / L
    if K is None:
        raise ConfigError(
            "DCGD's stepsize depends on the horizon: the constant K (number of rounds) is missing. "
            "Pass K=<rounds>, or identical_clients=True when every client has the same gradient."
        )
    a_prime = A * pos("L_max", L_max, owner)
    return min(1.0 / L, 1.0 / math.sqrt(L * a_prime * pos("K", K, owner)))


def qsvrg_stepsize(L_sample: Any, omega_over_n: Any) -> float:
    r"""QSVRG (Alistarh et al. 2017, Thm 3.6 **[recalled]**: :math:`\eta=\Theta(1/L)`, epoch :math:`T=\Theta(L/\mu)`).

    Labelled default (ours): SVRG's classical :math:`0.1/L` with the quantization variance of the
    average of n quantized estimators: :math:`\eta=\frac1{10L(1+\omega/n)}`, L the smoothness of every
    sample loss :math:`f_l`.
    """
    return 1.0 / (10.0 * pos("L_sample", L_sample, "QSVRG") * (1.0 + nonneg("omega_over_n", omega_over_n, "QSVRG")))


def terngrad_adam_defaults() -> dict[str, float]:
    r"""TernGrad-Adam hyper-parameters: the VR-DIANA baseline's values are **[not recovered]**; labelled
    default = Adam's (Kingma & Ba 2015): :math:`\eta=10^{-3}`, :math:`\beta_1=0.9`, :math:`\beta_2=0.999`,
    :math:`\epsilon=10^{-8}`. TernGrad's own theory has no stepsize constant."""
    return {"gamma": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def ef_stepsize(L: Any, delta: Any) -> float:
    r"""EF / MEM-SGD (Stich, Cordonnier, Jaggi 2018). Labelled default (ours): :math:`\gamma=\frac\delta{4L}`.

    The error-feedback analyses require :math:`\gamma=O(\delta/L)` (Stich & Karimireddy 2020); the
    constant 4 is ours. L bounds every :math:`f_i` (the NEOLITHIC talk's class). The paper's strongly
    convex schedule :math:`\eta_t=\frac8{\mu(a+t)}`, :math:`a\gtrsim d/k`, is **[recalled]**.
    """
    return prob("delta", delta, "EF") / (4.0 * pos("L", L, "EF"))


def cser_stepsize(L: Any, delta: Any) -> float:
    r"""CSER (Xie et al. 2020): paper constants **[not recovered]**; labelled default (ours), as EF:
    :math:`\gamma=\frac\delta{4L}` with δ the contraction of the per-step compressor :math:`\mathcal C_1`."""
    return prob("delta", delta, "CSER") / (4.0 * pos("L", L, "CSER"))


def double_squeeze_stepsize(L: Any, n: int, *, sigma2: Any = None, K: Any = None,
                            compression_error: Any = None) -> float:
    r"""DoubleSqueeze (Tang et al. 2019) **[recalled]**, bounded compression error
    :math:`\mathbb E\|\mathcal C[v]-v\|^2\le\epsilon^2`:

    .. math:: \gamma=\big(4L+\sigma\sqrt{K/n}+\epsilon^{2/3}K^{1/3}\big)^{-1};

    terms whose constants are not given (``sigma2``, ``compression_error`` = :math:`\epsilon^2`; both need
    the horizon ``K``) are dropped, leaving :math:`1/(4L)` (labelled default).
    """
    owner = "DoubleSqueeze"
    denom = 4.0 * pos("L", L, owner)
    if K is not None:
        K = pos("K", K, owner)
        if sigma2 is not None:
            denom += math.sqrt(nonneg("sigma2", sigma2, owner) * K / check_int("n", n, owner))
        if compression_error is not None:
            denom += nonneg("compression_error", compression_error, owner) ** (1.0 / 3.0) * K ** (1.0 / 3.0)
    return 1.0 / denom
