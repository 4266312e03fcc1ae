"""TernGrad: ternary stochastic rounding scaled by the max norm (Wen et al., NeurIPS 2017)."""

from __future__ import annotations

import math

import torch

from commpress.compressors._checks import check_choice
from commpress.compressors._dither_base import NormDither
from commpress.compressors.base import CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.errors import PayloadError
from commpress.wire import F32, UINT, Field

#: 3^0 .. 3^4: five trits per byte (base-3 packing, 3^5 = 243 <= 256).
_TRIT_WEIGHTS = torch.tensor([1, 3, 9, 27, 81], dtype=torch.int16)


@register("terngrad")
class TernGrad(NormDither):
    r"""TernGrad: :math:`\mathcal C(x) = s_t \operatorname{sign}(x) \circ b`, :math:`s_t = \|x\|_\infty`,
    :math:`b_j \sim \mathrm{Bernoulli}(|x_j|/s_t)` independent.

    This is random dithering with :math:`p = \infty`, s = 1 (Panferov et al. 2024, Table 2, files it under
    Def. 2):

    .. math:: \mathcal C(x)_j = \|x\|_\infty \operatorname{sign}(x_j)\, \mathbf 1\{\xi_j < |x_j|/\|x\|_\infty\}.

    Class: unbiased, exact error :math:`e(x) = \|x\|_\infty\|x\|_1 - \|x\|^2`, :math:`\omega = (\sqrt d - 1)/2` exactly
    (attained at :math:`x = (1, \varepsilon, \dots, \varepsilon)`, :math:`\varepsilon = 1/(\sqrt d + 1)`; the cruder
    :math:`\sqrt d - 1` is ``extras["omega_loose"]``). Independent clients: AB(omega/n, 0).
    Payload per client: a float32 scale (rounded upward) and per coordinate a sign bit and the
    Bernoulli bit: 32 + 2d bits; with ``packing="base3"`` the trits (0, +, -) are packed five per
    byte: :math:`32 + 8\lceil d/5\rceil` bits. The paper's per-layer scalars and gradient clipping are not
    applied (per-layer scalars = :class:`~commpress.compressors.block.Block` with ``p="inf"``).
    Randomness: private, tag ``"terngrad/u"``, one uniform per coordinate ((n, d) matrix).
    Edge cases: x = 0 -> 0; d = 1 and the largest coordinate are exact whenever :math:`\max_j |x_j|` is a float32.

    Args:
        packing: ``"bits"`` (default: sign bit + Bernoulli bit) or ``"base3"`` (5 trits per byte).

    References:
        Wen, Xu, Yan, Wu, Wang, Chen, Li, TernGrad: Ternary gradients to reduce communication in
        distributed deep learning, NeurIPS 2017.
    """

    def __init__(self, packing: str = "bits") -> None:
        super().__init__(p="inf", s=1)
        self.packing = check_choice("packing", packing, "TernGrad", ("bits", "base3"))

    def params(self) -> dict:
        return {"packing": self.packing}

    # base-3 packing: trit code c = level * (1 + sign) in {0, 1, 2}, five per byte, sum_k c_k 3^k.
    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        if self.packing == "bits":
            return super()._layout(ctx, message)
        return uniform_layout([Field("norm", F32, 32, 1), Field("trits", UINT, 8, math.ceil(ctx.d / 5))], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        message = super()._encode(X, ctx)
        if self.packing == "bits":
            return message
        trit = message["level"].to(torch.int16) * (1 + message["sign"].to(torch.int16))
        groups = math.ceil(ctx.d / 5)
        padded = torch.zeros(ctx.rows, 5 * groups, dtype=torch.int16, device=trit.device)
        padded[:, : ctx.d] = trit
        packed = (padded.view(ctx.rows, groups, 5) * _TRIT_WEIGHTS.to(trit.device)).sum(-1)
        return {"norm": message["norm"], "trits": packed.to(torch.uint8)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        if self.packing == "bits":
            return super()._decode(message, ctx)
        packed = message["trits"].to(device=ctx.device, dtype=torch.int16).unsqueeze(-1)
        trit = torch.remainder(packed // _TRIT_WEIGHTS.to(ctx.device), 3).reshape(ctx.rows, -1)[:, : ctx.d]
        level = (trit > 0).to(torch.uint8)
        sign = trit == 2
        return super()._decode({"norm": message["norm"], "sign": sign, "level": level}, ctx)

    def _check_message(self, message: Message, ctx: Context) -> None:
        if self.packing == "bits":
            return super()._check_message(message, ctx)
        if not bool(torch.isfinite(message["norm"]).all()) or bool((message["norm"] < 0).any()):
            raise PayloadError("terngrad: the scale header is negative, NaN or Inf; the payload is corrupted.")
        if bool((message["trits"] >= 243).any()):
            raise PayloadError("terngrad: a base-3 byte is >= 243 (five trits are < 3^5); the payload is corrupted.")
        groups = message["trits"].shape[1]
        if 5 * groups > ctx.d and groups:
            tail = torch.remainder(message["trits"][:, -1:].to(torch.int16) // _TRIT_WEIGHTS, 3)[:, ctx.d - 5 * (groups - 1):]
            if bool((tail != 0).any()):
                raise PayloadError("terngrad: nonzero padding trits after coordinate d; the payload is corrupted.")

    def theory(self, n: int, d: int) -> CompressorTheory:
        omega = (math.sqrt(d) - 1.0) / 2.0
        bits = self._fixed_bits(d) if self.packing == "bits" else padded_bits(32 + 8 * math.ceil(d / 5))
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=bits,
                                extras={"omega_loose": math.sqrt(d) - 1.0, "independent": True})
