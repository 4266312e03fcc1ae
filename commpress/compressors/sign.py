"""Scaled sign (EF-SGD) and plain sign (signSGD) compressors (Karimireddy et al. 2019; Bernstein et al. 2018)."""

from __future__ import annotations

import torch

from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, f32, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.errors import ConfigError, InputError, PayloadError
from commpress.wire import F32, UINT, Field

_F32_MAX = float(torch.finfo(torch.float32).max)


@register("sign")
class Sign(Compressor):
    r"""Scaled sign: :math:`\mathcal C(x) = \frac{\|x\|_1}{d}\operatorname{sign}(x)`, with :math:`\operatorname{sign}(0) := +1`.

    Deterministic and biased. Class: contractive, exact error
    :math:`\|\mathcal C(x) - x\|^2 = \|x\|^2 - \|x\|_1^2/d` (zero coordinates included), so
    :math:`\delta(x) = \|x\|_1^2/(d\|x\|^2) \ge 1/d` and :math:`\delta = 1/d` (attained at a basis vector).
    AB: not applicable (the aggregate is biased).
    Payload per client: the float32 scale :math:`\|x\|_1/d` (rounded to nearest; the error formula
    holds for the scale sent) and d sign bits (1 = negative): 32 + d bits.
    With ``block_size=B``: one scale per block of B consecutive coordinates,
    :math:`\mathcal C(x)_b = \frac{\|x_b\|_1}{|b|}\operatorname{sign}(x_b)` (the last block may be shorter), as
    per-tensor / per-chunk scaled signs are used in practice (1-bit Adam, EF-signSGD implementations): the
    error is the sum of the blocks' errors, so :math:`\delta(x) \ge 1/\min(B, d)`, and at
    :math:`B \ll d` the contraction of a dense gradient is far better than one scale's :math:`\delta(x)`,
    for :math:`32/B` more bits per coordinate. Payload: :math:`32\lceil d/B\rceil + d` bits.
    With ``scaled=False``: plain sign :math:`\operatorname{sign}(x) \in \{\pm1\}^d`, d bits; not scale-equivariant
    and in no class U(omega) or B(delta) (``theory().kind == "biased"``, no constants); used with a
    majority vote, which is outside this framework.
    Edge cases: x = 0 -> 0 (scaled; plain sign gives +1s); d = 1 -> exact up to the float32 scale.

    Args:
        scaled: True (default) for the scaled sign, False for the plain sign.
        block_size: None (default: one scale for the whole vector) or B >= 1 (one scale per block).

    References:
        Karimireddy, Rebjock, Stich, Jaggi, Error feedback fixes SignSGD and other gradient
        compression schemes, ICML 2019; Bernstein, Wang, Azizzadenesheli, Anandkumar, signSGD,
        ICML 2018.
    """

    deterministic = True

    def __init__(self, scaled: bool = True, block_size: int | None = None) -> None:
        if not isinstance(scaled, bool):
            raise ConfigError(f"Sign needs scaled=True (scaled sign) or False (plain sign); got scaled={scaled!r}.")
        if block_size is not None:
            if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
                raise ConfigError(f"Sign needs block_size=None or an integer >= 1; got block_size={block_size!r}.")
            if not scaled:
                raise ConfigError("Sign: block_size applies to the scaled sign (one scale per block); "
                                  "the plain sign has no scale. Drop block_size or use scaled=True.")
        self.scaled = scaled
        self.block_size = block_size

    def params(self) -> dict:
        return {"scaled": self.scaled, "block_size": self.block_size}

    def _blocks(self, d: int) -> int:
        return 1 if self.block_size is None else -(-d // self.block_size)

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        header = [Field("scale", F32, 32, self._blocks(ctx.d))] if self.scaled else []
        return uniform_layout(header + [Field("sign", UINT, 1, ctx.d)], ctx.rows)

    def _block_scales(self, X: torch.Tensor, d: int) -> torch.Tensor:
        """``(rows, blocks)``: the mean absolute value of each block."""
        B = d if self.block_size is None else self.block_size
        blocks = self._blocks(d)
        absolute = torch.nn.functional.pad(X.abs(), (0, blocks * B - d)).view(X.shape[0], blocks, B)
        sizes = torch.full((blocks,), float(B), dtype=X.dtype, device=X.device)
        sizes[-1] = d - (blocks - 1) * B
        return absolute.sum(dim=2) / sizes

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        message: Message = {"sign": X < 0}
        if self.scaled:
            scale = self._block_scales(X, ctx.d)
            if bool((scale > _F32_MAX).any()):
                raise InputError(
                    f"sign: the scale ||x||_1/d = {float(scale.max()):.3g} exceeds the float32 range of its header; "
                    "rescale the input."
                )
            message["scale"] = f32(scale)
        return message

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        # bit b (1 = negative) -> scale (1 - 2 b) as b (-2 scale) + scale: one conversion and two
        # in-place passes, exact (-2 scale and -2 scale + scale are exact in floating point)
        sign = message["sign"].to(ctx.device)
        values = (sign.view(torch.uint8) if sign.dtype == torch.bool else sign).to(ctx.dtype)
        if not self.scaled:
            return values.mul_(-2.0).add_(1.0)
        scale = message["scale"].to(device=ctx.device, dtype=ctx.dtype)
        if self.block_size is not None and scale.shape[1] > 1:  # one scale per block, spread over its entries
            scale = scale.repeat_interleave(self.block_size, dim=1)[:, : ctx.d]
        return values.mul_(-2.0 * scale).add_(scale)

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        if self.scaled and bool((message["scale"] < 0).any()):
            raise PayloadError("sign: a negative scale header; the payload is corrupted.")

    def theory(self, n: int, d: int) -> CompressorTheory:
        if not self.scaled:
            return CompressorTheory("biased", omega=None, delta=None, A=None, B=None, bits=padded_bits(d),
                                    extras={"note": "plain sign: in no class U(omega) or B(delta)"})
        block = d if self.block_size is None else min(self.block_size, d)
        return CompressorTheory("contractive", omega=None, delta=1.0 / block, A=None, B=None,
                                bits=padded_bits(32 * self._blocks(d) + d))
