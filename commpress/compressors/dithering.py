"""Random (standard) dithering with s levels in the l_p norm (Alistarh et al. 2017; Panferov et al. 2024, Def. 2)."""

from __future__ import annotations

import math

from commpress.compressors._dither_base import NormDither
from commpress.compressors.base import CompressorTheory
from commpress.compressors.registry import register


def dithering_omega(d: int, s: int, p: float) -> tuple[float, float]:
    """(omega, general bound) of random dithering at dimension d.

    The bound is :math:`\\min(d^{2/r}/(4s^2), d^{1/r}/s)`, :math:`r = \\min(p, 2)` (from the exact error,
    :math:`\\phi(t) \\le \\min(1/4, t)`). ``omega`` is the exact supremum where it is known, which is
    smaller: for s = 1 the error is
    :math:`\\|x\\|_p\\|x\\|_1 - \\|x\\|^2`, whose sup over x is :math:`d^{1/p} - 1` for p <= 2 (all-ones vector)
    and :math:`(\\sqrt d - 1)/2` for p = inf (TernGrad's case); otherwise the bound.
    """
    r = min(p, 2.0)
    bound = min(d ** (2.0 / r) / (4.0 * s * s), d ** (1.0 / r) / s)
    if s == 1 and p <= 2:
        return d ** (1.0 / p) - 1.0, bound
    if s == 1 and math.isinf(p):
        return (math.sqrt(d) - 1.0) / 2.0, bound
    return bound, bound


@register("dithering")
class Dithering(NormDither):
    r"""Random dithering: stochastic rounding of :math:`|x_j|/\|x\|_p` onto the grid :math:`\{0, 1/s, \dots, 1\}`.

    With :math:`y_j = |x_j| / \|x\|_p` and private :math:`\xi_j \sim U[0, 1)`:

    .. math:: \alpha_j = \lfloor s y_j \rfloor + \mathbf 1\{\xi_j < s y_j - \lfloor s y_j \rfloor\},
              \qquad \mathcal C(x)_j = \|x\|_p \operatorname{sign}(x_j)\, \alpha_j / s .

    Class: unbiased, exact error :math:`e(x) = \frac{\|x\|_p^2}{s^2}\sum_j \phi(s y_j)`,
    :math:`\phi(t) = \operatorname{frac}(t)(1 - \operatorname{frac}(t))`, hence
    :math:`\omega \le \min(d^{2/r}/(4s^2), d^{1/r}/s)`, :math:`r = \min(p, 2)`; reported ``omega`` is the exact
    supremum where known (s = 1: :math:`d^{1/p} - 1` for p <= 2, :math:`(\sqrt d - 1)/2` for p = inf), else
    that bound (``extras["omega_bound"]``); for p = 2 QSGD's :math:`\min(d/s^2, \sqrt d/s)` is
    ``extras["omega_paper"]`` (and ``A_paper`` = omega_paper/n). Independent clients: AB(omega/n, 0).

    Payload per client: a float32 norm (rounded upward, so that every :math:`y_j \le 1`), d sign bits
    (1 = negative) and d level codes of :math:`\lceil\log_2(s+1)\rceil` bits: :math:`32 + d(1 + \lceil\log_2(s+1)\rceil)`.
    With ``elias=True``, QSGD's variable-length format instead: the norm, :math:`\omega(\|\alpha\|_0 + 1)`,
    then per nonzero level :math:`\omega(\text{gap})`, a sign bit and :math:`\omega(\alpha_j)` (Elias-omega codes,
    :mod:`commpress.wire.elias`); ``apply`` reports its exact length.
    Randomness: private, tag ``"<name>/u"``, one uniform per coordinate drawn as an (n, d) matrix.
    Edge cases: x = 0 -> 0; d = 1 -> exact, and for p = inf the largest coordinate is exact, whenever
    the norm is a float32 (otherwise unbiased around it: the header is rounded up).

    Args:
        p: the norm, ``p >= 1`` or ``"inf"`` (default 2).
        s: number of nonzero levels, ``s >= 1`` (default 1).
        elias: QSGD's Elias-omega encoding instead of fixed-width codes (default False).

    References:
        Alistarh, Grubic, Li, Tomioka, Vojnovic, QSGD, NeurIPS 2017 (Lemma 3.1, Sec. 3.2); Horváth et al.,
        VR-DIANA poster, Example 1; Panferov et al. 2024, Def. 2.
    """

    def __init__(self, p: float | str = 2, s: int = 1, elias: bool = False) -> None:
        super().__init__(p=p, s=s, elias=elias)

    def params(self) -> dict:
        return {"p": "inf" if math.isinf(self.p) else self.p, "s": self.s, "elias": self.elias}

    def theory(self, n: int, d: int) -> CompressorTheory:
        omega, bound = dithering_omega(d, self.s, self.p)
        bits, bit_extras = self._expected_bits(d)
        extras = {"omega_bound": bound, "independent": True, **bit_extras}
        if self.p == 2:  # QSGD Lemma 3.1's value, for reproductions (theory's "paper" convention)
            extras["omega_paper"] = min(d / self.s**2, math.sqrt(d) / self.s)
            extras["A_paper"] = extras["omega_paper"] / n
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=bits, extras=extras)
