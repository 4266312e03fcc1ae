"""Natural compression: unbiased stochastic rounding to a power of two (Horváth et al. 2019)."""

from __future__ import annotations

import torch

from commpress._rng import private_rand
from commpress.compressors import _pow2
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.errors import InputError, PayloadError
from commpress.wire import UINT, Field

_MIN_EXP = -126  # float32's smallest normal exponent: code 1 is 2^-126
_MAX_ABS = 2.0**127  # code 254 is 2^127; rounding anything larger up would overflow float32


@register("natural")
class Natural(Compressor):
    r"""Natural compression :math:`\mathcal C_{\text{nat}}`: each coordinate rounded to a neighbouring power of two.

    :math:`\mathcal C_{\text{nat}}(0) = 0`; for :math:`t \ne 0` with :math:`a = \lfloor\log_2|t|\rfloor` and a private
    :math:`\xi \sim U[0,1)`:

    .. math:: \mathcal C_{\text{nat}}(t) = \operatorname{sign}(t)
              \begin{cases} 2^{a+1} & \text{if } \xi < (|t| - 2^a)/2^a \\ 2^a & \text{otherwise.}\end{cases}

    Class: unbiased, exact error :math:`e(x) = \sum_j (2^{a_j+1} - |x_j|)(|x_j| - 2^{a_j})`, at most
    :math:`x_j^2/8` per coordinate (equality at :math:`|x_j| = \tfrac43 2^{a_j}`), so :math:`\omega = 1/8` (the
    supremum). Independent clients: AB(1/(8n), 0).
    Payload per client: 9 bits per coordinate: a sign bit (1 = negative) and the 8-bit float32
    exponent field e of the result (:math:`2^{e-127}`; e = 0 encodes 0). Powers of two are sent exactly.
    Domain: :math:`0 < |t| < 2^{-126}` is rounded between 0 and :math:`2^{-126}` (unbiased, variance
    :math:`|t|(2^{-126} - |t|)`); :math:`|t| > 2^{127}` raises :class:`~commpress.InputError`. float64 inputs
    use the same float32 exponent range.
    Randomness: private, tag ``"natural/u"``, one uniform per coordinate ((n, d) matrix, row-major).

    References:
        Horváth, Ho, Horváth, Sahu, Canini, Richtárik, Natural compression for distributed deep
        learning, 2019/2022.
    """

    def params(self) -> dict:
        return {}

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return uniform_layout([Field("sign", UINT, 1, ctx.d), Field("exponent", UINT, 8, ctx.d)], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        A = X.abs()
        top = float(A.max())
        if top > _MAX_ABS:
            raise InputError(
                f"natural compression handles |x| <= 2^127 (the largest float32 power of two it can send); "
                f"got max |x| = {top:.6g}. Rescale the input."
            )
        if X.dtype == torch.float32:
            code, t = _pow2.split(A, _MIN_EXP)  # float32's own subnormal boundary is 2^-126
        else:
            code, t = _pow2.split(A.mul_(2.0 ** -_MIN_EXP), 0)  # exact scaling: the boundary moves to 1
        u = private_rand(ctx.seed, "natural/u", ctx.n, (ctx.d,), None if ctx.is_full else ctx.clients,
                         dtype=X.dtype, device=X.device)
        code.add_(u < t)
        return {"sign": X < 0, "exponent": code}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        values = _pow2.signed_pow2(message["exponent"].to(ctx.device), message["sign"].to(ctx.device),
                                   _MIN_EXP, ctx.dtype, max_code=254)
        return values.view(ctx.rows, ctx.d)

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        if bool((message["exponent"] > 254).any()):
            raise PayloadError("natural: an exponent field is 255 (inf/NaN in float32); the payload is corrupted.")

    def theory(self, n: int, d: int) -> CompressorTheory:
        return CompressorTheory("unbiased", omega=0.125, delta=None, A=0.125 / n, B=0.0, bits=padded_bits(9 * d),
                                extras={"independent": True})
