"""FCC: fast compressed communication, R rounds of compressing the residual (NEOLITHIC talk)."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._rng import derive_seed
from commpress.compressors._blocks import check_bool
from commpress.compressors._checks import check_int
from commpress.compressors._nested import check_finite, decode_context, piece_widths, resolve, spec_of, with_seed
from commpress.compressors.base import Compressor, CompressorTheory, Context
from commpress.compressors.registry import register
from commpress.errors import ConfigError, PayloadError

_UNBIASED = ("unbiased", "correlated")


@register("fcc")
class FCC(Compressor):
    r"""FCC: R rounds of compressing what is still missing, all rounds sent.

    With :math:`v^{(0)} = 0`, for :math:`r = 0..R-1`:

    .. math:: c^{(r)} = s\,\mathcal C^{(r)}(x - v^{(r)}), \qquad v^{(r+1)} = v^{(r)} + c^{(r)},
              \qquad \hat x = v^{(R)} = \sum_r c^{(r)},

    round r using the inner compressor with the fresh seed ``derive_seed(seed, "fcc", r)``. The
    client knows each :math:`c^{(r)}` exactly as the server will decode it. The scale is
    :math:`s = 1/(1+\omega)` for an unbiased inner (``unbiased_scaling=True``, the default, which
    makes it contractive with :math:`\delta = 1/(1+\omega)`) and 1 otherwise.

    Class (Lemma 1): inner :math:`\in\mathbb B(\delta) \Rightarrow` FCC :math:`\in\mathbb B(1-(1-\delta)^R)`.
    Unscaled unbiased inner: unbiased with error :math:`\le \omega^R\|x\|^2`. Exact cases: RandK
    contractive :math:`(1-k/d)^R\|x\|^2`; TopK: the sum of the d - Rk smallest :math:`x_j^2`.
    Payload per client: the R inner payloads, concatenated (each splits off by its own header
    and layout).

    Args:
        inner: the compressor of every round (name, instance or ``{"name": ..., **params}``);
            default ``"topk"`` (TopK with its default k).
        rounds: R >= 1 (default 2, as in the talk's experiments; R = 1 is plain compression).
        unbiased_scaling: scale an unbiased inner by 1/(1+ω) (default True).

    References:
        Huang, Chen, Yin, Yuan, Lower bounds and nearly optimal algorithms in distributed
        learning with communication compression, NeurIPS 2022 (talk: Algorithm "FCC", Lemma 1).
    """

    def __init__(self, inner: Any = "topk", rounds: int = 2, unbiased_scaling: bool = True) -> None:
        self.inner = resolve(inner, "FCC", "inner")
        self.rounds = check_int("rounds", rounds, "FCC", hint=" rounds is R, the number of compressions per call.")
        self.unbiased_scaling = check_bool("unbiased_scaling", unbiased_scaling, "FCC")
        self.correlated = bool(self.inner.correlated)
        self.deterministic = bool(self.inner.deterministic)

    def params(self) -> dict:
        return {"inner": spec_of(self.inner), "rounds": self.rounds, "unbiased_scaling": self.unbiased_scaling}

    def _scale(self, n: int, d: int) -> float:
        if not self.unbiased_scaling:
            return 1.0
        t = self.inner.theory(n, d)
        if t.kind not in _UNBIASED:
            return 1.0
        if t.omega is None or not math.isfinite(t.omega):
            raise ConfigError(
                f"FCC cannot scale its unbiased inner {self.inner!r} by 1/(1+omega): omega={t.omega} at n={n}, "
                f"d={d}. Use an inner with a finite omega, or unbiased_scaling=False."
            )
        return 1.0 / (1.0 + t.omega)

    def _seeds(self, seed: int) -> list[int]:
        return [derive_seed(seed, "fcc", r) for r in range(self.rounds)]

    def _run(self, X: torch.Tensor, ctx: Context, encode: bool):
        s = self._scale(ctx.n, ctx.d)
        v = None
        bits = torch.zeros(ctx.rows, dtype=torch.int64)
        pieces: list[list[bytes]] = []
        for r, seed_r in enumerate(self._seeds(ctx.seed)):
            residual = X if v is None else X - v
            if encode:
                pieces.append(self.inner.encode(residual, seed_r, clients=ctx.clients, n=ctx.n))
                if r == self.rounds - 1:
                    break
            c, b = self.inner.apply(residual, seed_r, clients=ctx.clients, n=ctx.n)
            bits += b
            if s != 1.0:
                c = c * s
            v = c if v is None else v + c
        return v, bits, pieces

    def apply(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None):
        ctx = self._context(X, seed, clients, n)
        v, bits, _ = self._run(X, ctx, encode=False)
        return v, bits

    def encode(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None) -> list[bytes]:
        ctx = self._context(X, seed, clients, n)
        _, _, pieces = self._run(X, ctx, encode=True)
        return [b"".join(row) for row in zip(*pieces)]

    def _split(self, blobs: list[bytes], offsets: list[int], ctx: Context) -> list[list[int]]:
        """Start offsets of every round's piece per round, plus the end: ``R + 1`` lists."""
        bounds = [list(offsets)]
        for seed_r in self._seeds(ctx.seed):
            widths = piece_widths(self.inner, blobs, bounds[-1], with_seed(ctx, seed_r))
            bounds.append([o + w for o, w in zip(bounds[-1], widths)])
        return bounds

    def _piece_widths(self, blobs: list[bytes], offsets: list[int], ctx: Context) -> list[int]:
        bounds = self._split(blobs, offsets, ctx)
        return [e - o for o, e in zip(offsets, bounds[-1])]

    def decode(self, payloads: list[bytes], seed: int, d: int, *, clients: Any = None, n: int | None = None,
               dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        ctx = decode_context(self, payloads, seed, d, clients, n, dtype, device)
        s = self._scale(ctx.n, ctx.d)
        bounds = self._split(list(payloads), [0] * ctx.rows, ctx)
        for r, (p, end) in enumerate(zip(payloads, bounds[-1])):
            if end != len(p):
                raise PayloadError(
                    f"{self.name}: payload of row {r} has {len(p)} bytes but its {self.rounds} rounds take {end}; "
                    "it is truncated, over-long or not a message of this compressor/seed/d."
                )
        v = None
        for r, seed_r in enumerate(self._seeds(ctx.seed)):
            pieces = [p[a:b] for p, a, b in zip(payloads, bounds[r], bounds[r + 1])]
            c = self.inner.decode(pieces, seed_r, d, clients=ctx.clients, n=ctx.n, dtype=dtype, device=device)
            if s != 1.0:
                c = c * s
            v = c if v is None else v + c
        return check_finite(self, v, dtype)

    def _check_shape(self, ctx: Context) -> None:
        self.inner.check_shape(ctx)

    def theory(self, n: int, d: int) -> CompressorTheory:
        t = self.inner.theory(n, d)
        R = self.rounds
        extras: dict = {"rounds": R, "inner_kind": t.kind,
                        "bits_data_dependent": bool(t.extras.get("bits_data_dependent"))}
        bits = R * t.bits
        for key in ("exact_unbiased", "omega_is_bound", "delta_is_bound"):  # limit-only claims carry over
            if t.extras.get(key) is False:
                extras[key] = False
        if t.kind in _UNBIASED and t.omega is not None:
            if self.unbiased_scaling:
                delta_in = 1.0 / (1.0 + t.omega)
                extras["scale"] = delta_in
                if t.extras.get("omega_is_bound") is False:
                    extras["delta_is_bound"] = False  # delta = 1/(1+omega) is no bound either
            else:
                omega = t.omega**R
                if self.correlated or t.kind == "correlated":
                    A = omega
                else:
                    A = omega / n
                return CompressorTheory(t.kind, omega=omega, delta=None, A=A, B=0.0, bits=bits, extras=extras)
        elif t.kind == "contractive" and t.delta is not None:
            delta_in = t.delta
        else:
            extras["note"] = "the inner compressor has no contraction constant"
            return CompressorTheory("biased", omega=None, delta=None, A=None, B=None, bits=bits, extras=extras)
        extras["delta_inner"] = delta_in
        return CompressorTheory("contractive", omega=None, delta=1.0 - (1.0 - delta_in) ** R, A=None, B=None,
                                bits=bits, extras=extras)
