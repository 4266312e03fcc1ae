r"""Independent vs correlated quantization in MARINA's zero-Hessian-variance regime.

Sources: CQ paper (Panferov, Demidovich, Rammal, Richtárik 2024) Sec. 3.3–3.4, Proposition 4,
App. B.1 (communication complexity), App. B.2 (the :math:`d=n` analysis: 0.23 / 0.03 / 7.29),
Sec. 4.4 (the :math:`d`–:math:`n` plane).

In this regime :math:`L_\pm=0`, :math:`L_+=L_-=L`, :math:`B=0` and

.. math:: \mathrm{IF}_Q(d,n)=\min_{p}\Big(1+\sqrt{\tfrac{(1-p)A_Q}{p}}\Big)\Big(p+(1-p)\frac{\zeta}{32d}\Big),
          \qquad \zeta=32+d\lceil\log_2(s+1)\rceil,

with :math:`A_Q` from :func:`~commpress.theory.constants.quantizer_ab_constants`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from commpress.theory._validate import check_choice, nonneg, pos
from commpress.theory.constants import _as_array, quantizer_ab_constants, quantizer_bits
from commpress.theory.marina import CommunicationComplexity, marina_communication, normalized_improvement_factor

__all__ = [
    "DNAnalysis",
    "DNPlane",
    "quantized_improvement_factor",
    "quantized_marina_communication",
    "dn_equal_analysis",
    "dn_plane",
]


def quantized_improvement_factor(kind: str, n: Any, d: Any, *, levels: int = 1, convention: str = "paper",
                                 float_bits: int = 32) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`(\mathrm{IF}_Q, p^\star)` of MARINA with IQ or CQ on homogeneous data, vectorised over ``n``, ``d``.

    .. math:: \mathrm{IF}_Q=\min_p\Big(1+\sqrt{\tfrac{(1-p)A_Q}{p}}\Big)\Big(p+(1-p)\frac{32+d\lceil\log_2(s+1)\rceil}{32d}\Big)

    (CQ paper Prop. 4 / App. B.1 divided by :math:`\mathcal C_{GD}`; Sec. 4.4).
    ``n`` and ``d`` broadcast (numpy arrays or torch tensors); returns float64 numpy arrays.
    """
    check_choice("kind", kind, "quantized_improvement_factor", ("iq", "cq"))
    A = quantizer_ab_constants(kind, n, d, levels=levels, convention=convention)
    z = quantizer_bits(d, levels=levels) / (float_bits * _as_array(d))
    return normalized_improvement_factor(np.sqrt(A), z)


def quantized_marina_communication(kind: str, n: int, d: int, L: Any, delta0: Any, eps: Any, *,
                                   levels: int = 1, convention: str = "paper",
                                   float_bits: int = 32) -> CommunicationComplexity:
    r"""Proposition 4 (CQ paper): MARINA with IQ/CQ, :math:`L_\pm=0`, :math:`\gamma=1/M(p)`:

    .. math:: \mathcal C_Q=\frac{2\Delta^0L}{\varepsilon^2}\min_p\Big(1+\sqrt{\tfrac{(1-p)A_Q}{p}}\Big)
              \big(32dp+(d+32)(1-p)\big)

    (``bits_paper``); ``bits`` adds the initial dense round and the ceiling on the rounds.
    Since :math:`A_{CQ}=A_{IQ}/n`, :math:`\mathcal C_{CQ}\le\mathcal C_{IQ}` for every p.
    """
    L = pos("L", L, "quantized_marina_communication")
    A = float(quantizer_ab_constants(kind, n, d, levels=levels, convention=convention))
    zeta = float(quantizer_bits(d, levels=levels))
    return marina_communication(L, L, 0.0, A, 0.0, d, zeta, nonneg("delta0", delta0, "Prop. 4"), eps,
                                float_bits=float_bits)


@dataclass(frozen=True)
class DNAnalysis:
    """App. B.2 at :math:`d=n` (``d = inf`` for the paper's large-d limit)."""

    d: float
    p_iq: float
    if_iq: float
    p_cq: float
    if_cq: float
    ratio: float  # if_iq / if_cq: the speed-up of correlated over independent quantization


