"""Scaled sign (EF-SGD) and plain sign (signSGD) compressors (Karimireddy et al. 2019; Bernstein et al. 2018)."""

from __future__ import annotations

import torch

from commpress._malloc import empty as _empty
from commpress.compressors._blocks import hooks_unchanged
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, f32, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.errors import ConfigError, InputError, PayloadError
from commpress.wire import F32, UINT, Field

_F32_MAX = float(torch.finfo(torch.float32).max)
#: |x| is formed this many entries at a time by the wire path's encoder (a reused 4-8 MB buffer).
_CHUNK_ELEMENTS = 1 << 20


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
        return self._block_shape(d)[1]

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        header = [Field("scale", F32, 32, self._blocks(ctx.d))] if self.scaled else []
        return uniform_layout(header + [Field("sign", UINT, 1, ctx.d)], ctx.rows)

    def _block_shape(self, d: int) -> tuple[int, int]:
        """``(B, blocks)``: the block length and the number of blocks (the last one may be shorter)."""
        B = d if self.block_size is None else self.block_size
        return B, -(-d // B)

    def _block_scales(self, X: torch.Tensor, d: int, absolute: torch.Tensor | None = None) -> torch.Tensor:
        """``(rows, blocks)``: the mean absolute value of each block.

        ``absolute``: ``|X|`` if the caller already holds it (the fused ``apply`` writes it into its
        output buffer). Otherwise ``|X|`` is formed a few rows at a time in one reused buffer (no
        full-size temporary; every row's sum is the same reduction, so the same bits). A padded
        copy is made only when the last block is shorter.
        """
        B, blocks = self._block_shape(d)
        rows = X.shape[0]
        X = X.contiguous()  # every row summed in memory order, whatever the input's strides
        sizes = torch.full((blocks,), float(B), dtype=X.dtype, device=X.device)
        if blocks * B != d:
            sizes[-1] = d - (blocks - 1) * B
            absolute = torch.nn.functional.pad(X.abs() if absolute is None else absolute, (0, blocks * B - d))
            return absolute.view(rows, blocks, B).sum(dim=2) / sizes
        if absolute is not None:
            return absolute.view(rows, blocks, B).sum(dim=2) / sizes
        # chunks of >= 2 rows (unless X has one): a one-row, one-block sum is a full reduction,
        # which torch may split over threads (another rounding)
        step = max(2, _CHUNK_ELEMENTS // d)
        bounds = list(range(0, rows, step)) + [rows]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]
        if len(bounds) == 2:
            return X.abs().view(rows, blocks, B).sum(dim=2) / sizes
        buffer = torch.empty(max(b - a for a, b in zip(bounds, bounds[1:])), d, dtype=X.dtype, device=X.device)
        sums = torch.empty(rows, blocks, dtype=X.dtype, device=X.device)
        for start, stop in zip(bounds, bounds[1:]):
            part = torch.abs(X[start:stop], out=buffer[: stop - start])
            torch.sum(part.view(stop - start, blocks, B), dim=2, out=sums[start:stop])
        return sums.div_(sizes)

    def _checked_scale(self, scale: torch.Tensor) -> torch.Tensor:
        """The float32 scale header, refusing a scale beyond the float32 range."""
        if bool((scale > _F32_MAX).any()):
            raise InputError(
                f"sign: the scale ||x||_1/d = {float(scale.max()):.3g} exceeds the float32 range of its header; "
                "rescale the input."
            )
        return f32(scale)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        message: Message = {"sign": torch.lt(X, 0, out=_empty(X.shape, torch.bool, X.device))}
        if self.scaled:
            message["scale"] = self._checked_scale(self._block_scales(X, ctx.d))
        return message

    def _apply_fused(self, X: torch.Tensor, ctx: Context) -> torch.Tensor | None:
        """``decode(encode(X))`` in one output buffer: ``|X|`` is written there for the scales, then
        overwritten by the 0/1 sign bits and turned into ``scale (1 - 2 b)`` in place, by the same
        operations as :meth:`_decode` (so the same bits). Padded last blocks take the generic path."""
        if not hooks_unchanged(self, Sign):
            return None
        d, rows = ctx.d, X.shape[0]
        if not self.scaled:
            return torch.lt(X, 0, out=_empty(X.shape, X.dtype, X.device)).mul_(-2.0).add_(1.0)
        B, blocks = self._block_shape(d)
        if blocks * B != d:
            return None
        out = torch.abs(X, out=_empty(X.shape, X.dtype, X.device))  # huge pages: cheap first touch
        scale = self._checked_scale(self._block_scales(X, d, absolute=out)).to(dtype=ctx.dtype)
        torch.lt(X, 0, out=out)
        view = out.view(rows, blocks, B)
        view.mul_((-2.0 * scale).unsqueeze(2)).add_(scale.unsqueeze(2))
        return out

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        # bit b (1 = negative) -> scale (1 - 2 b) as b (-2 scale) + scale: one conversion and two
        # in-place passes, exact (-2 scale and -2 scale + scale are exact in floating point)
        sign = message["sign"].to(ctx.device)
        bits = sign.view(torch.uint8) if sign.dtype == torch.bool else sign
        values = _empty(tuple(bits.shape), ctx.dtype, bits.device).copy_(bits)
        if not self.scaled:
            return values.mul_(-2.0).add_(1.0)
        scale = message["scale"].to(device=ctx.device, dtype=ctx.dtype)
        B, blocks = self._block_shape(ctx.d)
        if blocks > 1 and blocks * B == ctx.d:  # one scale per block, broadcast over a (rows, blocks, B) view
            values.view(-1, blocks, B).mul_((-2.0 * scale).unsqueeze(2)).add_(scale.unsqueeze(2))
            return values
        if blocks > 1:  # the last block is shorter: spread the scales over the entries
            scale = scale.repeat_interleave(B, dim=1)[:, : ctx.d]
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
