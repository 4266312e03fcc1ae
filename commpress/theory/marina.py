r"""MARINA: stepsizes, optimal p, communication complexity and improvement factor over GD.

Sources: Gorbunov, Burlachenko, Li, Richtárik, *MARINA*, ICML 2021, Thm 2.1 (original stepsize);
Szlendak, Tyurin, Richtárik 2021 (AB-inequality and Hessian variance); CQ paper (Panferov et
al. 2024) Theorem 2, App. B (bits accounting, improvement factors) and App. D.2.1 (optimal p).

Every function of ``p`` is written through :math:`u=\sqrt{(1-p)/p}` (:math:`p=1/(1+u^2)`): with
:math:`r=\sqrt{(A-B)L_+^2+BL_\pm^2}/L_-` and :math:`z=\zeta/(32d)` the improvement factor is

.. math:: \mathrm{IF}(u)=\frac{(1+ru)(1+zu^2)}{1+u^2},

and :math:`\frac{d}{du}\log\mathrm{IF}=0` is the quartic
:math:`rz\,u^4+r(3z-1)\,u^2-2(1-z)\,u+r=0`, which has at most two positive roots (Descartes): a
local maximum and a local minimum. The optimum over :math:`p\in[p_{\min},1]` is therefore the
best of :math:`p=1` (GD), :math:`p_{\min}` and the polished real roots, found for whole arrays at
once (:func:`normalized_improvement_factor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from commpress.errors import ConfigError
from commpress.theory._validate import nonneg, pos, prob

__all__ = [
    "CommunicationComplexity",
    "P_MIN",
    "marina_M",
    "marina_stepsize",
    "marina_stepsize_original",
    "marina_variance_term",
    "marina_bits_per_round",
    "marina_bits_ratio_p",
    "marina_rounds",
    "marina_optimal_p",
    "marina_improvement_factor",
    "marina_communication",
    "gd_communication",
    "normalized_improvement_factor",
]

#: Smallest p searched: the answer when the infimum is at p -> 0 (zero compression variance).
P_MIN = 1e-12


@dataclass(frozen=True)
class CommunicationComplexity:
    """Uplink bits per client to reach :math:`\\mathbb E\\|\\nabla f(\\hat x)\\|^2\\le\\varepsilon^2`.

    ``bits`` is exact: the initial dense round plus ``rounds`` (an integer, with the ceiling) times
    the expected bits per round. ``bits_paper`` is the CQ paper's approximation
    :math:`\\frac{2\\Delta^0}{\\varepsilon^2}M(p)\\,b(p)` (no initial round, no ceiling).
    """

    p: float
    gamma: float
    rounds: int
    bits_per_round: float
    bits: float
    bits_paper: float


def marina_variance_term(L_plus: Any, L_pm: Any, A: Any, B: Any) -> float:
    r""":math:`(A-B)L_+^2+B\,L_\pm^2` (Szlendak, Tyurin, Richtárik, ICLR 2022)."""
    owner = "MARINA"
    L_plus, L_pm = nonneg("L_plus", L_plus, owner), nonneg("L_pm", L_pm, owner)
    A, B = nonneg("A", A, owner), nonneg("B", B, owner)
    if A < B:
        raise ConfigError(f"{owner}: the AB-inequality needs A >= B >= 0; got A={A}, B={B}.")
    return (A - B) * L_plus**2 + B * L_pm**2


def marina_M(L_minus: Any, L_plus: Any, L_pm: Any, A: Any, B: Any, p: Any) -> float:
    r"""The inverse stepsize of MARINA under the AB-inequality (Szlendak et al. 2021, Thm.; CQ paper Thm 2).

    .. math:: M(p)=L_-+\sqrt{\frac{1-p}{p}\big((A-B)L_+^2+B\,L_\pm^2\big)} .

    With weighted constants (:math:`L_{+,w}, L_{\pm,w}` and weighted AB :math:`(A,B,w)`) it is the
    weighted-MARINA bound of CQ paper Theorem 2.
    """
    L_minus = pos("L_minus", L_minus, "MARINA")
    p = prob("p", p, "MARINA")
    return L_minus + math.sqrt((1.0 - p) / p * marina_variance_term(L_plus, L_pm, A, B))


def marina_stepsize(L_minus: Any, L_plus: Any, L_pm: Any, A: Any, B: Any, p: Any) -> float:
    r"""MARINA's theoretical stepsize :math:`\gamma=1/M(p)` (see :func:`marina_M`); then
    :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\frac{2\Delta^0}{\gamma T}`. At :math:`p=1` it is GD's :math:`1/L_-`."""
    return 1.0 / marina_M(L_minus, L_plus, L_pm, A, B, p)


def marina_stepsize_original(L: Any, omega: Any, n: int, p: Any) -> float:
    r"""Gorbunov et al. 2021, Theorem 2.1: independent :math:`\mathcal Q_i\in\mathbb U(\omega)`, :math:`L=L_{QM}`,

    .. math:: \gamma=\frac1{L\big(1+\sqrt{(1-p)\,\omega/(pn)}\big)} .
    """
    owner = "MARINA (Gorbunov Thm 2.1)"
    L, omega, p = pos("L", L, owner), nonneg("omega", omega, owner), prob("p", p, owner)
    n = int(pos("n", n, owner))
    return 1.0 / (L * (1.0 + math.sqrt((1.0 - p) * omega / (p * n))))


def marina_bits_per_round(p: Any, d: int, zeta: Any, *, float_bits: int = 32) -> float:
    r"""Expected uplink bits per client per round: :math:`b(p)=32dp+(1-p)\zeta` (MARINA, Gorbunov et al. 2021)."""
    p = prob("p", p, "MARINA")
    return float_bits * d * p + (1.0 - p) * pos("zeta", zeta, "MARINA")


def marina_bits_ratio_p(d: int, zeta: Any, *, float_bits: int = 32) -> float:
    r"""Gorbunov et al.'s choice :math:`p=\zeta_{\mathcal Q}/d` in bits: :math:`p=\min\{1,\zeta/(32d)\}`
    (the expected cost of a dense round equals that of a compressed one)."""
    return min(1.0, pos("zeta", zeta, "MARINA") / (float_bits * pos("d", d, "MARINA")))


def marina_rounds(M: Any, delta0: Any, eps: Any) -> int:
    r"""Rounds to :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\varepsilon^2` at :math:`\gamma=1/M`:
    :math:`T=\lceil 2\Delta^0M/\varepsilon^2\rceil` (Szlendak et al. 2022)."""
    owner = "marina_rounds"
    value = 2.0 * nonneg("delta0", delta0, owner) * pos("M", M, owner) / pos("eps", eps, owner) ** 2
    return max(1, math.ceil(value * (1.0 - 1e-14)))  # guard against round-off just above an integer


# ---------------------------------------------------------------------------- optimal p
def _phi(u: np.ndarray, r: np.ndarray, z: np.ndarray) -> np.ndarray:
    u2 = u * u
    return (1.0 + r * u) * (1.0 + z * u2) / (1.0 + u2)


def _optimal_u(r: np.ndarray, z: np.ndarray, u_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised argmin of ``_phi`` over ``[0, u_max]`` (flat float64 arrays of equal length)."""
    m = r.size
    best_u = np.zeros(m)
    best_phi = np.ones(m)  # u = 0 (p = 1): IF = 1
    cand = [np.full(m, u_max)]
    has = (r > 0) & (z < 1)
    if np.any(has):
        rr, zz = r[has], z[has]
        comp = np.zeros((rr.size, 4, 4))
        comp[:, 0, 1] = -(3.0 * zz - 1.0) / zz
        comp[:, 0, 2] = 2.0 * (1.0 - zz) / (rr * zz)
        comp[:, 0, 3] = -1.0 / zz
        comp[:, 1, 0] = comp[:, 2, 1] = comp[:, 3, 2] = 1.0
        roots = np.linalg.eigvals(comp)  # (k, 4) complex
        real = np.abs(roots.imag) <= 1e-6 * np.maximum(1.0, np.abs(roots.real))
        u = np.where(real & (roots.real > 0), roots.real, np.nan)
        c4, c2, c1, c0 = (rr * zz)[:, None], (rr * (3 * zz - 1))[:, None], (-2 * (1 - zz))[:, None], rr[:, None]
        for _ in range(4):  # Newton polish of each real root
            P = ((c4 * u * u + c2) * u + c1) * u + c0
            dP = (4 * c4 * u * u + 2 * c2) * u + c1
            step = np.where(dP != 0, P / np.where(dP != 0, dP, 1.0), 0.0)
            u = u - step
        u = np.clip(u, 0.0, u_max)
        for j in range(4):
            col = np.full(m, np.nan)
            col[has] = u[:, j]
            cand.append(col)
    for c in cand:
        ok = ~np.isnan(c)
        phi = np.where(ok, _phi(np.where(ok, c, 0.0), r, z), np.inf)
        better = phi < best_phi * (1.0 - 1e-13)  # ties go to the earlier candidate (p = 1 first)
        best_u = np.where(better, c, best_u)
        best_phi = np.where(better, phi, best_phi)
    return best_u, best_phi