def dn_equal_analysis(d: Any = math.inf, *, convention: str = "paper", levels: int = 1) -> DNAnalysis:
    r"""The :math:`d=n` analysis of the CQ paper, App. B.2.

    At :math:`d=n` the paper convention gives :math:`A_{IQ}=\frac14`, :math:`A_{CQ}=\frac1{4d}` and
    :math:`\zeta/(32d)=\frac{d+32}{32d}\to\frac1{32}`. In the limit :math:`d=n\to\infty` (``d=inf``, the
    published numbers): :math:`\mathrm{IF}_{CQ}=\inf_p(p+\frac{1-p}{32})=\frac1{32}` (:math:`p\to0`, reported
    as 0), :math:`\mathrm{IF}_{IQ}=\min_p(1+\sqrt{\frac{1-p}{4p}})(p+\frac{1-p}{32})\approx0.2277` at
    :math:`p^\star\approx0.0211`, ratio :math:`\approx7.29` — the paper's 0.23 / 0.03 / 7.29.
    With ``convention="rigorous"`` (:math:`A_{IQ}=(d-1)/n\to1`): 0.4018 and ratio 12.86.
    """
    check_choice("convention", convention, "dn_equal_analysis", ("paper", "rigorous"))
    s = levels
    if isinstance(d, (int, float)) and math.isinf(d):
        zb = math.ceil(math.log2(s + 1)) / 32.0  # (32 + d ceil(log2(s+1))) / (32 d) as d -> inf
        a_iq = 1.0 / (4 * s * s) if convention == "paper" else 1.0 / (s * s)  # (d-1)/n -> 1 for s = 1
        if_iq, p_iq = normalized_improvement_factor(math.sqrt(a_iq), zb)
        if_cq, p_cq = zb, 0.0  # A_CQ -> 0: inf_p (p + (1-p) z) = z at p -> 0
        return DNAnalysis(math.inf, float(p_iq), float(if_iq), p_cq, if_cq, float(if_iq) / if_cq)
    d = pos("d", d, "dn_equal_analysis")
    if_iq, p_iq = quantized_improvement_factor("iq", d, d, levels=levels, convention=convention)
    if_cq, p_cq = quantized_improvement_factor("cq", d, d, levels=levels, convention=convention)
    return DNAnalysis(d, float(p_iq), float(if_iq), float(p_cq), float(if_cq), float(if_iq / if_cq))


@dataclass(frozen=True)
class DNPlane:
    """Improvement factors over a grid: arrays of shape ``(len(d), len(n))`` (rows: d, columns: n)."""

    d: Any
    n: Any
    if_iq: Any
    if_cq: Any
    ratio: Any  # if_iq / if_cq
    p_iq: Any
    p_cq: Any


def dn_plane(d: Any, n: Any, *, convention: str = "paper", levels: int = 1) -> DNPlane:
    r"""The :math:`d`–:math:`n` plane of the CQ paper, Sec. 4.4 and Figure 4, for heat maps.

    For every pair of the 1-D arrays ``d`` (rows) and ``n`` (columns):
    :math:`\mathrm{IF}_{IQ}(d,n)`, :math:`\mathrm{IF}_{CQ}(d,n)` (see :func:`quantized_improvement_factor`),
    their ratio and the optimal p's. Vectorised (one batched solve). numpy in, numpy out; torch in,
    torch (float64) out.
    """
    is_torch = hasattr(d, "detach") or hasattr(n, "detach")
    d_a, n_a = _as_array(d).reshape(-1), _as_array(n).reshape(-1)
    D, N = np.meshgrid(d_a, n_a, indexing="ij")
    if_iq, p_iq = quantized_improvement_factor("iq", N, D, levels=levels, convention=convention)
    if_cq, p_cq = quantized_improvement_factor("cq", N, D, levels=levels, convention=convention)
    out = dict(d=d_a, n=n_a, if_iq=if_iq, if_cq=if_cq, ratio=if_iq / if_cq, p_iq=p_iq, p_cq=p_cq)
    if is_torch:
        import torch

        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}
    return DNPlane(**out)
