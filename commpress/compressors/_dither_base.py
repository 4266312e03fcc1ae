"""Shared machinery of the "norm + sign + level" quantizers (Alistarh et al., QSGD, NeurIPS 2017;
Horváth et al., Natural compression for distributed deep learning, 2019; Wen et al., TernGrad,
NeurIPS 2017; Horváth et al., VR-DIANA, 2019, Examples 1 and 3).

Random dithering, QSGD, natural dithering, TernGrad and block quantization all send, per block
:math:`v` of a row (the whole row unless blocked), a float32 norm :math:`N = \\|v\\|_p` and per
coordinate a sign bit and a level code :math:`\\alpha_j \\in \\{0, \\dots, s\\}`, drawn so that the level
value :math:`l_{\\alpha_j}` is an unbiased stochastic rounding of :math:`y_j = |v_j| / N \\in [0, 1]` between
its two neighbouring levels. The server decodes :math:`N \\operatorname{sign}(v_j)\\, l_{\\alpha_j}`. The
subclasses differ only in the level set (uniform :math:`u/s` or natural :math:`2^{u-s}`), the norm
and the blocking.

Rounding: with :math:`l_k \\le y_j \\le l_{k+1}` and :math:`t = (y_j - l_k)/(l_{k+1} - l_k) \\in [0, 1)`, the code
is :math:`k + \\mathbf 1\\{U_j < t\\}` with one private uniform :math:`U_j` per coordinate (tag
``"<name>/u"``, drawn as one ``(n, d)`` matrix in row-major order).

Header: the norm is rounded *upward* to float32 (and made >= :math:`\\max_j |v_j|`, which it is up
to rounding), so :math:`y_j \\le 1` always holds and unbiasedness is exact for the header that is
sent; a zero block sends 0 and decodes to zeros.

Wire: fixed width (the norms, d sign bits, d codes of ceil(log2(s+1)) bits), or with ``elias=True``
QSGD's variable-length stream (:mod:`commpress.wire.elias`): the norms as float32 bytes, then
omega(nnz + 1) and per nonzero code omega(gap), a sign bit, omega(code). Its layout is one bit
field of the stream's exact length (computed vectorised, so ``apply`` reports exact bits without
building bytes); ``encode``/``decode`` are overridden to build and parse the stream, since its
length is known only by reading it.
"""

from __future__ import annotations

import math

import torch

from commpress._malloc import empty as _empty
from commpress._rng import fused_enabled, fused_map, fused_uniform_map, private_rand, uniform_at
from commpress.compressors._checks import check_int, check_p_norm
from commpress.compressors._range_quantizer import plain, remember
from commpress.compressors.base import (
    Compressor,
    Context,
    Layout,
    Message,
    f32_up,
    padded_bits,
    uniform_layout,
)
from commpress.errors import ConfigError, InputError, PayloadError
from commpress.wire import F32, UINT, Field
from commpress.wire import elias

_F32_MAX = float(torch.finfo(torch.float32).max)


def _small_int_dtype(high: int) -> torch.dtype:
    """The narrowest signed integer dtype holding [-high, high] (fast elementwise work)."""
    if high <= 127:
        return torch.int8
    if high <= 32767:
        return torch.int16
    return torch.int32


