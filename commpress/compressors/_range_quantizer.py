"""Shared machinery of IQ and CQ: stochastic rounding of x_i onto s intervals of a range [l_i, r_i].

Panferov et al. 2024 (the CQ paper), Defs. 5-7: with u = (x - l) / (r - l) in [0, 1], m = min(floor(s u), s - 1),
t = s u - m, client i sends level m + 1{U < t} and the server decodes l + (r - l) * level / s.
IQ draws the threshold U from a private uniform; CQ correlates the thresholds of the clients.
"""

from __future__ import annotations

import math

import torch

from commpress._malloc import empty as _empty
from commpress._rng import fused_enabled, fused_map, fused_uniform_map, uniform_at
from commpress.compressors._checks import check_choice, check_float, check_int
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, f32_up, padded_bits, uniform_layout
from commpress.errors import ConfigError, PayloadError
from commpress.wire import F32, UINT, Field


_ORIGINAL: dict[tuple[type, str], object] = {}


def remember(owner: type, names: tuple[str, ...]) -> None:
    """Record ``owner``'s methods ``names`` as defined at import (for :func:`plain`)."""
    for name in names:
        _ORIGINAL[owner, name] = getattr(owner, name)


def plain(obj: object, owner: type, names: tuple[str, ...]) -> bool:
    """``type(obj)`` has ``owner``'s methods ``names`` as defined at import: not overridden by a
    subclass nor patched since (a fused path replaces exactly those methods, so it may run)."""
    cls = type(obj)
    return all(getattr(cls, name) is _ORIGINAL.get((owner, name)) for name in names)


# The fused apply of the range quantizer (compiled by :func:`commpress._rng.fused_uniform_map`):
# the same float operations in the same order as ``_encode`` then ``_decode``, with the threshold
# of every entry computed in the loop. ``smax`` = s and ``smin1`` = s - 1 come as (1, 1) tensors (one
# kernel for every s; for s = 1 the level m + 1{U < su - m} is 1{U < su} exactly, m = 0), and the
# decode is level * a + b: a = 2 rho, b = -rho for s = 1 with range "norm" (x + (-y) == x - y in
# IEEE arithmetic), a = (hi - lo) / s, b = lo otherwise; "where" kernels pick hi or lo (s = 1,
# ranges "minmax" and "fixed"). CQ's thresholds are frac(((gamma + sigma_i) + h_j) / n), as in
# :func:`~commpress.compressors.cq.stratified_thresholds_`. One function per variant: torch.compile
# caches by code object.
def _level(x, u, lo, scale, smax, smin1):
    su = torch.minimum((x - lo).mul(scale).clamp(min=0.0), smax)
    m = torch.minimum(su.floor(), smin1)
    return m + (u < su - m).to(x.dtype)


def _iq_kernel(x, keys, col, out, lo, scale, a, b, smax, smin1):
    u = uniform_at(keys, col, x.dtype)
    out.copy_(_level(x, u, lo, scale, smax, smin1) * a + b)


def _iq_where_kernel(x, keys, col, out, lo, scale, a, b, smax, smin1):
    u = uniform_at(keys, col, x.dtype)
    out.copy_(torch.where(_level(x, u, lo, scale, smax, smin1) > 0, a, b))


def _cq_kernel(x, keys, col, out, lo, scale, a, b, smax, smin1, sig, h, inv):
    u = torch.frac(((uniform_at(keys, col, x.dtype) + sig) + h) * inv)
    out.copy_(_level(x, u, lo, scale, smax, smin1) * a + b)


def _cq_where_kernel(x, keys, col, out, lo, scale, a, b, smax, smin1, sig, h, inv):
    u = torch.frac(((uniform_at(keys, col, x.dtype) + sig) + h) * inv)
    out.copy_(torch.where(_level(x, u, lo, scale, smax, smin1) > 0, a, b))


def _iq_level_kernel(x, keys, col, out, lo, scale, smax, smin1):
    out.copy_(_level(x, uniform_at(keys, col, x.dtype), lo, scale, smax, smin1))


def _cq_level_kernel(x, keys, col, out, lo, scale, smax, smin1, sig, h, inv):
    u = torch.frac(((uniform_at(keys, col, x.dtype) + sig) + h) * inv)
    out.copy_(_level(x, u, lo, scale, smax, smin1))


def _decode_kernel(level, out, a, b):
    out.copy_(level.to(out.dtype) * a + b)


def _decode_where_kernel(level, out, a, b):
    out.copy_(torch.where(level.to(out.dtype) > 0, a, b))  # a uint8 comparison is not vectorized: 10x slower


_KERNELS = {(False, False): _iq_kernel, (False, True): _iq_where_kernel,
            (True, False): _cq_kernel, (True, True): _cq_where_kernel}