def normalized_improvement_factor(r: Any, z: Any, p: Any = None, *,
                                  p_min: float = P_MIN) -> tuple[np.ndarray, np.ndarray]:
    r"""Improvement factor of MARINA over GD in normalised form, vectorised.

    .. math:: \mathrm{IF}(p)=\Big(1+r\sqrt{\tfrac{1-p}{p}}\Big)\big(p+(1-p)z\big),\qquad
              r=\frac{\sqrt{(A-B)L_+^2+BL_\pm^2}}{L_-},\quad z=\frac{\zeta}{32d}

    (CQ paper App. B / D.2.1). With ``p=None`` it returns
    :math:`\min_{p\in[p_{\min},1]}\mathrm{IF}(p)` and the minimiser (ties prefer ``p = 1``, i.e. GD);
    ``p_min`` is returned when the infimum is at :math:`p\to0` (``r = 0``, ``z < 1``).
    ``r`` and ``z`` (and ``p``) broadcast; returns ``(IF, p)`` as float64 numpy arrays.
    """
    r_a = np.asarray(r, dtype=np.float64)
    z_a = np.asarray(z, dtype=np.float64)
    if np.any(~np.isfinite(r_a)) or np.any(r_a < 0):
        raise ConfigError("normalized_improvement_factor needs finite r >= 0 (r = sqrt(variance term) / L_minus).")
    if np.any(~np.isfinite(z_a)) or np.any(z_a <= 0):
        raise ConfigError("normalized_improvement_factor needs finite z > 0 (z = zeta / (32 d), zeta > 0 bits).")
    if p is not None:
        p_a = np.asarray(p, dtype=np.float64)
        if np.any(~(p_a > 0)) or np.any(p_a > 1):
            raise ConfigError(f"MARINA needs p in (0, 1]; got p={p}.")
        r_b, z_b, p_b = np.broadcast_arrays(r_a, z_a, p_a)
        return (1.0 + r_b * np.sqrt((1.0 - p_b) / p_b)) * (p_b + (1.0 - p_b) * z_b), p_b.copy()
    if not 0.0 < p_min <= 1.0:
        raise ConfigError(f"p_min must be in (0, 1]; got {p_min}.")
    r_b, z_b = np.broadcast_arrays(r_a, z_a)
    u_max = math.sqrt((1.0 - p_min) / p_min)
    u, phi = _optimal_u(r_b.ravel().copy(), z_b.ravel().copy(), u_max)
    p_opt = 1.0 / (1.0 + u * u)
    return phi.reshape(r_b.shape), p_opt.reshape(r_b.shape)