def _signed_codes(level: torch.Tensor, sign: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(1 - 2 sign) * level in the narrow integer ``dtype``, without touching the inputs.

    Bool signs and uint8 levels (the ``apply`` path) are reinterpreted, not copied.
    """
    sgn = sign.view(torch.int8) if sign.dtype == torch.bool else sign.to(torch.int8)
    factor = sgn.mul(-2).add_(1)
    if level.dtype == torch.uint8 and dtype == torch.int8:
        codes = level.view(torch.int8)  # levels <= 127 here
    else:
        codes = level.to(dtype)
    return codes * factor


def _dither_kernel(x, keys, col, out, nsafe, norm, s):
    """The fused ``apply`` of the uniform grid (one block per row), compiled by
    :func:`commpress._rng.fused_uniform_map`: ``_encode`` then ``_decode`` with the same float
    operations, ``s`` a ``(1, 1)`` tensor (for s = 1, ``k + 1{U < t}`` with ``y s = y`` is
    ``1{U < y}`` exactly), the signed level in integers as ``_signed_codes`` (so a level 0 of a
    negative entry is +0, not -0)."""
    u = uniform_at(keys, col, x.dtype)
    y = (x.abs() / nsafe) * s
    k = y.trunc()
    level = k.to(torch.int32) + (u < y - k).to(torch.int32)
    signed = level * (1 - 2 * (x < 0).to(torch.int32))
    out.copy_((signed.to(x.dtype) / s) * norm)


def _dither_encode_kernel(x, keys, col, out, nsafe, s):
    """``_encode``'s (sign, level) of the uniform grid, one block per row (see :func:`_dither_kernel`)."""
    sign, level = out
    u = uniform_at(keys, col, x.dtype)
    y = (x.abs() / nsafe) * s
    k = y.trunc()
    level.copy_(k.to(torch.int32) + (u < y - k).to(torch.int32))
    sign.copy_((x < 0).to(torch.int32))  # bool -> uint8 directly is not vectorized by inductor (5x slower)


def _dither_decode_kernel(level, sign, out, norm, s):
    """``_decode`` of the uniform grid, one block per row, for uint8 levels and signs."""
    signed = level.to(torch.int32) * (1 - 2 * sign.to(torch.int32))
    out.copy_((signed.to(out.dtype) / s) * norm)


class NormDither(Compressor):
    """Base of dithering/QSGD/natural dithering/TernGrad/block: see the module docstring.

    Subclasses set the level set by overriding :meth:`_split` and :meth:`_signed_values`
    (the default is the uniform grid :math:`u/s`), and call ``__init__`` with their parameters.
    """

    def __init__(self, *, p: float | str = 2, s: int = 1, block_size: int | None = None,
                 elias: bool = False, max_s: int = 1 << 24) -> None:
        owner = type(self).__name__
        self.p = check_p_norm(p, owner)
        self.s = check_int("s", s, owner, high=max_s, hint=" s is the number of nonzero levels.")
        self.block_size = None if block_size is None else check_int(
            "block_size", block_size, owner, hint=" block_size is the number of coordinates per block (e.g. 512)."
        )
        if not isinstance(elias, bool):
            raise ConfigError(f"{owner} needs elias=True or False; got elias={elias!r}.")
        self.elias = elias
        self.width = self.s.bit_length()  # ceil(log2(s + 1)) bits per level code
        self._code_dtype = torch.uint8 if self.s <= 255 else torch.int32
        self._signed_dtype = _small_int_dtype(self.s)

    # ------------------------------------------------------------------ level set (uniform u/s)
    def _split(self, y: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """For y in [0, 1] (consumed in place): lower code k and t in [0, 1], y = l_k + t (l_{k+1} - l_k).

        ``k`` None means k = 0 everywhere (s = 1: the code is just 1{U < y}, exact also at y = 1).
        """
        if self.s == 1:
            return None, y
        y.mul_(self.s)  # s*y <= s exactly: y <= 1 and s is an integer
        k = y.to(self._code_dtype)  # truncation = floor (y >= 0), straight into the narrow code dtype
        return k, y.frac_()

    def _signed_values(self, level: torch.Tensor, sign: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(1 - 2 sign) l_level as ``dtype``: the decoded row before the norm is applied."""
        values = _signed_codes(level, sign, self._signed_dtype).to(dtype)
        return values if self.s == 1 else values.div_(self.s)

    # ------------------------------------------------------------------ blocks
    def _blocks(self, d: int) -> int:
        return d if self.block_size is None else min(self.block_size, d)

    def _num_blocks(self, d: int) -> int:
        return math.ceil(d / self._blocks(d))

    def _block_norms(self, A: torch.Tensor, signed: bool = False) -> torch.Tensor:
        """Norms of the blocks of A = |X| (rows, d) -> (rows, t), >= each block's max, finite or inf.

        ``signed=True``: A is X itself (the same norms, without building |X|)."""
        rows, d = A.shape
        B = self._blocks(d)
        full = d // B
        parts = []
        if full:
            parts.append(self._norm(A[:, : full * B].reshape(rows, full, B), signed))
        if full * B < d:
            parts.append(self._norm(A[:, full * B :].unsqueeze(1), signed))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _norm(self, A3: torch.Tensor, signed: bool = False) -> torch.Tensor:
        """p-norm over the last axis of A3 (rows, blocks, size), robust to over/underflow; of |A3|
        when ``signed`` (max |a| = |max(max a, -min a)|: two reductions as fast as amax, where
        ``vector_norm(ord=inf)`` is 15x slower on CPU)."""
        amax = torch.maximum(A3.amax(dim=-1), A3.amin(dim=-1).neg()).abs() if signed else A3.amax(dim=-1)
        if math.isinf(self.p):
            return amax
        norm = torch.linalg.vector_norm(A3, ord=self.p, dim=-1)
        info = torch.finfo(A3.dtype)
        tiny = (info.tiny / info.eps) ** (1.0 / self.p)  # below it max^p loses precision
        bad = ~torch.isfinite(norm) | ((amax < tiny) & (amax > 0))
        if bool(bad.any()):  # rare: x^p over/underflowed; rescale by the max
            scale = torch.where(amax > 0, amax, torch.ones_like(amax))
            rescaled = torch.linalg.vector_norm(A3 / scale.unsqueeze(-1), ord=self.p, dim=-1) * scale
            norm = torch.where(bad, rescaled, norm)
        return torch.maximum(norm, amax)

    def _blockwise(self, V: torch.Tensor, per_block: torch.Tensor, op) -> torch.Tensor:
        """``op_(V, per_block)`` in place, ``per_block`` (rows, t) broadcast over each block's coordinates."""
        rows, d = V.shape
        t = per_block.shape[1]
        if t == 1:
            return op(V, per_block)
        B = self._blocks(d)
        full = d // B
        op(V[:, : full * B].view(rows, full, B), per_block[:, :full].unsqueeze(-1))
        if full * B < d:
            op(V[:, full * B :], per_block[:, full:])
        return V

    # ------------------------------------------------------------------ hooks
    def _header_layout(self, ctx: Context) -> list[Field]:
        return [Field("norm", F32, 32, self._num_blocks(ctx.d))]

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        header = self._header_layout(ctx)
        if not self.elias:
            return uniform_layout(
                header + [Field("sign", UINT, 1, ctx.d), Field("level", UINT, self.width, ctx.d)], ctx.rows
            )
        # Elias: a variable-length bit field per row; rows grouped by stream length.
        lengths = elias.stream_length(message["level"])
        layout: Layout = []
        for length in torch.unique(lengths).tolist():
            idx = (lengths == length).nonzero(as_tuple=True)[0]
            layout.append((header + [Field("stream", UINT, 1, int(length))], idx))
        return layout

    def _fusable(self, d: int) -> bool:
        """The compiled kernels serve this call: uniform grid, one block per row, uint8 codes."""
        return (fused_enabled() and not self.elias and self._num_blocks(d) == 1 and self.s <= 255
                and plain(self, NormDither, _FUSED_REPLACES))

    def _s(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return torch.full((1, 1), self.s, dtype=dtype, device=device)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        if self._fusable(ctx.d):
            N = self._block_norms(X, signed=True)  # without building |X|
            if not bool((N > _F32_MAX).any()):
                header = f32_up(N)
                nsafe = torch.where(header > 0, header, torch.ones_like(header)).to(X.dtype)
                out = fused_uniform_map(_dither_encode_kernel, X, ctx.seed, f"{self.name}/u", ctx.n,
                                        None if ctx.is_full else ctx.clients, (nsafe, self._s(X.dtype, X.device)),
                                        out_dtype=(torch.uint8, torch.uint8))
                if out is not None:  # signs as uint8 0/1 viewed as bool: inductor writes bools 10x slower
                    return {"norm": header, "sign": out[0].view(torch.bool), "level": out[1]}
        A = X.abs()
        N = self._block_norms(A)
        if bool((N > _F32_MAX).any()):
            raise InputError(
                f"{self.name}: a block norm exceeds the float32 range ({float(N.max()):.3g} > {_F32_MAX:.3g}); "
                "the norm header is a float32. Rescale the input."
            )
        header = f32_up(N)  # upward: y = |x| / N <= 1 for the header actually sent
        N_safe = torch.where(header > 0, header, torch.ones_like(header)).to(X.dtype)
        y = self._blockwise(A, N_safe, torch.Tensor.div_)  # y <= 1 (|x| <= N, monotone division)
        k, t = self._split(y)
        u = private_rand(ctx.seed, f"{self.name}/u", ctx.n, (ctx.d,), None if ctx.is_full else ctx.clients,
                         dtype=X.dtype, device=X.device)
        up = u < t
        level = up.view(torch.uint8) if k is None else k.add_(up)
        return {"norm": header, "sign": X < 0, "level": level}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        level, sign = message["level"], message["sign"]
        if self._fusable(ctx.d) and level.dtype == torch.uint8 and sign.dtype in (torch.bool, torch.uint8):
            out = fused_map(_dither_decode_kernel, level.to(ctx.device), sign.to(ctx.device).view(torch.uint8),
                            shape=level.shape, out_dtype=ctx.dtype,
                            args=(message["norm"].to(device=ctx.device, dtype=ctx.dtype), self._s(ctx.dtype, ctx.device)))
            if out is not None:
                return out
        values = self._signed_values(message["level"].to(ctx.device), message["sign"].to(ctx.device), ctx.dtype)
        norm = message["norm"].to(device=ctx.device, dtype=ctx.dtype)
        return self._blockwise(values, norm, torch.Tensor.mul_)

    def _apply_fused(self, X: torch.Tensor, ctx: Context) -> torch.Tensor | None:
        """``decode_message(encode_message(X))`` in fewer passes (the base class's hook): one compiled
        pass for the uniform grid with one block per row and fixed-width codes when the compiled
        switch is on (``COMMPRESS_COMPILE=1`` / :func:`commpress._rng.set_compile`), else eager
        torch in place on two buffers (any blocks). None for the Elias format (its layout needs the
        message) and for subclasses that change the encoding."""
        if self.elias or not plain(self, NormDither, _FUSED_REPLACES):
            return None
        if self._fusable(ctx.d):
            N = self._block_norms(X, signed=True)  # without building |X|
            if bool((N > _F32_MAX).any()):
                return None  # the generic path raises
            header = f32_up(N)
            nsafe = torch.where(header > 0, header, torch.ones_like(header)).to(X.dtype)
            out = fused_uniform_map(_dither_kernel, X, ctx.seed, f"{self.name}/u", ctx.n,
                                    None if ctx.is_full else ctx.clients,
                                    (nsafe, header.to(X.dtype), self._s(X.dtype, X.device)))
            if out is not None:
                return out
        # eager: _encode's operations on |x| in place, the levels as floats in the uniforms' buffer,
        # then _decode's: (level / s) * norm, the sign last (negation commutes with both roundings)
        # and + 0.0, which makes the -0.0 of a zero level of a negative entry the +0.0 of _decode
        A = torch.abs(X, out=_empty(X.shape, X.dtype, X.device))
        N = self._block_norms(A)
        if bool((N > _F32_MAX).any()):
            return None  # the generic path raises
        header = f32_up(N)
        N_safe = torch.where(header > 0, header, torch.ones_like(header)).to(X.dtype)
        y = self._blockwise(A, N_safe, torch.Tensor.div_)
        if self.s > 1:
            k = y.mul_(self.s).trunc()
            y.sub_(k)  # frac
        u = private_rand(ctx.seed, f"{self.name}/u", ctx.n, (ctx.d,), None if ctx.is_full else ctx.clients,
                         dtype=X.dtype, device=X.device)
        level = torch.lt(u, y, out=u)
        if self.s > 1:
            level.add_(k).div_(self.s)
        return self._blockwise(level, header.to(X.dtype), torch.Tensor.mul_).copysign_(X).add_(0.0)

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        if bool((message["norm"] < 0).any()):
            raise PayloadError(f"{self.name}: a negative norm header; the payload is corrupted.")
        if bool((message["level"] > self.s).any()):
            raise PayloadError(f"{self.name}: a level code exceeds s={self.s}; the payload is corrupted.")

    # ------------------------------------------------------------------ bits
    def _fixed_bits(self, d: int) -> int:
        return padded_bits(32 * self._num_blocks(d) + d * (1 + self.width))

    def _elias_bits_bounds(self, d: int) -> dict:
        r"""Bit counts of the Elias format: worst case (all d levels nonzero, level s, gaps 1) and
        QSGD's bound on the expected length, :math:`(3 + (3/2 + o(1))\log_2\frac{2(s^2+d)}{s(s+\sqrt d)})
        s(s+\sqrt d) + 32` (Alistarh et al., QSGD, NeurIPS 2017; recalled, not re-read) with the
        o(1) term set to 0."""
        B = self._blocks(d)
        t = self._num_blocks(d)
        s = self.s
        omega_len = lambda v: int(elias.omega_length(torch.tensor([v]))[0])  # noqa: E731
        worst = 32 * t + omega_len(d + 1) + d * (omega_len(1) + 1 + omega_len(s))
        nnz = s * (s + math.sqrt(B))
        paper = t * ((3 + 1.5 * math.log2(max(2 * (s * s + B) / nnz, 1.0))) * nnz + 32)
        return {"bits_worst_case": padded_bits(worst), "bits_paper_bound": padded_bits(paper),
                "bits_fixed_width": self._fixed_bits(d)}

    def _expected_bits(self, d: int) -> tuple[int, dict]:
        """(bits reported by theory, extras about bits)."""
        if not self.elias:
            return self._fixed_bits(d), {}
        info = self._elias_bits_bounds(d)
        info["bits_note"] = ("Elias stream: length is data-dependent (apply reports it exactly); theory bits = "
                             "min(QSGD's expected-length bound with o(1)=0 [recalled], worst case).")
        info["bits_exact"] = False
        info["bits_data_dependent"] = True
        return min(info["bits_paper_bound"], info["bits_worst_case"]), info

    # ------------------------------------------------------------------ Elias wire path
    def encode(self, X: torch.Tensor, seed: int, *, clients=None, n: int | None = None) -> list[bytes]:
        if not self.elias:
            return super().encode(X, seed, clients=clients, n=n)
        ctx = self._context(X, seed, clients, n)
        message = self.encode_message(X, ctx)
        norms = message["norm"].to(torch.float32).cpu().contiguous()
        streams = elias.encode_stream(message["sign"].cpu(), message["level"].cpu())
        # The norms are byte-aligned float32 (little-endian), then the stream: bits already MSB-first.
        return [norms[r].numpy().tobytes() + elias.pack_bits(streams[r]) for r in range(ctx.rows)]

    def decode(self, payloads: list[bytes], seed: int, d: int, *, clients=None, n: int | None = None,
               dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        if not self.elias:
            return super().decode(payloads, seed, d, clients=clients, n=n, dtype=dtype, device=device)
        ctx = self._decode_context(payloads, seed, d, clients, n, dtype, device)
        d, rows = ctx.d, ctx.rows
        t = self._num_blocks(d)
        head = 4 * t
        norms = torch.zeros(rows, t, dtype=torch.float32)
        signs = torch.zeros(rows, d, dtype=torch.bool)
        levels = torch.zeros(rows, d, dtype=self._code_dtype)
        for r, payload in enumerate(payloads):
            if len(payload) < head + 1:
                raise PayloadError(
                    f"{self.name}: payload of row {r} has {len(payload)} bytes, fewer than the {head}-byte "
                    "norm header and a stream; it is truncated."
                )
            norms[r] = torch.frombuffer(bytearray(payload[:head]), dtype=torch.float32)
            where, sign, level = elias.decode_stream(bytes(payload[head:]), d, self.s, what=f"{self.name} row {r}")
            signs[r, where] = sign.bool()
            levels[r, where] = level.to(self._code_dtype)  # 1 <= level <= s, checked by the stream parser
        message = {"norm": norms, "sign": signs, "level": levels}
        self.check_message(message, ctx)  # finite, non-negative norms
        return self.decode_message(message, ctx)  # finite: |values| <= norm <= float32 max


#: The methods the fused paths stand for: a subclass or a patch that changes one turns them off.
_FUSED_REPLACES = ("encode_message", "decode_message", "_encode", "_decode", "_split", "_signed_values",
                   "_block_norms", "_norm", "_blockwise")
remember(NormDither, _FUSED_REPLACES)
