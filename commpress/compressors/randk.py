"""RandK: k uniformly random coordinates per client (poster Example 2; talk Example I)."""

from __future__ import annotations

import math

import torch

from commpress._malloc import empty as _empty
from commpress._rng import private_randperm_topk, private_subset_mask
from commpress.compressors._blocks import hooks_unchanged
from commpress.compressors._checks import check_float_bits
from commpress.compressors._sparse import (
    check_bool, check_k_for_d, check_k_params, index_bits, index_fields, index_message, resolve_k, scatter_kept,
)
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.wire.fields import float_field


@register("randk")
class RandK(Compressor):
    r"""Random-k sparsification: each client keeps k of its d coordinates, drawn without replacement.

    .. math:: \mathcal C(x) = \tfrac{d}{k} \sum_{j \in S} x_j e_j \quad (\texttt{scaled=True}), \qquad
              \mathcal C(x) = \sum_{j \in S} x_j e_j \quad (\texttt{scaled=False}), \qquad |S| = k,

    S a uniformly random k-subset (private to the client). Exactly
    :math:`e(x) = (d/k - 1)\|x\|^2` (scaled) and :math:`(1 - k/d)\|x\|^2` (unscaled).

    Class: scaled -- unbiased, :math:`\omega = d/k - 1`, AB(omega/n, 0) (independent clients);
    unscaled -- contractive, :math:`\delta = k/d` (the talk prints d/k, a typo). k = d is the identity.
    Payload per client: the k kept values in index order (float32, or float64 with
    ``float_bits=64``): 32k bits; with ``send_indices=True`` also the index set, as k indices of
    ceil(log2 d) bits or a d-bit bitmap, whichever is shorter: :math:`32k + \min(k\lceil\log_2 d\rceil, d)`.
    Randomness: S from the private stream (tag ``"randk/subset"``) via
    :func:`commpress._rng.private_randperm_topk` (the k smallest of d private 32-bit keys, see
    :func:`commpress._rng.private_subset_mask`; the decoder regenerates S, so seeded indices cost 0
    bits). Cost: about 1.3-1.6x ``torch.rand(n, d)`` for the subset, plus a gather and a scatter.

    Args:
        k: coordinates kept per client (``1 <= k <= d``, checked per call); or
        ratio: the kept fraction, k = max(1, round(ratio d)) (half up). Default: ratio 0.1.
        scaled: True (default): unbiased, values times d/k; False: contractive.
        send_indices: put the index set on the wire instead of deriving it from the seed.
        float_bits: 32 (default) or 64 bits per value.

    References:
        Stich, Cordonnier, Jaggi, Sparsified SGD with memory, 2018; Beznosikov et al., On Biased
        Compression for Distributed Learning, 2020.
    """

    def __init__(self, k: int | None = None, ratio: float | None = None, scaled: bool = True,
                 send_indices: bool = False, float_bits: int = 32) -> None:
        self.k, self.ratio = check_k_params(k, ratio, "RandK")
        self.scaled = check_bool("scaled", scaled, "RandK")
        self.send_indices = check_bool("send_indices", send_indices, "RandK")
        self.float_bits = check_float_bits(float_bits, "RandK")

    def params(self) -> dict:
        p: dict = {"k": self.k} if self.k is not None else {"ratio": self.ratio}
        return {**p, "scaled": self.scaled, "send_indices": self.send_indices, "float_bits": self.float_bits}

    def k_for(self, d: int) -> int:
        """The k used at dimension d."""
        return resolve_k(self.k, self.ratio, d, 0.1, "half_up")

    # ------------------------------------------------------------------ support
    def _indices(self, ctx: Context) -> torch.Tensor:
        """The kept coordinates of every row, ascending: ``(rows, k)`` int64 on ``ctx.device``.

        Shared by the hooks of one call (encode, layout, decode see the same ``ctx`` object), so
        ``apply`` draws the subset once.
        """
        cached = getattr(self, "_index_cache", None)
        if cached is not None and cached[0] is ctx:
            return cached[1]
        idx = private_randperm_topk(ctx.seed, "randk/subset", ctx.n, ctx.d, self.k_for(ctx.d),
                                    None if ctx.is_full else ctx.clients, ctx.device)
        self._index_cache = (ctx, idx)
        return idx

    def _mask(self, ctx: Context) -> torch.Tensor:
        idx = self._indices(ctx)
        return torch.zeros(ctx.rows, ctx.d, dtype=torch.bool, device=idx.device).scatter_(1, idx, True)

    def _scale(self, d: int) -> float:
        return d / self.k_for(d) if self.scaled else 1.0

    def _seeded_support(self, ctx: Context):
        """Sparsifier protocol of :class:`~commpress.compressors.compose.Compose` (None if indices are sent)."""
        if self.send_indices:
            return None
        k = self.k_for(ctx.d)
        idx = self._indices(ctx)
        counts = torch.full((ctx.rows,), k, dtype=torch.int64)
        scale = torch.full((ctx.rows, 1), self._scale(ctx.d), dtype=ctx.dtype)
        return idx, counts, scale

    def _support_sizes(self, n: int, d: int):
        return None if self.send_indices else [(self.k_for(d), 1.0)]

    # ------------------------------------------------------------------ hooks
    def _check_shape(self, ctx: Context) -> None:
        check_k_for_d(self.k_for(ctx.d), ctx.d, "RandK")

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        k = self.k_for(ctx.d)
        fields = [float_field("values", self.float_bits, k)]
        if self.send_indices:
            fields += index_fields(k, ctx.d)
        return uniform_layout(fields, ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        k = self.k_for(ctx.d)
        idx = self._indices(ctx)
        values = X.gather(1, idx.to(X.device))
        message = {"values": values.to(torch.float32 if self.float_bits == 32 else torch.float64)}
        if self.send_indices:
            message.update(index_message(self._mask(ctx), k, idx))
        return message

    def _apply_fused(self, X: torch.Tensor, ctx: Context) -> torch.Tensor | None:
        """``decode(encode(X))`` from the subset's mask, without its index list: the kept values
        (as sent: float32 unless ``float_bits=64``) times d/k, then the others set to +0; the same
        subset and operations as the message path, so the same bits."""
        if not hooks_unchanged(self, RandK):
            return None
        mask = private_subset_mask(ctx.seed, "randk/subset", ctx.n, ctx.d, self.k_for(ctx.d),
                                   None if ctx.is_full else ctx.clients, ctx.device)
        out = _empty(tuple(X.shape), ctx.dtype, X.device)  # huge pages: cheap first touch
        scale = self._scale(ctx.d)
        if self.float_bits == 32 and X.dtype != torch.float32:  # the wire's float32 rounding
            out.copy_(X.to(torch.float32))
            if not math.isfinite(float(out.sum())):  # overflows float32: the encoder's check decides
                return None
            if scale != 1.0:
                out.mul_(scale)
        elif scale != 1.0:
            torch.mul(X, scale, out=out)
        else:
            out.copy_(X)
        return out.masked_fill_(~mask, 0.0)

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        values = message["values"].to(device=ctx.device, dtype=ctx.dtype)
        scale = self._scale(ctx.d)
        if scale != 1.0:
            values = values * scale
        out = _empty((ctx.rows, ctx.d), ctx.dtype, ctx.device).zero_()  # huge pages: cheap first touch
        if self.send_indices:
            return scatter_kept(out, message, self.k_for(ctx.d), values, self.name)
        return out.scatter_(1, self._indices(ctx).to(ctx.device), values)

    # ------------------------------------------------------------------ theory
    def theory(self, n: int, d: int) -> CompressorTheory:
        k = self.k_for(d)
        info = self.float_bits * k + (index_bits(k, d) if self.send_indices else 0)
        extras = {"k": k}
        if self.scaled:
            omega = d / k - 1
            return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0,
                                    bits=padded_bits(info), extras=extras)
        return CompressorTheory("contractive", omega=None, delta=k / d, A=None, B=None,
                                bits=padded_bits(info), extras=extras)
