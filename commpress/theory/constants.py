r"""Compressor constants as the theory uses them: AB constants, contraction, quantizer conventions.

Sources: CQ paper (Panferov, Demidovich, Rammal, Richtárik 2024) Prop. 1, Sec. 3.4, App. B, Alg. 3,
Cor. 3; Szlendak, Tyurin, Richtárik, ICLR 2022 (AB-inequality). The rigorous IQ/CQ and PermK+CQ
constants are our derivations (stated with each function).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from commpress.compressors.base import CompressorTheory
from commpress.errors import ConfigError
from commpress.theory._validate import as_theory, check_choice, check_int

__all__ = [
    "CONVENTIONS",
    "ab_constants",
    "aggregate_variance",
    "contraction",
    "quantizer_ab_constants",
    "quantizer_bits",
    "permk_cq_constants",
]

#: ``"auto"`` (the default of the stepsize rules): ``"homogeneous"`` where the method's compressed
#: vectors are identical across clients (MARINA's gradient differences when L_pm = 0), else rigorous;
#: ``"rigorous"``: the AB constants the compressor guarantees on every input (safe stepsizes);
#: ``"homogeneous"``: valid on identical inputs only (zero Hessian variance, CQ's d/n^2);
#: ``"paper"``: the CQ paper's convention d/(4n), d/(4n^2) (reproductions only).
CONVENTIONS = ("auto", "rigorous", "homogeneous", "paper")


def ab_constants(compressor: Any, n: int | None = None, d: int | None = None, *,
                 convention: str = "rigorous", owner: str = "ab_constants") -> tuple[float, float]:
    r"""The AB-inequality constants :math:`(A, B)` of a compressor set.

    .. math:: \mathbb E\Big\|\tfrac1n\textstyle\sum_i\mathcal C_i(a_i)-\bar a\Big\|^2
              \le A\,\tfrac1n\textstyle\sum_i\|a_i\|^2-B\,\|\bar a\|^2 .

    ``convention="rigorous"`` uses ``theory.A, theory.B``; if they are missing and the set is
    ``"unbiased"`` with private (independent) randomness, :math:`(\omega/n, 0)` (CQ paper Prop. 1).
    ``"homogeneous"`` uses ``extras["A_homogeneous"]`` (CQ: :math:`d/(n^2s^2)`), valid only when every
    client compresses the same vector (MARINA with :math:`L_\pm=0`), falling back to rigorous.
    ``"paper"`` uses ``extras["A_paper"]`` (IQ :math:`d/(4n)`, CQ :math:`d/(4n^2)`), falling back to
    rigorous for compressors without a paper convention. Sources: Szlendak et al. 2022 (AB-inequality);
    CQ paper Sec. 3.4 (paper convention).
    """
    check_choice("convention", convention, owner, CONVENTIONS)
    if convention == "auto":  # without a problem to look at, auto is the safe choice
        convention = "rigorous"
    th = compressor if isinstance(compressor, CompressorTheory) else as_theory(compressor, n, d, owner)
    B = th.B if th.B is not None else 0.0
    if convention in ("paper", "homogeneous"):
        key = "A_paper" if convention == "paper" else "A_homogeneous"
        if key in th.extras and th.extras[key] is not None:
            return float(th.extras[key]), float(B)
    if th.A is not None:
        return float(th.A), float(B)
    if th.kind == "unbiased" and th.omega is not None:
        if n is None:
            raise ConfigError(f"{owner}: the AB constant A = omega/n needs n; pass n=<number of clients>.")
        return float(th.omega) / int(n), 0.0
    raise ConfigError(
        f"{owner} needs the AB-inequality constants (A, B) of the compressor set, which are missing "
        f"(kind={th.kind!r}, omega={th.omega}, delta={th.delta}, A=None). Use an unbiased or correlated "
        "compressor that reports them, or pass A=... and B=... explicitly."
    )


def aggregate_variance(compressor: CompressorTheory, n: int, owner: str) -> float:
    r"""The constant that replaces :math:`\omega/n` in DIANA-type proofs: the AB constant :math:`A`.

    For independent :math:`\mathcal Q_i\in\mathbb U(\omega)` the aggregate error is exactly
    :math:`\frac1{n^2}\sum_i e_i\le\frac\omega n\cdot\frac1n\sum_i\|a_i\|^2`, the only place the DIANA /
    VR-DIANA proofs use independence; for a correlated set the reported :math:`A` bounds the same
    quantity (library generalisation, equal to :math:`\omega/n` for independent compressors).
    """
    if compressor.kind not in ("unbiased", "correlated"):
        raise ConfigError(
            f"{owner} needs an unbiased compressor (omega); got kind={compressor.kind!r} "
            f"(omega={compressor.omega}, delta={compressor.delta}). Use an unbiased compressor "
            "(e.g. 'iq', 'randk' with scaling) or pass omega=... and omega_over_n=... explicitly."
        )
    return ab_constants(compressor, n, owner=owner)[0]


def contraction(compressor: CompressorTheory, owner: str, *, allow_rescale: bool = False) -> tuple[float, float]:
    r"""Contraction constant :math:`\delta` of :math:`\mathbb B(\delta)` and the scale to apply.

    Returns ``(delta, scale)``: ``theory.delta`` with scale 1 if reported; else, for
    :math:`\mathcal C\in\mathbb U(\omega)` with :math:`\omega<1`, :math:`\delta=1-\omega` as is
    (:math:`\mathbb E\|\mathcal C(x)-x\|^2\le\omega\|x\|^2`); else, if ``allow_rescale`` (NEOLITHIC),
    :math:`\frac1{1+\omega}\mathcal C\in\mathbb B(\frac1{1+\omega})` with scale :math:`\frac1{1+\omega}`
    (the standard rescaling; how Huang et al., NEOLITHIC, NeurIPS 2022, cover
    :math:`\mathbb U(\omega)`). Otherwise a ConfigError.
    """
    if compressor.delta is not None:
        delta = float(compressor.delta)
        if not 0.0 < delta <= 1.0:
            raise ConfigError(f"{owner}: the compressor reports delta={delta}; a contraction needs 0 < delta <= 1.")
        return delta, 1.0
    omega = compressor.omega
    if omega is not None and math.isfinite(omega):
        if omega < 1.0:
            return 1.0 - float(omega), 1.0
        if allow_rescale:
            return 1.0 / (1.0 + float(omega)), 1.0 / (1.0 + float(omega))
    raise ConfigError(
        f"{owner} needs the contraction constant delta of a contractive compressor, which is missing "
        f"(kind={compressor.kind!r}, omega={omega}, delta=None). An unbiased compressor with omega >= 1 "
        "is not contractive: use a contractive one (e.g. 'topk'), scale it by 1/(1+omega) "
        "(delta = 1/(1+omega)), or pass delta=... explicitly."
    )


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def quantizer_ab_constants(kind: str, n: Any, d: Any, *, levels: int = 1, convention: str = "paper") -> np.ndarray:
    r"""AB constant :math:`A` (with :math:`B=0`) of IQ or CQ on homogeneous inputs (zero Hessian variance).

    ``convention="paper"`` (CQ paper Sec. 3.4, App. B):
    :math:`A_{IQ}=\frac d{4ns^2}`, :math:`A_{CQ}=\frac d{4n^2s^2}` — reproduces 0.23 / 0.03 / 7.29.
    ``convention="rigorous"`` (range :math:`[-\|x\|,\|x\|]`; our derivation from CQ paper Thm. 1's proof):
    :math:`A_{IQ}=\frac{d-1}n` (:math:`s=1`, equality) or :math:`\frac d{ns^2}` (:math:`s\ge2`),
    :math:`A_{CQ}=\frac d{n^2s^2}` (homogeneous inputs). Vectorised over ``n`` and ``d`` (broadcast).
    """
    check_choice("kind", kind, "quantizer_ab_constants", ("iq", "cq"))
    check_choice("convention", convention, "quantizer_ab_constants", ("paper", "rigorous"))
    s = check_int("levels", levels, "quantizer_ab_constants")
    n_a, d_a = _as_array(n), _as_array(d)
    if np.any(n_a < 1) or np.any(d_a < 1):
        raise ConfigError("quantizer_ab_constants needs n >= 1 and d >= 1.")
    if convention == "paper":
        A = d_a / (4.0 * n_a * s * s) if kind == "iq" else d_a / (4.0 * n_a * n_a * s * s)
    elif kind == "iq":
        A = (d_a - 1.0) / n_a if s == 1 else d_a / (n_a * s * s)
    else:
        A = d_a / (n_a * n_a * s * s)
    return A


def quantizer_bits(d: Any, *, levels: int = 1) -> np.ndarray:
    r"""Bits of one IQ/CQ message: :math:`32+d\lceil\log_2(s+1)\rceil` (:math:`s=1`: :math:`d+32`,
    CQ paper App. B.1, Table 4). Unpadded, as in the paper's accounting."""
    s = check_int("levels", levels, "quantizer_bits")
    return 32.0 + _as_array(d) * math.ceil(math.log2(s + 1))


def permk_cq_constants(n: int, d: int, blocks: int) -> dict[str, float]:
    r"""PermK+CQ (CQ paper Alg. 3, Cor. 3; constants derived by us).

    With :math:`b` blocks, :math:`b\mid n`, :math:`b\mid d`, :math:`q=n/b` (block range):

    .. math:: A=\frac{n-q}{q(n-1)}+\frac{d-b}n,\qquad B=\frac{n-q}{q(n-1)},

    bits per client :math:`d/b+32`, homogeneous MSE bound :math:`\frac{d\,b}{n^2}\|x\|^2` (``mse_factor``).
    :math:`b=1` gives CQ :math:`(\frac{d-1}n,0)`; :math:`b=n` gives PermK∘IQ :math:`(\frac dn,1)`.
    The paper's printed variance factor is **[not recovered]**; these constants are derived.
    """
    owner = "permk_cq_constants"
    n = check_int("n", n, owner)
    d = check_int("d", d, owner)
    b = check_int("blocks", blocks, owner, high=min(n, d), hint=" Use 1 <= blocks <= min(n, d).")
    if n % b or d % b:
        raise ConfigError(
            f"{owner}: the closed-form AB constants need blocks to divide n and d; got n={n}, d={d}, "
            f"blocks={b}. Choose blocks among the common divisors of n and d."
        )
    q = n // b
    sampling = 0.0 if n == 1 else (n - q) / (q * (n - 1))
    return {"A": sampling + (d - b) / n, "B": sampling, "bits": d / b + 32.0, "mse_factor": d * b / n**2}