def _r_z(L_minus: Any, L_plus: Any, L_pm: Any, A: Any, B: Any, d: Any, zeta: Any,
         float_bits: int) -> tuple[float, float]:
    owner = "MARINA"
    r = math.sqrt(marina_variance_term(L_plus, L_pm, A, B)) / pos("L_minus", L_minus, owner)
    z = pos("zeta", zeta, owner) / (float_bits * pos("d", d, owner))
    return r, z


def marina_optimal_p(L_minus: Any, L_plus: Any, L_pm: Any, A: Any, B: Any, d: int, zeta: Any, *,
                     float_bits: int = 32, p_min: float = P_MIN) -> float:
    r"""Optimal MARINA probability (CQ paper App. D.2.1):

    .. math:: p^\star=\arg\min_{p\in(0,1]}\Big(L_-+\sqrt{\tfrac{1-p}{p}\big((A-B)L_+^2+BL_\pm^2\big)}\Big)
              \big(32dp+(1-p)\zeta\big).

    ``p = 1`` means GD is best. For the CQ paper's extrapolation outside the zero-Hessian-variance
    regime pass ``L_plus = L_minus`` and ``L_pm = 0``.
    """
    r, z = _r_z(L_minus, L_plus, L_pm, A, B, d, zeta, float_bits)
    return float(normalized_improvement_factor(r, z, p_min=p_min)[1])


