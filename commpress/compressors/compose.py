"""Composition of two compressors: outer ∘ inner, with independent randomness."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._rng import derive_seed
from commpress.compressors._nested import check_finite, decode_context, piece_widths, resolve, spec_of, with_seed
from commpress.compressors.base import Compressor, CompressorTheory, Context
from commpress.compressors.registry import register

_UNBIASED = ("unbiased", "correlated")


@register("compose")
class Compose(Compressor):
    r"""Composition :math:`\mathcal C = \mathcal C_1 \circ \mathcal C_2` (``outer`` after ``inner``).

    The inner part runs with the round seed ``derive_seed(seed, "compose/inner")``, the outer part
    with ``derive_seed(seed, "compose/outer")``: independent randomness.

    - **Sparsifier inner with seeded support** (an inner that provides ``_seeded_support(ctx)``,
      e.g. :class:`~commpress.compressors.permk.PermK`, or RandK without sent indices): the outer
      acts on the compact vector of the kept values (already scaled, so norms are those of
      :math:`\mathcal C_2(x)`; its dimension is the kept count k), and the server scatters the
      outer's reconstruction back onto the support it re-derives from the seed. The inner's own
      payload was its kept values, which the outer's payload replaces: the payload is the outer's
      (e.g. :math:`\mathcal C_{\text{nat}} \circ` RandK: 9k bits). Rows with different kept counts
      (PermK with :math:`n \nmid d`) are compressed by the outer in one call per count.
    - **General inner**: the outer acts on the inner's reconstruction :math:`\mathcal C_2(x)` (a
      d-vector). The server needs only the outer's payload to rebuild
      :math:`\mathcal C_1(\mathcal C_2(x))`, so that is the whole payload: the inner's payload would
      add nothing the server uses.

    Class: unbiased ∘ unbiased is unbiased with

    .. math:: \omega = (1+\omega_1)(1+\omega_2) - 1, \qquad
              \mathbb E\|\mathcal C(x) - x\|^2 = \mathbb E\,e_1(\mathcal C_2(x)) + e_2(x)

    exactly (the cross term vanishes), with :math:`\omega_1` taken at the compact dimension for a
    sparsifier inner. AB for the set: if the outer is unbiased with private randomness and the
    inner satisfies AB(A_2, B_2), then AB(A_2 + ω_1(1+ω_2)/n, B_2) (e.g. PermK then IQ on the block:
    AB(1 + ω_1, 1), Szlendak et al. 2022, Sec. 2.4); otherwise AB(ω/n, 0) for independent parts and AB(ω, 0) (Jensen)
    for correlated ones. Any contractive part: no general class (``kind="biased"``); use the
    scaled unbiased compressor (1/(1+ω)) C instead.

    Sparsifier protocol (optional methods of an inner compressor whose kept coordinates are
    derived from the seed and whose payload is exactly the kept values):
    ``_seeded_support(ctx) -> (indices, counts, scale) | None`` with ``indices`` ``(rows, kmax)``
    int64 (``d`` past a row's count), ``counts`` ``(rows,)`` int64 and ``scale`` ``(rows, 1)`` of
    ``ctx.dtype`` (:math:`\mathcal C_2(x)_{\text{indices}} = \text{scale}\cdot x_{\text{indices}}`), and
    ``_support_sizes(n, d) -> [(count, probability), ...] | None`` for ``theory``. ``None`` (e.g.
    indices sent on the wire) selects the general case.

    Args:
        outer: the compressor applied second (name, instance or ``{"name": ..., **params}``);
            default ``"iq"``.
        inner: the compressor applied first; default ``"permk"`` (PermK then 1-bit IQ on each
            client's block, the setting of Szlendak et al. 2022, Sec. 2.4, and of PermK+CQ with b = n).

    References:
        Horváth et al., Natural compression for distributed deep learning, 2019 (composition of
        unbiased compressors); Szlendak, Tyurin, Richtárik, Permutation compressors for provably
        faster distributed nonconvex optimization, ICLR 2022, Sec. 2.4 (PermK followed by a quantizer).
    """

    def __init__(self, outer: Any = "iq", inner: Any = "permk") -> None:
        self.outer = resolve(outer, "Compose", "outer")
        self.inner = resolve(inner, "Compose", "inner")
        self.correlated = bool(self.outer.correlated or self.inner.correlated)
        self.deterministic = bool(self.outer.deterministic and self.inner.deterministic)

    def params(self) -> dict:
        return {"outer": spec_of(self.outer), "inner": spec_of(self.inner)}

    # ------------------------------------------------------------------ plan
    def _parts(self, ctx: Context) -> tuple[Context, int, Any]:
        """(inner's context, outer's seed, compact plan or None)."""
        ctx_in = with_seed(ctx, derive_seed(ctx.seed, "compose/inner"))
        self.inner.check_shape(ctx_in)
        support = getattr(self.inner, "_seeded_support", None)
        plan = support(ctx_in) if support is not None else None
        return ctx_in, derive_seed(ctx.seed, "compose/outer"), plan

    @staticmethod
    def _groups(counts: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        return [(int(k), (counts == k).nonzero().flatten()) for k in counts.unique().tolist()]

    def _check_shape(self, ctx: Context) -> None:
        self.inner.check_shape(with_seed(ctx, derive_seed(ctx.seed, "compose/inner")))

    # ------------------------------------------------------------------ paths
    def apply(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None):
        ctx = self._context(X, seed, clients, n)
        ctx_in, s_out, plan = self._parts(ctx)
        if plan is None:
            Y, _ = self.inner.apply(X, ctx_in.seed, clients=ctx.clients, n=ctx.n)
            return self.outer.apply(Y, s_out, clients=ctx.clients, n=ctx.n)
        idx, counts, scale = plan
        idx = idx.to(X.device)
        values = X.gather(1, idx.clamp(max=ctx.d - 1)).mul_(scale.to(device=X.device, dtype=X.dtype))
        Z = torch.zeros_like(values)
        bits = torch.zeros(ctx.rows, dtype=torch.int64)
        for k, rows in self._groups(counts):
            Z_k, b_k = self.outer.apply(values[rows.to(X.device), :k], s_out, clients=ctx.clients[rows], n=ctx.n)
            Z[rows.to(X.device), :k] = Z_k
            bits[rows] = b_k
        return self._scatter(Z, idx, ctx.d), bits

    def encode(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None) -> list[bytes]:
        ctx = self._context(X, seed, clients, n)
        ctx_in, s_out, plan = self._parts(ctx)
        if plan is None:
            Y, _ = self.inner.apply(X, ctx_in.seed, clients=ctx.clients, n=ctx.n)
            return self.outer.encode(Y, s_out, clients=ctx.clients, n=ctx.n)
        idx, counts, scale = plan
        idx = idx.to(X.device)
        values = X.gather(1, idx.clamp(max=ctx.d - 1)).mul_(scale.to(device=X.device, dtype=X.dtype))
        payloads: list[bytes] = [b""] * ctx.rows
        for k, rows in self._groups(counts):
            parts = self.outer.encode(values[rows.to(X.device), :k], s_out, clients=ctx.clients[rows], n=ctx.n)
            for r, p in zip(rows.tolist(), parts):
                payloads[r] = p
        return payloads

    def decode(self, payloads: list[bytes], seed: int, d: int, *, clients: Any = None, n: int | None = None,
               dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        ctx = decode_context(self, payloads, seed, d, clients, n, dtype, device)
        ctx_in, s_out, plan = self._parts(ctx)
        if plan is None:
            return self.outer.decode(list(payloads), s_out, d, clients=ctx.clients, n=ctx.n, dtype=dtype, device=device)
        idx, counts, _ = plan
        idx = idx.to(ctx.device)
        Z = torch.zeros(ctx.rows, idx.shape[1], dtype=dtype, device=ctx.device)
        for k, rows in self._groups(counts):
            Z[rows.to(ctx.device), :k] = self.outer.decode(
                [payloads[r] for r in rows.tolist()], s_out, k, clients=ctx.clients[rows], n=ctx.n,
                dtype=dtype, device=device)
        return check_finite(self, self._scatter(Z, idx, ctx.d), dtype)

    def _piece_widths(self, blobs: list[bytes], offsets: list[int], ctx: Context) -> list[int]:
        _, s_out, plan = self._parts(ctx)
        if plan is None:
            return piece_widths(self.outer, blobs, offsets, with_seed(ctx, s_out))
        widths = [0] * ctx.rows
        for k, rows in self._groups(plan[1]):
            sub = Context(seed=s_out, n=ctx.n, d=k, clients=ctx.clients[rows], dtype=ctx.dtype, device=ctx.device)
            rl = rows.tolist()
            for r, w in zip(rl, piece_widths(self.outer, [blobs[r] for r in rl], [offsets[r] for r in rl], sub)):
                widths[r] = w
        return widths

    @staticmethod
    def _scatter(Z: torch.Tensor, idx: torch.Tensor, d: int) -> torch.Tensor:
        out = torch.zeros(Z.shape[0], d + 1, dtype=Z.dtype, device=Z.device)
        out.scatter_(1, idx, Z)
        return out[:, :d].contiguous()

    # ------------------------------------------------------------------ theory
    def theory(self, n: int, d: int) -> CompressorTheory:
        t2 = self.inner.theory(n, d)
        sizes_fn = getattr(self.inner, "_support_sizes", None)
        sizes = sizes_fn(n, d) if sizes_fn is not None else None
        if sizes:  # the outer acts on compact vectors of the kept counts
            parts = [(self.outer.theory(n, k), p) for k, p in sizes if p > 0]
            bits = sum(t.bits * p for t, p in parts)
            omegas = [t.omega for t, _ in parts]
            t1 = parts[0][0]
            kinds = {t.kind for t, _ in parts}
            extras = {"compact": True, "kept_counts": sizes}
        else:
            t1 = self.outer.theory(n, d)
            bits, omegas, kinds = t1.bits, [t1.omega], {t1.kind}
            extras = {"compact": False}
        for key in ("bits_data_dependent",):
            if t1.extras.get(key) or t2.extras.get(key):
                extras[key] = True
        for key in ("exact_unbiased", "omega_is_bound"):  # a part's limit-only claim carries over
            if t1.extras.get(key) is False or t2.extras.get(key) is False:
                extras[key] = False
        extras.update(omega_outer=max(omegas) if None not in omegas else None, omega_inner=t2.omega)
        if not (kinds <= set(_UNBIASED) and t2.kind in _UNBIASED and None not in omegas and t2.omega is not None):
            extras["note"] = "no general class for a composition with a contractive or biased part"
            return CompressorTheory("biased", omega=None, delta=None, A=None, B=None, bits=bits, extras=extras)
        w1, w2 = max(omegas), t2.omega
        omega = (1 + w1) * (1 + w2) - 1
        kind = "correlated" if self.correlated or "correlated" in kinds | {t2.kind} else "unbiased"
        if not math.isfinite(omega):
            A, B = math.inf, 0.0
        elif not self.outer.correlated and kinds == {"unbiased"} and t2.A is not None and t2.B is not None:
            A, B = t2.A + w1 * (1 + w2) / n, t2.B
        elif not self.correlated:
            A, B = omega / n, 0.0
        else:
            A, B = omega, 0.0
        return CompressorTheory(kind, omega=omega, delta=None, A=A, B=B, bits=bits, extras=extras)
