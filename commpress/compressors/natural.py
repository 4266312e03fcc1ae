"""Natural compression: unbiased stochastic rounding to a power of two (Horváth et al. 2019)."""

from __future__ import annotations

import torch

from commpress._rng import fused_enabled, fused_map, fused_uniform_map, private_rand, uniform_at
from commpress.compressors import _pow2
from commpress.compressors._range_quantizer import plain, remember
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.errors import InputError, PayloadError
from commpress.wire import UINT, Field

_MIN_EXP = -126  # float32's smallest normal exponent: code 1 is 2^-126
_MAX_ABS = 2.0**127  # code 254 is 2^127; rounding anything larger up would overflow float32


def _code(x, u):
    """The rounded exponent code of every entry (``_pow2.split`` and the rounding, same operations)."""
    a = x.abs()
    if x.dtype == torch.float32:  # grid {0} U {2^j : j >= -126}: code = biased exponent
        field = a.view(torch.int32) >> 23
        low = (field << 23).view(torch.float32)
        t = (a - low) / low.clamp(min=2.0**_MIN_EXP)
        return field + (u < t).to(torch.int32)
    a = a * 2.0**-_MIN_EXP  # exact: the grid's bottom moves to 1; code = biased exponent - 1022
    field = a.view(torch.int64) >> 52
    low = (field << 52).view(torch.float64).floor()
    t = (a - low) / low.clamp(min=1.0)
    return (field - 1022).clamp(min=0) + (u < t).to(torch.int64)


def _signed_value(code, negative, dtype):
    """``_pow2.signed_pow2`` on the bits: +-2^(code - 127), +-0 for code 0 (the sign bit set when
    ``negative``, an int32 0/1: times -1.0, which gives -0.0 too; a bool mask from uint8 signs is
    not vectorized by inductor, 10x slower)."""
    if dtype == torch.float32:
        magnitude = (code.to(torch.int32) << 23).view(torch.float32)
    else:
        code = code.to(torch.int64)
        magnitude = (torch.where(code > 0, code + (_MIN_EXP + 1022), 0) << 52).view(torch.float64)
    return magnitude * (1 - 2 * negative).to(dtype)


# The fused kernels (compiled by commpress._rng.fused_uniform_map / fused_map): the IEEE-754 bit
# manipulations of _pow2.split and _pow2.signed_pow2 with the same operations; one function each.
def _natural_kernel(x, keys, col, out):
    out.copy_(_signed_value(_code(x, uniform_at(keys, col, x.dtype)), (x < 0).to(torch.int32), x.dtype))


def _natural_encode_kernel(x, keys, col, out):
    sign, code = out
    sign.copy_((x < 0).to(torch.int32))  # bool -> uint8 directly is not vectorized by inductor
    code.copy_(_code(x, uniform_at(keys, col, x.dtype)))


def _natural_decode_kernel(code, sign, out):
    out.copy_(_signed_value(code, sign.to(torch.int32), out.dtype))


def _max_abs(X: torch.Tensor) -> float:
    """max |x| without building |X| (two reductions; ``vector_norm(ord=inf)`` is 15x slower on CPU)."""
    return max(float(X.amax()), -float(X.amin()))


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

    def _fusable(self) -> bool:
        return fused_enabled() and plain(self, Natural, ("encode_message", "decode_message", "_encode", "_decode"))

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        if self._fusable() and _max_abs(X) <= _MAX_ABS:
            out = fused_uniform_map(_natural_encode_kernel, X, ctx.seed, "natural/u", ctx.n,
                                    None if ctx.is_full else ctx.clients, (), out_dtype=(torch.uint8, torch.uint8))
            if out is not None:
                return {"sign": out[0].view(torch.bool), "exponent": out[1]}
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

    def _apply_fused(self, X: torch.Tensor, ctx: Context) -> torch.Tensor | None:
        """``decode_message(encode_message(X))`` in one compiled pass (the base class's hook) when
        the compiled switch is on (``COMMPRESS_COMPILE=1`` / :func:`commpress._rng.set_compile`);
        None otherwise, and for inputs the encoder rejects."""
        if not self._fusable() or _max_abs(X) > _MAX_ABS:
            return None  # (the generic path raises for too large an entry)
        return fused_uniform_map(_natural_kernel, X, ctx.seed, "natural/u", ctx.n,
                                 None if ctx.is_full else ctx.clients, ())

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        sign, code = message["sign"], message["exponent"]
        if self._fusable() and sign.dtype in (torch.bool, torch.uint8):
            out = fused_map(_natural_decode_kernel, code.to(ctx.device), sign.to(ctx.device).view(torch.uint8),
                            shape=code.shape, out_dtype=ctx.dtype)
            if out is not None:
                return out
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


remember(Natural, ("encode_message", "decode_message", "_encode", "_decode"))
