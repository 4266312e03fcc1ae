"""Identity: no compression, the dense vector on the wire."""

from __future__ import annotations

import torch

from commpress.compressors._checks import check_float_bits
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.wire.fields import float_field
from commpress.compressors.registry import register


@register("identity")
class Identity(Compressor):
    r"""No compression: the dense vector as float32 (or float64) values, C(x) = x.

    Class: unbiased with :math:`\omega = 0` and contractive with :math:`\delta = 1`; AB(0, 0).
    Payload per client: d floats (32 bits each by default, the CQ paper's "no compression"
    baseline of 32 d bits, Table 4). With ``float_bits=32`` and float64 input the values are
    rounded to float32, in ``apply`` exactly as on the wire.

    Args:
        float_bits: 32 (default) or 64.

    References:
        Panferov, Demidovich, Rammal, Richtárik, Correlated Quantization for Faster Nonconvex
        Distributed Optimization, 2024, Table 4 (the uncompressed baseline).
    """

    summable = True
    deterministic = True

    def __init__(self, float_bits: int = 32) -> None:
        self.float_bits = check_float_bits(float_bits, "Identity")

    def params(self) -> dict:
        return {"float_bits": self.float_bits}

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return uniform_layout([float_field("values", self.float_bits, ctx.d)], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        return {"values": X.to(torch.float32 if self.float_bits == 32 else torch.float64)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        return message["values"].to(device=ctx.device, dtype=ctx.dtype)

    def theory(self, n: int, d: int) -> CompressorTheory:
        return CompressorTheory("unbiased", omega=0.0, delta=1.0, A=0.0, B=0.0, bits=padded_bits(self.float_bits * d))
