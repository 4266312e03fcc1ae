"""Shared machinery of IQ and CQ: stochastic rounding of x_i onto s intervals of a range [l_i, r_i].

Panferov et al. 2024 (the CQ paper), Defs. 5-7: with u = (x - l) / (r - l) in [0, 1], m = min(floor(s u), s - 1),
t = s u - m, client i sends level m + 1{U < t} and the server decodes l + (r - l) * level / s.
IQ draws the threshold U from a private uniform; CQ correlates the thresholds of the clients.
"""

from __future__ import annotations

import math

import torch

from commpress.compressors._checks import check_choice, check_float, check_int
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, f32_up, padded_bits, uniform_layout
from commpress.errors import ConfigError, PayloadError
from commpress.wire import F32, UINT, Field


class RangeQuantizer(Compressor):
    """Base of IQ/CQ: a per-client range header and ceil(log2(s+1))-bit levels."""

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

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        message: Message = {}
        if self.range == "norm":
            message["rho"] = f32_up(torch.linalg.vector_norm(X, dim=1, keepdim=True))
        elif self.range == "minmax":
            message["lo"] = -f32_up(-X.amin(dim=1, keepdim=True))
            message["hi"] = f32_up(X.amax(dim=1, keepdim=True))
        lo, hi = self._bounds(message, ctx)
        span = hi - lo
        # s * u = (x - l) * s / (r - l); a zero-width range (a zero row) maps to level 0, i.e. l = 0.
        scale = torch.where(span > 0, self.levels / torch.where(span > 0, span, 1.0), 0.0)
        su = (X - lo).mul_(scale).clamp_(0.0, self.levels)
        U = self._thresholds(ctx).to(device=X.device, dtype=X.dtype)
        if self.levels == 1:
            message["level"] = U < su
        else:
            m = su.floor().clamp_(max=self.levels - 1)
            up = U < su.sub_(m)
            message["level"] = m.to(torch.uint8 if self.width <= 8 else torch.int64).add_(up)
        return message

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        # In-place arithmetic on one (rows, d) tensor: torch.where / addcmul with (rows, 1) bounds
        # take 5-15x longer on CPU.
        level = message["level"].to(ctx.device)
        if self.levels == 1 and self.range != "norm":  # lo or hi exactly (lo + (hi - lo) may round away from hi)
            lo, hi = self._bounds(message, ctx)
            return torch.where(level.bool(), hi, lo)
        out = level.to(ctx.dtype)
        if self.levels == 1:  # level (2 rho) - rho: -rho or rho exactly (2 rho and 2 rho - rho are exact)
            rho = message["rho"].to(device=ctx.device, dtype=ctx.dtype)
            return out.mul_(2.0 * rho).sub_(rho)
        lo, hi = self._bounds(message, ctx)
        return out.mul_((hi - lo) / self.levels).add_(lo)

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
