r"""Weighted MARINA with the importance-sampling combinatorial compressor (ISCC).

Sources: CQ paper (Panferov et al. 2024) Theorem 2 (weighted AB), Lemma 4, Theorem 3,
Corollary 4, App. C; Tyurin, Sun, Burlachenko, Richtárik 2022 (weighted AB, importance
sampling). Corollary 4's constants are our derivation of the paper's statement.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.errors import ConfigError
from commpress.theory._validate import check_int, nonneg, pos, prob
from commpress.theory.marina import (
    CommunicationComplexity,
    marina_communication,
    marina_stepsize,
)

__all__ = [
    "iscc_wab_constants",
    "iscc_stepsize",
    "iscc_bits_per_round",
    "iscc_corollary4_p",
    "iscc_communication",
    "iscc_corollary4_bound",
    "marina_corollary4_bound",
    "weighted_marina_stepsize",
]


def weighted_marina_stepsize(L_minus: Any, L_plus_w: Any, L_pm_w: Any, A: Any, B: Any, p: Any) -> float:
    r"""Weighted MARINA (CQ paper Algorithm 4, Theorem 2) with weighted AB :math:`(A,B,w)`:

    .. math:: \gamma=\Big(L_-+\sqrt{\tfrac{1-p}{p}\big((A-B)L_{+,w}^2+B\,L_{\pm,w}^2\big)}\Big)^{-1}.

    With :math:`w_i=1/n` it is :func:`~commpress.theory.marina_stepsize`. **[recalled structure]**
    """
    return marina_stepsize(L_minus, L_plus_w, L_pm_w, A, B, p)


def iscc_wab_constants(omega: Any, tau: int = 1) -> tuple[float, float]:
    r"""Lemma 4: ISCC with :math:`\tau` i.i.d. draws from :math:`q` and independent
    :math:`\mathcal C_i\in\mathbb U(\omega)` satisfies weighted AB :math:`\big(\frac{\omega+1}\tau,\frac1\tau,q\big)`
    (plain importance sampling: :math:`\omega=0`)."""
    tau = check_int("tau", tau, "ISCC")
    return (nonneg("omega", omega, "ISCC") + 1.0) / tau, 1.0 / tau


def iscc_stepsize(L_minus: Any, L_am: Any, omega: Any, p: Any, *, tau: int = 1) -> float:
    r"""Theorem 3 (CQ paper): :math:`q_i=w_i=L_i/\sum_jL_j`, so :math:`L_{+,w},L_{\pm,w}\le L_{AM}`:

    .. math:: \gamma=\Big(L_-+L_{AM}\sqrt{\tfrac{(1-p)(\omega+1)}{p\,\tau}}\Big)^{-1}.
    """
    A, B = iscc_wab_constants(omega, tau)
    L_am = pos("L_am", L_am, "ISCC")
    return marina_stepsize(L_minus, L_am, L_am, A, B, p)


def iscc_bits_per_round(p: Any, d: int, zeta: Any, n: int, *, tau: int = 1, float_bits: int = 32) -> float:
    r"""Expected uplink bits per client per round: :math:`32dp+(1-p)\,\tau\zeta/n` (τ messages of ζ bits
    per compressed round, spread over n clients; CQ paper Thm 3 setting)."""
    p = prob("p", p, "ISCC")
    n, tau = check_int("n", n, "ISCC"), check_int("tau", tau, "ISCC")
    return float_bits * d * p + (1.0 - p) * tau * pos("zeta", zeta, "ISCC") / n


def iscc_corollary4_p(zeta: Any, d: int, n: int, *, tau: int = 1, float_bits: int = 32) -> float:
    r"""Corollary 4's choice :math:`p=\tau\zeta/(32dn)` (≤ 1): a dense round costs what a compressed one does."""
    p = tau * pos("zeta", zeta, "ISCC") / (float_bits * pos("d", d, "ISCC") * check_int("n", n, "ISCC"))
    if p > 1.0:
        raise ConfigError(f"ISCC Corollary 4 needs tau*zeta <= 32*d*n; got p = {p:.4g} > 1. Use fewer draws tau.")
    return p