def marina_improvement_factor(L_minus: Any, L_plus: Any, L_pm: Any, A: Any, B: Any, d: int, zeta: Any,
                              p: Any = None, *, float_bits: int = 32) -> float:
    r"""Bits of MARINA over bits of GD (paper approximation; CQ paper App. B):

    .. math:: \mathrm{IF}(p)=\frac{M(p)}{L_-}\Big(p+(1-p)\frac{\zeta}{32d}\Big),

    at the optimal :math:`p` when ``p=None``. Smaller is better; the identity compressor gives 1.
    """
    r, z = _r_z(L_minus, L_plus, L_pm, A, B, d, zeta, float_bits)
    if p is not None:
        p = prob("p", p, "MARINA")
    return float(normalized_improvement_factor(r, z, p)[0])


def marina_communication(L_minus: Any, L_plus: Any, L_pm: Any, A: Any, B: Any, d: int, zeta: Any,
                         delta0: Any, eps: Any, p: Any = None, *, float_bits: int = 32) -> CommunicationComplexity:
    r"""Uplink bits per client for MARINA to reach :math:`\varepsilon^2` (CQ paper App. B; the exact form is ours):

    .. math:: \mathcal C(p)=32d+\Big\lceil\frac{2\Delta^0M(p)}{\varepsilon^2}\Big\rceil\big(32dp+(1-p)\zeta\big),
              \qquad \mathcal C_{\rm paper}(p)=\frac{2\Delta^0}{\varepsilon^2}M(p)\big(32dp+(1-p)\zeta\big),

    at the optimal :math:`p` (App. D.2.1) when ``p=None``.
    """
    if p is None:
        p = marina_optimal_p(L_minus, L_plus, L_pm, A, B, d, zeta, float_bits=float_bits)
    M = marina_M(L_minus, L_plus, L_pm, A, B, p)
    b = marina_bits_per_round(p, d, zeta, float_bits=float_bits)
    rounds = marina_rounds(M, delta0, eps)
    paper = 2.0 * float(delta0) * M / float(eps) ** 2 * b
    return CommunicationComplexity(p=float(p), gamma=1.0 / M, rounds=rounds, bits_per_round=b,
                                   bits=float_bits * d + rounds * b, bits_paper=paper)


def gd_communication(L_minus: Any, d: int, delta0: Any, eps: Any, *, float_bits: int = 32) -> CommunicationComplexity:
    r"""GD (MARINA with :math:`p=1`): :math:`\mathcal C_{GD}=\frac{2\Delta^0L_-}{\varepsilon^2}\,32d` bits per client
    (paper form; the exact form adds the initial round and the ceiling)."""
    return marina_communication(L_minus, 0.0, 0.0, 0.0, 0.0, d, float_bits * d, delta0, eps, 1.0,
                                float_bits=float_bits)
