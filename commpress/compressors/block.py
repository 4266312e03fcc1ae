"""Block quantization: QSGD with bucketing, one norm per block (Horváth et al., VR-DIANA, 2019, Example 3)."""

from __future__ import annotations

import math

from commpress.compressors._dither_base import NormDither
from commpress.compressors.base import CompressorTheory
from commpress.compressors.dithering import dithering_omega
from commpress.compressors.registry import register


@register("block")
class Block(NormDither):
    r"""Block quantization: random dithering applied to each block with its own norm.

    x is split into :math:`t = \lceil d/B\rceil` contiguous blocks :math:`v_b` = coordinates :math:`[bB, (b+1)B)`
    (the last possibly shorter, sizes :math:`d_b`), and each block is compressed by random dithering
    (Alistarh et al., QSGD, NeurIPS 2017) with its own :math:`\|v_b\|_p`; with the defaults p = 2, s = 1:

    .. math:: \mathcal C(x)_j = \|v_b\|_2 \operatorname{sign}(x_j)\,\mathbf 1\{\xi_j < |x_j|/\|v_b\|_2\},
              \qquad j \in \text{block } b .

    Class: unbiased, exact error (p = 2, s = 1) :math:`e(x) = \sum_b (\|v_b\|\,\|v_b\|_1 - \|v_b\|^2)`, and
    :math:`\omega = \max_b \sqrt{d_b} - 1` (tight; the poster prints :math:`\max_b\sqrt{d_b} + 1`, which is
    ``extras["omega_paper"]``). For other p, s: omega of random dithering at the largest block size.
    Independent clients: AB(omega/n, 0).
    Payload per client: t float32 norms (rounded upward), d sign bits and d level codes of
    :math:`\lceil\log_2(s+1)\rceil` bits: :math:`32t + 2d` bits for s = 1.
    Randomness: private, tag ``"block/u"``, one uniform per coordinate ((n, d) matrix).
    Edge cases: zero blocks decode to zeros; d = 1 -> exact up to the float32 norm.

    Args:
        block_size: B, coordinates per block (default 512, QSGD's bucket size).
        p: the norm of each block, ``p >= 1`` or ``"inf"`` (default 2).
        s: number of nonzero levels (default 1).

    References:
        Horváth, Kovalev, Mishchenko, Richtárik, Stich, VR-DIANA poster, Example 3; Alistarh et al.,
        QSGD, NeurIPS 2017 (bucketing).
    """

    def __init__(self, block_size: int = 512, p: float | str = 2, s: int = 1) -> None:
        super().__init__(p=p, s=s, block_size=block_size)

    def params(self) -> dict:
        return {"block_size": self.block_size, "p": "inf" if math.isinf(self.p) else self.p, "s": self.s}

    def theory(self, n: int, d: int) -> CompressorTheory:
        largest = self._blocks(d)  # min(B, d): the first block is the largest
        omega, bound = dithering_omega(largest, self.s, self.p)
        extras = {"blocks": self._num_blocks(d), "omega_bound": bound, "independent": True}
        if self.p == 2 and self.s == 1:
            extras["omega_paper"] = math.sqrt(largest) + 1.0
            extras["A_paper"] = extras["omega_paper"] / n
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0,
                                bits=self._fixed_bits(d), extras=extras)
