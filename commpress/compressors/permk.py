"""PermK: permutation sparsification (Szlendak, Tyurin, Richtárik 2021)."""

from __future__ import annotations

import torch

from commpress._malloc import empty as _empty
from commpress._rng import shared_generator
from commpress.compressors._blocks import check_bool, group_sizes, group_starts, locate
from commpress.compressors._checks import check_float_bits
from commpress.compressors.base import (
    Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout,
)
from commpress.compressors.registry import register
from commpress.wire.fields import float_field


@register("permk")
class PermK(Compressor):
    r"""Permutation compressor: the clients split the coordinates among themselves.

    All randomness is shared; every coordinate is kept by at least one client and every client
    scales what it keeps so that it is individually unbiased.

    **Case** :math:`d \ge n`. A shared uniform permutation :math:`\pi` of the clients (tag
    ``"permk/clients"``, ``randperm(n)``) gives client i the block :math:`B_{\pi_i}` of a split of
    the coordinates into n consecutive blocks (the first :math:`d \bmod n` of size
    :math:`\lceil d/n\rceil`, the others :math:`\lfloor d/n\rfloor`):

    .. math:: \mathcal C_i(x) = n \sum_{j \in B_{\pi_i}} x_j e_j .

    :math:`e_i(x) = (n-1)\|x\|^2` exactly (:math:`\omega = n-1`), and, each coordinate being
    owned by exactly one uniformly random client, exactly
    :math:`\mathbb E\|\frac1n\sum_i \mathcal C_i(a_i) - \bar a\|^2 = \frac1n\sum_i\|a_i\|^2 - \|\bar a\|^2`:
    AB(1, 1) with equality.

    **Case** :math:`n > d`. :math:`\pi` (same tag) permutes the multiset in which coordinate j
    appears :math:`q_j` times (:math:`q_j = \lceil n/d\rceil` for :math:`j < n \bmod d`, else
    :math:`\lfloor n/d\rfloor`); client i keeps the coordinate :math:`c_i` of slot :math:`\pi_i`:

    .. math:: \mathcal C_i(x) = \frac{n}{q_{c_i}}\, x_{c_i} e_{c_i} .

    :math:`e_i(x) = \sum_j (n/q_j - 1)x_j^2`, :math:`\omega = n/\lfloor n/d\rfloor - 1` (= d - 1 when
    d | n); coordinate j is averaged over a uniform :math:`q_j`-subset of the clients, so exactly
    :math:`\mathrm{MSE} = \sum_j \frac{n-q_j}{q_j(n-1)}\sigma_j^2`,
    :math:`\sigma_j^2 = \frac1n\sum_i a_{ij}^2 - \bar a_j^2`:
    AB(A, A) with :math:`A = \max_j \frac{n-q_j}{q_j(n-1)}` (= (d-1)/(n-1) when d | n).

    In both cases identical inputs are reconstructed exactly in the mean (to float rounding).
    ``shuffle_coordinates=True`` first maps block/slot positions through a shared uniform
    permutation of the coordinates (tag ``"permk/coords"``, ``randperm(d)``, as in the CQ
    paper's reference code); for :math:`d \ge n` it changes no quantity above; for :math:`n > d`
    with :math:`d \nmid n` it averages the :math:`q_j` over coordinates (``theory`` reports that).
    ``scaled=False`` keeps the values without the factor (contractive: :math:`e_i = (1-\frac1n)\|x\|^2`,
    :math:`\delta = 1/n` for :math:`d \ge n`; :math:`\delta = \lfloor n/d\rfloor / n` for n > d, 1/d with shuffling).
    n = 1 and d = 1 are the identity.

    Class: correlated (individually unbiased) when ``scaled``; contractive otherwise.
    Payload per client: the kept values only, ``float_bits`` each (:math:`|B|` values for d >= n, one for
    n > d); the block or slot is derived from the seed (0 bits).

    Args:
        scaled: multiply the kept values by n (resp. n / q_j) to be unbiased (default True).
        shuffle_coordinates: shuffle the coordinates before splitting them (default False).
        float_bits: 32 (default) or 64 bits per kept value.

    References:
        Szlendak, Tyurin, Richtárik, Permutation compressors for provably faster distributed
        nonconvex optimization, ICLR 2022 (PermK for d >= n and n >= d; the
        generalisation to non-divisible sizes is a library choice).
    """

    correlated = True

    def __init__(self, scaled: bool = True, shuffle_coordinates: bool = False, float_bits: int = 32) -> None:
        self.scaled = check_bool("scaled", scaled, "PermK")
        self.shuffle_coordinates = check_bool("shuffle_coordinates", shuffle_coordinates, "PermK")
        self.float_bits = check_float_bits(float_bits, "PermK")

    def params(self) -> dict:
        return {"scaled": self.scaled, "shuffle_coordinates": self.shuffle_coordinates, "float_bits": self.float_bits}

    # ------------------------------------------------------------------ the shared plan
    def _seeded_support(self, ctx: Context) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What every row keeps, from the seed alone: ``(indices, counts, scale)``.

        ``indices`` ``(rows, kmax)`` int64 (entries past a row's count are ``d``, a dummy column),
        ``counts`` ``(rows,)`` int64, ``scale`` ``(rows, 1)`` of ``ctx.dtype``. Also the
        sparsifier protocol of :class:`~commpress.compressors.compose.Compose`.
        """
        cached = getattr(self, "_plan_cache", None)
        if cached is not None and cached[0] is ctx:  # encode, layout and decode of one call share it
            return cached[1]
        plan = self._support(ctx)
        self._plan_cache = (ctx, plan)
        return plan

    def _support(self, ctx: Context) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, d = ctx.n, ctx.d
        perm = torch.randperm(n, generator=shared_generator(ctx.seed, "permk/clients"))
        pos = perm if ctx.is_full else perm[ctx.clients]
        coords_perm = torch.randperm(d, generator=shared_generator(ctx.seed, "permk/coords")) if (
            self.shuffle_coordinates) else None
        if d >= n:
            counts = group_sizes(d, n, pos)
            kmax = -(-d // n)
            cols = torch.arange(kmax)
            idx = group_starts(d, n, pos).unsqueeze(1) + cols
            valid = cols < counts.unsqueeze(1)
            idx = idx.clamp_(max=d - 1)
            if coords_perm is not None:
                idx = coords_perm[idx]
            idx = torch.where(valid, idx, d)
            scale = torch.full((ctx.rows, 1), float(n if self.scaled else 1), dtype=ctx.dtype)
        else:
            slot, _ = locate(pos, n, d)
            idx = (slot if coords_perm is None else coords_perm[slot]).unsqueeze(1)
            counts = torch.ones(ctx.rows, dtype=torch.int64)
            if self.scaled:
                scale = (n / group_sizes(n, d, slot).to(ctx.dtype)).unsqueeze(1)
            else:
                scale = torch.ones(ctx.rows, 1, dtype=ctx.dtype)
        return idx, counts, scale.to(ctx.device)

    def _support_sizes(self, n: int, d: int) -> list[tuple[int, float]]:
        """Distribution of a client's kept count: ``[(count, probability), ...]``."""
        if d < n:
            return [(1, 1.0)]
        q, r = divmod(d, n)
        return [(q + 1, r / n), (q, 1 - r / n)] if r else [(q, 1.0)]

    # ------------------------------------------------------------------ hooks
    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        if ctx.d < ctx.n or ctx.d % ctx.n == 0:
            return uniform_layout([float_field("values", self.float_bits, max(1, ctx.d // ctx.n))], ctx.rows)
        big = self._seeded_support(ctx)[1] > ctx.d // ctx.n
        return [
            ([float_field("values", self.float_bits, ctx.d // ctx.n + 1)], big.nonzero().flatten()),
            ([float_field("values", self.float_bits, ctx.d // ctx.n)], (~big).nonzero().flatten()),
        ]

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        idx, _, _ = self._seeded_support(ctx)
        idx = idx.to(X.device)
        values = X.gather(1, idx.clamp(max=ctx.d - 1)).masked_fill_(idx == ctx.d, 0.0)
        return {"values": values.to(torch.float32 if self.float_bits == 32 else torch.float64)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        idx, _, scale = self._seeded_support(ctx)
        idx = idx.to(ctx.device)
        values = message["values"].to(device=ctx.device, dtype=ctx.dtype)
        if values.shape[1] < idx.shape[1]:  # a decode of only the short rows: pad
            values = torch.nn.functional.pad(values, (0, idx.shape[1] - values.shape[1]))
        values = values[:, : idx.shape[1]] * scale
        dummy = idx == ctx.d  # the slot past a short row's count: send it to the row's first kept
        if bool(dummy.any()):  # coordinate, with that coordinate's value (a duplicate of one value)
            idx = torch.where(dummy, idx[:, :1], idx)
            values = torch.where(dummy, values[:, :1], values)
        return _empty((ctx.rows, ctx.d), ctx.dtype, ctx.device).zero_().scatter_(1, idx, values)

    # ------------------------------------------------------------------ theory
    def theory(self, n: int, d: int) -> CompressorTheory:
        sizes = self._support_sizes(n, d)
        bits = sum(p * padded_bits(self.float_bits * k) for k, p in sizes)
        extras: dict = {"case": "d>=n" if d >= n else "n>d",
                        "bits_per_client": sorted({self.float_bits * k for k, _ in sizes})}
        if d >= n:
            if not self.scaled:
                return CompressorTheory("contractive", omega=None, delta=1.0 / n, A=None, B=None, bits=bits,
                                        extras=extras)
            extras["exact_aggregate"] = "MSE = mean_i ||a_i||^2 - ||mean a||^2"
            return CompressorTheory("correlated", omega=float(n - 1), delta=None, A=1.0, B=1.0, bits=bits,
                                    extras=extras)
        q = group_sizes(n, d).double()
        if not self.scaled:
            delta = 1.0 / d if self.shuffle_coordinates else float(q.min()) / n
            return CompressorTheory("contractive", omega=None, delta=delta, A=None, B=None, bits=bits, extras=extras)
        c = (n - q) / (q * (n - 1))
        if self.shuffle_coordinates:  # the slot multiplicities are averaged over the coordinates
            omega, A = float((n / q).mean()) - 1.0, float(c.mean())
        else:
            omega, A = float((n / q).max()) - 1.0, float(c.max())
        extras["exact_aggregate"] = "MSE = sum_j (n - q_j) / (q_j (n - 1)) sigma_j^2"
        extras["omega_paper"] = float(d - 1)
        extras["A_paper"] = (d - 1) / (n - 1)
        return CompressorTheory("correlated", omega=omega, delta=None, A=A, B=A, bits=bits, extras=extras)
