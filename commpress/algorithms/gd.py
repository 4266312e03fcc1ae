"""GD / DGD: distributed gradient descent (DCGD with the uncompressed float32 wire)."""

from __future__ import annotations

from typing import Any

from commpress.algorithms.dcgd import DCGD
from commpress.algorithms.registry import register


@register("gd")
class GD(DCGD):
    r"""Distributed gradient descent (MARINA with p = 1; descent-lemma stepsize 1/L).

    .. math:: x^{k+1} = x^k - \gamma\,\frac1n\sum_{i=1}^n \nabla f_i(x^k)

    Every client sends its gradient densely (32 d bits: float32 values, the "no compression"
    baseline of the papers); this is DCGD with the identity compressor and MARINA with p = 1.
    Default stepsize :math:`\gamma = 1/L_-`.

    References:
        Standard; the denominator of the improvement factors of Panferov et al. 2024 (Table 1).
    """

    uses_compressor = False

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
