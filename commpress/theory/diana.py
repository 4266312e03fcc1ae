r"""DIANA and VR-DIANA: stepsizes and iteration complexities.

Sources: Mishchenko, Gorbunov, Takáč, Richtárik 2019 (DIANA); Horváth, Kovalev, Mishchenko,
Richtárik, Stich (VR-DIANA poster, Theorems 1–3, Algorithm 1); Gorbunov, Hanzely, Richtárik 2020
(unified SGD analysis, **[recalled]**).

Notation: :math:`L` bounds the smoothness of every :math:`f_{ij}` (every :math:`f_i` for DIANA),
:math:`\kappa=L/\mu`, :math:`m` samples per client. ``omega_over_n`` is the aggregate variance
constant: :math:`\omega/n` for independent compressors (the papers' case), the AB constant A of a
correlated set otherwise (see :func:`~commpress.theory.constants.aggregate_variance`).
Iteration counts are the O-forms with constant 1; communication = iterations × payload bits.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.errors import ConfigError
from commpress.theory._validate import check_choice, check_int, nonneg, pos

__all__ = [
    "DIANA_REGIMES",
    "VR_DIANA_REGIMES",
    "diana_alpha",
    "diana_stepsize",
    "vr_diana_stepsize",
    "diana_iterations",
    "vr_diana_iterations",
]

#: ``"nonconvex"``: VR-DIANA Thm 3 with m = 1 (smoothness only, always valid);
#: ``"strongly_convex"``: unified analysis 1/((1+6ω/n)L) **[recalled]**;
#: ``"strongly_convex_vr"``: VR-DIANA Thm 1 with m = 1 **[exact]**.
DIANA_REGIMES = ("nonconvex", "strongly_convex", "strongly_convex_vr")
#: Theorems 3, 2, 1 of the VR-DIANA poster.
VR_DIANA_REGIMES = ("nonconvex", "convex", "strongly_convex")


def diana_alpha(omega: Any) -> float:
    r"""Shift stepsize :math:`\alpha=\frac1{\omega+1}` (the largest allowed; DIANA, VR-DIANA) **[exact]**."""
    return 1.0 / (nonneg("omega", omega, "DIANA") + 1.0)


def _wn(omega: float, n: int, omega_over_n: Any) -> float:
    return omega / n if omega_over_n is None else nonneg("omega_over_n", omega_over_n, "DIANA")


def diana_stepsize(L: Any, omega: Any, n: int, *, regime: str = "nonconvex", omega_over_n: Any = None) -> float:
    r"""DIANA stepsize (Mishchenko et al. 2019; constants from VR-DIANA with m = 1):

    - ``"nonconvex"`` (VR-DIANA Thm 3, :math:`m=1`): :math:`\gamma=\frac1{10L\sqrt{1+\omega/n}\,(\omega+2)}`;
    - ``"strongly_convex"`` (unified analysis **[recalled]**): :math:`\gamma=\frac1{(1+6\omega/n)L}`;
    - ``"strongly_convex_vr"`` (VR-DIANA Thm 1, :math:`m=1`): :math:`\gamma=\frac1{L(1+36(\omega+1)/n)}`.
    """
    owner = "DIANA"
    regime = check_choice("regime", regime, owner, DIANA_REGIMES)
    L, w, n = pos("L", L, owner), nonneg("omega", omega, owner), check_int("n", n, owner)
    wn = _wn(w, n, omega_over_n)
    if regime == "nonconvex":
        return 1.0 / (10.0 * L * math.sqrt(1.0 + wn) * (w + 2.0))
    if regime == "strongly_convex":
        return 1.0 / ((1.0 + 6.0 * wn) * L)
    return 1.0 / (L * (1.0 + 36.0 * (wn + 1.0 / n)))


def vr_diana_stepsize(L: Any, omega: Any, n: int, m: int, *, regime: str = "nonconvex",
                      omega_over_n: Any = None) -> float:
    r"""VR-DIANA stepsize, poster Theorems 1–3 **[exact]**:

    - ``"strongly_convex"`` (Thm 1): :math:`\gamma=\frac1{L(1+36(\omega+1)/n)}`;
    - ``"convex"`` (Thm 2): :math:`\gamma=\frac1{2L\sqrt m(1+36(\omega+1)/n)}`;
    - ``"nonconvex"`` (Thm 3): :math:`\gamma=\frac1{10L(1+\omega/n)^{1/2}(m^{2/3}+\omega+1)}`;

    always with :math:`\alpha=\frac1{\omega+1}`.
    """
    owner = "VR-DIANA"
    regime = check_choice("regime", regime, owner, VR_DIANA_REGIMES)
    L, w = pos("L", L, owner), nonneg("omega", omega, owner)
    n, m = check_int("n", n, owner), check_int("m", m, owner)
    wn = _wn(w, n, omega_over_n)
    if regime == "strongly_convex":
        return 1.0 / (L * (1.0 + 36.0 * (wn + 1.0 / n)))
    if regime == "convex":
        return 1.0 / (2.0 * L * math.sqrt(m) * (1.0 + 36.0 * (wn + 1.0 / n)))
    return 1.0 / (10.0 * L * math.sqrt(1.0 + wn) * (m ** (2.0 / 3.0) + w + 1.0))


def vr_diana_iterations(omega: Any, n: int, m: int, eps: Any, *, regime: str = "nonconvex",
                        kappa: Any = None) -> float:
    r"""VR-DIANA iteration complexity (poster Thms 1–3), O-forms with constant 1:

    - strongly convex: :math:`(\kappa+\kappa\frac\omega n+m+\omega)\log\frac1\varepsilon` for :math:`\mathbb E\|x^k-x^*\|^2\le\varepsilon`;
    - convex: :math:`\frac{(1+\omega/n)\sqrt m+\omega/\sqrt m}\varepsilon` for :math:`\mathbb E[f(x^a)-f^*]\le\varepsilon`;
    - nonconvex: :math:`(1+\frac\omega n)^{1/2}\frac{m^{2/3}+\omega}\varepsilon` for :math:`\mathbb E\|\nabla f(x^a)\|^2\le\varepsilon`.

    Each iteration sends one quantized message per worker (uplink).
    """
    owner = "VR-DIANA"
    regime = check_choice("regime", regime, owner, VR_DIANA_REGIMES)
    w, n = nonneg("omega", omega, owner), check_int("n", n, owner)
    m, e = check_int("m", m, owner), pos("eps", eps, owner)
    if regime == "strongly_convex":
        if kappa is None:
            raise ConfigError("VR-DIANA strongly convex complexity needs kappa = L/mu; pass kappa=...")
        k = pos("kappa", kappa, owner)
        return (k + k * w / n + m + w) * math.log(1.0 / e)
    if regime == "convex":
        return ((1.0 + w / n) * math.sqrt(m) + w / math.sqrt(m)) / e
    return math.sqrt(1.0 + w / n) * (m ** (2.0 / 3.0) + w) / e


def diana_iterations(omega: Any, n: int, eps: Any, *, regime: str = "nonconvex", kappa: Any = None) -> float:
    r"""DIANA iteration complexity (VR-DIANA Theorems 1 and 3 with m = 1), O-forms with constant 1:

    - ``"nonconvex"`` (VR-DIANA, m = 1): :math:`\sqrt{1+\omega/n}\,(1+\omega)/\varepsilon`;
    - ``"strongly_convex_vr"`` (VR-DIANA, m = 1): :math:`(\kappa+\kappa\omega/n+\omega)\log\frac1\varepsilon`;
    - ``"strongly_convex"`` (unified **[recalled]**): :math:`(\omega+\kappa(1+\omega/n))\log\frac1\varepsilon`.

    (The m = 1 nonconvex form writes :math:`m^{2/3}+\omega` as :math:`1+\omega`; the strongly convex m = 1
    form drops the constant m.)
    """
    owner = "DIANA"
    regime = check_choice("regime", regime, owner, DIANA_REGIMES)
    w, n, e = nonneg("omega", omega, owner), check_int("n", n, owner), pos("eps", eps, owner)
    if regime == "nonconvex":
        return math.sqrt(1.0 + w / n) * (1.0 + w) / e
    if kappa is None:
        raise ConfigError("DIANA strongly convex complexity needs kappa = L/mu; pass kappa=...")
    k = pos("kappa", kappa, owner)
    if regime == "strongly_convex_vr":
        return (k + k * w / n + w) * math.log(1.0 / e)
    return (w + k * (1.0 + w / n)) * math.log(1.0 / e)