class RangeQuantizer(Compressor):
    """Base of IQ/CQ: a per-client range header and ceil(log2(s+1))-bit levels.

    ``apply`` takes a fused path (:meth:`_apply_fused`): with the compiled switch on
    (``COMMPRESS_COMPILE=1`` / :func:`commpress._rng.set_compile`) one compiled pass per call
    reads x, computes each threshold from its client's key and its column and writes the
    reconstruction; otherwise eager torch in place with fewer temporaries. Both equal
    ``decode_message(encode_message(X))`` bit for bit (tested).
    """

    def __init__(self, levels: int = 1, range: str = "norm", low: float = -1.0, high: float = 1.0) -> None:
        owner = type(self).__name__
        self.levels = check_int("levels", levels, owner, hint=" levels is the number of intervals s; s=1 is 1 bit.")
        self.range = check_choice("range", range, owner, ("norm", "minmax", "fixed"))
        self.low = check_float("low", low, owner)
        self.high = check_float("high", high, owner)
        if self.range == "fixed" and not self.low < self.high:
            raise ConfigError(f"{owner} range='fixed' needs low < high; got low={low}, high={high}.")
        self.width = self.levels.bit_length()

    def params(self) -> dict:
        p = {"levels": self.levels, "range": self.range}
        if self.range == "fixed":
            p.update(low=self.low, high=self.high)
        return p

    # -- thresholds: IQ private, CQ correlated
    def _thresholds(self, ctx: Context) -> torch.Tensor:
        raise NotImplementedError

    def _header(self) -> list[Field]:
        if self.range == "norm":
            return [Field("rho", F32, 32, 1)]
        if self.range == "minmax":
            return [Field("lo", F32, 32, 1), Field("hi", F32, 32, 1)]
        return []

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return uniform_layout(self._header() + [Field("level", UINT, self.width, ctx.d)], ctx.rows)

    def _bounds(self, message: Message, ctx: Context) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, hi) per row as (rows, 1) tensors of ctx.dtype on ctx.device."""
        if self.range == "norm":
            rho = message["rho"].to(device=ctx.device, dtype=ctx.dtype)
            return -rho, rho
        if self.range == "minmax":
            return (message["lo"].to(device=ctx.device, dtype=ctx.dtype),
                    message["hi"].to(device=ctx.device, dtype=ctx.dtype))
        shape = (ctx.rows, 1)
        return (torch.full(shape, self.low, dtype=ctx.dtype, device=ctx.device),
                torch.full(shape, self.high, dtype=ctx.dtype, device=ctx.device))

    def _header_message(self, X: torch.Tensor) -> Message:
        message: Message = {}
        if self.range == "norm":
            message["rho"] = f32_up(torch.linalg.vector_norm(X, dim=1, keepdim=True))
        elif self.range == "minmax":
            message["lo"] = -f32_up(-X.amin(dim=1, keepdim=True))
            message["hi"] = f32_up(X.amax(dim=1, keepdim=True))
        return message

    def _scale(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """s / (hi - lo) per row; 0 for a zero-width range (a zero row maps to level 0, i.e. l = 0)."""
        span = hi - lo
        return torch.where(span > 0, self.levels / torch.where(span > 0, span, 1.0), 0.0)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        message = self._header_message(X)
        lo, hi = self._bounds(message, ctx)
        scale = self._scale(lo, hi)
        level_dtype = torch.bool if self.levels == 1 else torch.uint8 if self.width <= 8 else torch.int64
        if fused_enabled() and (thresholds := self._fused_thresholds(ctx)) is not None:
            tag, extra = thresholds
            level = fused_uniform_map(_cq_level_kernel if extra else _iq_level_kernel, X, ctx.seed, tag, ctx.n,
                                      None if ctx.is_full else ctx.clients, (lo, scale, *self._consts(ctx), *extra),
                                      out_dtype=torch.uint8 if level_dtype == torch.bool else level_dtype)
            if level is not None:  # bool as uint8 0/1: inductor writes bytes 10x faster than bools
                message["level"] = level.view(torch.bool) if level_dtype == torch.bool else level
                return message
        # s * u = (x - l) * s / (r - l)
        su = (X - lo).mul_(scale).clamp_(0.0, self.levels)
        U = self._thresholds(ctx).to(device=X.device, dtype=X.dtype)
        if self.levels == 1:
            message["level"] = U < su
        else:
            m = su.floor().clamp_(max=self.levels - 1)
            up = U < su.sub_(m)
            message["level"] = m.to(level_dtype).add_(up)
        return message

    def _consts(self, ctx: Context) -> tuple[torch.Tensor, torch.Tensor]:
        """s and s - 1 as (1, 1) tensors for the compiled kernels (one kernel for every s)."""
        return (torch.full((1, 1), self.levels, dtype=ctx.dtype, device=ctx.device),
                torch.full((1, 1), self.levels - 1, dtype=ctx.dtype, device=ctx.device))

    def _affine(self, message: Message, ctx: Context) -> tuple[str, torch.Tensor, torch.Tensor]:
        """The decoder as ``(mode, a, b)``: ``"pm"`` level a - b, ``"where"`` a (hi) or b (lo),
        ``"affine"`` level a + b; ``(rows, 1)`` tensors of ``ctx.dtype``."""
        if self.levels == 1 and self.range == "norm":  # level (2 rho) - rho: -rho or rho exactly
            rho = message["rho"].to(device=ctx.device, dtype=ctx.dtype)
            return "pm", 2.0 * rho, rho
        lo, hi = self._bounds(message, ctx)
        if self.levels == 1:  # lo or hi exactly (lo + (hi - lo) may round away from hi)
            return "where", hi, lo
        return "affine", (hi - lo) / self.levels, lo

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        level = message["level"].to(ctx.device)
        mode, a, b = self._affine(message, ctx)
        if fused_enabled() and level.dtype in (torch.bool, torch.uint8):
            level = level.view(torch.uint8)
            out = fused_map(_decode_where_kernel if mode == "where" else _decode_kernel, level, shape=level.shape,
                            out_dtype=ctx.dtype, args=(a, -b if mode == "pm" else b))
            if out is not None:
                return out
        if mode == "where":
            return torch.where(level.bool(), a, b)
        # In-place arithmetic on one (rows, d) tensor: torch.where / addcmul with (rows, 1) bounds
        # take 5-15x longer on CPU.
        out = _empty(level.shape, ctx.dtype, ctx.device).copy_(level)
        return out.mul_(a).sub_(b) if mode == "pm" else out.mul_(a).add_(b)

    # -- fused apply
    def _fused_thresholds(self, ctx: Context) -> tuple[str, tuple[torch.Tensor, ...]] | None:
        """(tag of the private uniforms, extra per-row/per-column tensors of the CQ rule), or None."""
        return None

    def _apply_fused(self, X: torch.Tensor, ctx: Context) -> torch.Tensor | None:
        """``decode_message(encode_message(X))`` in fewer passes (the base class's hook; class docstring)."""
        if not plain(self, RangeQuantizer, _FUSED_REPLACES):
            return None
        thresholds = self._fused_thresholds(ctx)
        if thresholds is None:
            return None
        message = self._header_message(X)
        if not all(bool(torch.isfinite(v).all()) for v in message.values()):
            return None  # the generic path raises the overflow error
        lo, hi = self._bounds(message, ctx)
        scale = self._scale(lo, hi)
        s = self.levels
        mode, a, b = self._affine(message, ctx)
        tag, extra = thresholds
        if fused_enabled():
            out = fused_uniform_map(_KERNELS[bool(extra), mode == "where"], X, ctx.seed, tag, ctx.n,
                                    None if ctx.is_full else ctx.clients,
                                    (lo, scale, a, -b if mode == "pm" else b.clone(), *self._consts(ctx), *extra))
            if out is not None:
                return out
        # eager: the same operations in place on one buffer (no bool or integer level tensors)
        U = self._thresholds(ctx).to(device=X.device, dtype=X.dtype)
        su = torch.sub(X, lo, out=_empty(X.shape, X.dtype, X.device)).mul_(scale).clamp_(0.0, s)
        if mode == "where":
            return torch.where(U < su, a, b)
        if s > 1:
            m = su.floor().clamp_(max=s - 1)
            su.sub_(m)
        level = torch.lt(U, su, out=U)  # 0/1 in U's float storage
        if s > 1:
            level.add_(m)
        return level.mul_(a).sub_(b) if mode == "pm" else level.mul_(a).add_(b)

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        if self.range == "norm" and bool((message["rho"] < 0).any()):
            raise PayloadError(f"{self.name}: negative norm header; the payload is corrupted.")
        if self.range == "minmax" and bool((message["lo"] > message["hi"]).any()):
            raise PayloadError(f"{self.name}: range header with lo > hi; the payload is corrupted.")
        if (1 << self.width) - 1 > self.levels and bool((message["level"] > self.levels).any()):
            raise PayloadError(f"{self.name}: a level exceeds s={self.levels}; the payload is corrupted.")

    # -- theory shared by IQ and CQ (CQ paper Prop. 3, Thm. 1; rigorous constants derived by us)
    def _omega(self, d: int) -> float:
        if self.range != "norm":
            return math.inf  # the range is not tied to ||x||: no scale-invariant omega
        return float(d - 1) if self.levels == 1 else d / self.levels**2

    def _bits_per_client(self, d: int) -> int:
        return padded_bits(32 * len(self._header()) + d * self.width)

    def _base_theory(self, n: int, d: int, kind: str, extras: dict) -> CompressorTheory:
        omega = self._omega(d)
        return CompressorTheory(kind=kind, omega=omega, delta=None, A=omega / n, B=0.0,
                                bits=self._bits_per_client(d), extras=extras)


#: The methods the fused paths stand for: a subclass or a patch that changes one turns them off.
_FUSED_REPLACES = ("encode_message", "decode_message", "_encode", "_decode", "_bounds", "_header_message", "_scale",
                   "_affine")
remember(RangeQuantizer, _FUSED_REPLACES)
