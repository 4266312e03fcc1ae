"""Natural dithering: random dithering on power-of-two levels (Horváth et al. 2019)."""

from __future__ import annotations

import math

import torch

from commpress.compressors import _pow2
from commpress.compressors._dither_base import NormDither
from commpress.compressors.base import CompressorTheory
from commpress.compressors.registry import register


@register("natural_dithering")
class NaturalDithering(NormDither):
    r"""Natural dithering: stochastic rounding of :math:`|x_j|/\|x\|_p` onto :math:`\{0, 2^{1-s}, \dots, \tfrac12, 1\}`.

    Levels :math:`l_0 = 0`, :math:`l_u = 2^{u-s}` (u = 1..s). With :math:`y_j = |x_j|/\|x\|_p \in [l_u, l_{u+1}]`
    and private :math:`\xi_j \sim U[0,1)`:

    .. math:: \mathcal C(x)_j = \|x\|_p \operatorname{sign}(x_j)
              \begin{cases} l_{u+1} & \text{if } \xi_j < (y_j - l_u)/(l_{u+1} - l_u) \\ l_u & \text{otherwise.}\end{cases}

    Class: unbiased, exact error :math:`e(x) = \|x\|_p^2 \sum_j (l_{u_j+1} - y_j)(y_j - l_{u_j})`;
    ``omega`` = the source value :math:`\tfrac18 + d^{1/r} 2^{1-s}\min\{1, d^{1/r}2^{1-s}\}`, :math:`r = \min(p, 2)`
    [recalled; a valid bound: 1/8 from the geometric levels, the rest from the bottom interval].
    Independent clients: AB(omega/n, 0).
    Payload per client: float32 norm (rounded upward), d sign bits, d codes u of
    :math:`\lceil\log_2(s+1)\rceil` bits: :math:`32 + d(1 + \lceil\log_2(s+1)\rceil)` (s = 3: 3 bits per coordinate).
    Randomness: private, tag ``"natural_dithering/u"``, one uniform per coordinate ((n, d) matrix).
    Edge cases: x = 0 -> 0; d = 1 -> exact up to the float32 norm (y = 1 is a level).

    Args:
        p: the norm, ``p >= 1`` or ``"inf"`` (default 2).
        s: number of nonzero levels, ``1 <= s <= 64`` (default 3: levels {0, 1/4, 1/2, 1}).

    References:
        Horváth, Ho, Horváth, Sahu, Canini, Richtárik, Natural compression for distributed deep
        learning, 2019/2022; Panferov et al. 2024, Def. 3.
    """

    def __init__(self, p: float | str = 2, s: int = 3) -> None:
        super().__init__(p=p, s=s, max_s=64)

    def params(self) -> dict:
        return {"p": "inf" if math.isinf(self.p) else self.p, "s": self.s}

    def _split(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # In units of the smallest level (z = y 2^(s-1), exact) the grid is {0, 1, 2, 4, ..., 2^(s-1)}.
        return _pow2.split(y.mul_(2.0 ** (self.s - 1)), 0)

    def _signed_values(self, level: torch.Tensor, sign: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return _pow2.signed_pow2(level, sign, 1 - self.s, dtype, max_code=self.s)  # code u >= 1 -> 2^(u - s)

    def theory(self, n: int, d: int) -> CompressorTheory:
        r = min(self.p, 2.0)
        a = d ** (1.0 / r) * 2.0 ** (1 - self.s)
        omega = 0.125 + a * min(1.0, a)
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0,
                                bits=self._fixed_bits(d), extras={"independent": True})