def iscc_communication(L_minus: Any, L_am: Any, omega: Any, d: int, zeta: Any, n: int, delta0: Any, eps: Any,
                       p: Any = None, *, tau: int = 1, float_bits: int = 32) -> CommunicationComplexity:
    r"""Uplink bits per client of MARINA+ISCC (CQ paper Theorem 3 stepsize; exact bits, ours):

    .. math:: \mathcal C=32d+\Big\lceil\frac{2\Delta^0M(p)}{\varepsilon^2}\Big\rceil\Big(32dp+(1-p)\frac{\tau\zeta}n\Big),
              \quad M(p)=L_-+L_{AM}\sqrt{\tfrac{(1-p)(\omega+1)}{p\tau}},

    at the optimal p (App. D.2.1 applied to these bits) when ``p=None``. ``zeta``: bits of one
    inner-compressor message.
    """
    A, B = iscc_wab_constants(omega, tau)
    zeta_eff = tau * pos("zeta", zeta, "ISCC") / check_int("n", n, "ISCC")  # per-client average
    L_am = pos("L_am", L_am, "ISCC")
    return marina_communication(L_minus, L_am, L_am, A, B, d, zeta_eff, delta0, eps, p, float_bits=float_bits)


def iscc_corollary4_bound(L_minus: Any, L_am: Any, omega: Any, d: int, zeta: Any, n: int, delta0: Any, eps: Any,
                          *, float_bits: int = 32) -> float:
    r"""Corollary 4 (τ = 1, :math:`p=\zeta/(32dn)`; CQ paper; our constants):

    .. math:: \mathcal C_{ISCC}\le 32d+\frac{4\Delta^0}{\varepsilon^2}\Big(\frac{L_-\zeta}{n}
              +L_{AM}\sqrt{\frac{32d(\omega+1)\zeta}{n}}\Big)

    (no ceiling on the rounds, as in the paper's form).
    """
    owner = "ISCC Corollary 4"
    n = check_int("n", n, owner)
    iscc_corollary4_p(zeta, d, n, float_bits=float_bits)  # validates p <= 1
    L_minus, L_am, zeta = pos("L_minus", L_minus, owner), pos("L_am", L_am, owner), pos("zeta", zeta, owner)
    w = nonneg("omega", omega, owner)
    c = 4.0 * nonneg("delta0", delta0, owner) / pos("eps", eps, owner) ** 2
    return float_bits * d + c * (L_minus * zeta / n + L_am * math.sqrt(float_bits * d * (w + 1.0) * zeta / n))


def marina_corollary4_bound(L_minus: Any, L_plus: Any, omega: Any, d: int, zeta: Any, n: int, delta0: Any,
                            eps: Any, *, float_bits: int = 32) -> float:
    r"""The same computation for plain MARINA, independent :math:`\mathbb U(\omega)`, :math:`p=\zeta/(32d)`:

    .. math:: \mathcal C\le32d+\frac{4\Delta^0}{\varepsilon^2}\Big(L_-\zeta+L_+\sqrt{\frac{32d\,\omega\zeta}n}\Big).

    ISCC replaces :math:`L_+` by :math:`L_{AM}` (:math:`\omega\to\omega+1`) and divides the :math:`L_-` term
    by n (the CQ paper's headline claim for ISCC).
    """
    owner = "MARINA Corollary-4 bound"
    n = check_int("n", n, owner)
    L_minus, L_plus, zeta = pos("L_minus", L_minus, owner), nonneg("L_plus", L_plus, owner), pos("zeta", zeta, owner)
    if zeta > float_bits * d:
        raise ConfigError(f"{owner} needs zeta <= 32*d (p = zeta/(32 d) <= 1); got zeta={zeta}, d={d}.")
    c = 4.0 * nonneg("delta0", delta0, owner) / pos("eps", eps, owner) ** 2
    w = nonneg("omega", omega, owner)
    return float_bits * d + c * (L_minus * zeta + L_plus * math.sqrt(float_bits * d * w * zeta / n))


