"""IQ: independent quantization (CQ paper Defs. 5-6, Prop. 3)."""

from __future__ import annotations

import torch

from commpress._rng import private_rand
from commpress.compressors._range_quantizer import RangeQuantizer, plain, remember
from commpress.compressors.base import CompressorTheory, Context
from commpress.compressors.registry import register


@register("iq")
class IQ(RangeQuantizer):
    r"""Independent quantization: each client rounds each coordinate alone onto its range.

    With range :math:`[l_i, r_i] = [-\rho_i, \rho_i]`, :math:`\rho_i = \|x_i\|_2` (float32, rounded up),
    :math:`u_{ij} = (x_{ij} - l_i)/(r_i - l_i)` and a private :math:`U_{ij} \sim U[0,1)`:

    .. math:: Q_i(x_i)_j = l_i + (r_i - l_i)\,\mathbf 1\{U_{ij} < u_{ij}\}        \quad (s = 1)

    and with ``levels`` = s intervals the level :math:`m + \mathbf 1\{U_{ij} < s u_{ij} - m\}`,
    :math:`m = \min(\lfloor s u_{ij}\rfloor, s-1)`, decoded as :math:`l_i + (r_i - l_i)\,\text{level}/s`.

    Class: unbiased, :math:`\omega = d - 1` (s = 1, exact for every x), :math:`\omega \le d/s^2` (s >= 2);
    independent across clients, so AB(omega/n, 0) with equality for s = 1.
    Payload per client: a float32 range header (two for ``range="minmax"``, none for ``"fixed"``)
    and d levels of ceil(log2(s+1)) bits. Randomness: private (tag ``"iq/u"``, drawn as one
    (n, d) matrix in row-major order).

    Args:
        levels: number of intervals s (s = 2^b - 1 for b bits per coordinate).
        range: ``"norm"`` (default, the CQ paper's), ``"minmax"`` or ``"fixed"`` ([low, high], clips).

    References:
        Panferov, Demidovich, Rammal, Richtárik, Correlated Quantization for Faster Nonconvex
        Distributed Optimization, 2024, Defs. 5-6, Prop. 3, Cor. 1.
    """

    def _thresholds(self, ctx: Context) -> torch.Tensor:
        return private_rand(ctx.seed, "iq/u", ctx.n, (ctx.d,), None if ctx.is_full else ctx.clients, dtype=ctx.dtype,
                            device=ctx.device)

    def _fused_thresholds(self, ctx: Context) -> tuple[str, tuple[torch.Tensor, ...]] | None:
        return ("iq/u", ()) if plain(self, IQ, ("_thresholds",)) else None

    def theory(self, n: int, d: int) -> CompressorTheory:
        return self._base_theory(n, d, "unbiased", {"A_paper": d / (4 * n * self.levels**2), "independent": True})


remember(IQ, ("_thresholds",))
