"""Shared machinery of the Newton-type methods with compressed Hessians (FedNL family, Newton-3PC).

Client Hessians travel as upper triangles (``(rows, d(d+1)/2)``, :mod:`commpress.compressors.matrix`);
the server keeps the mean estimate as a triangle too. Linear systems are dense solves (O(d^3) per
round, on the server).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms.base import INIT_ROUND, Algorithm, check_positive
from commpress.compressors.base import Compressor, Context, Layout, Message
from commpress.compressors.matrix import MatrixCompressor, frobenius_weights, sym_to_tri, tri_to_sym
from commpress.compressors.matrix import make as make_matrix
from commpress.errors import ConfigError, PayloadError
from commpress.theory.second_order import hessian_learning_rate

OPTIONS = (1, 2)
H0_CHOICES = ("hessian", "zero")


def project_mu(H: torch.Tensor, mu: float) -> torch.Tensor:
    r""":math:`[H]_\mu=\sum_j\max(\lambda_j,\mu)u_ju_j^\top` (Frobenius projection onto :math:`\{M\succeq\mu I\}`)."""
    lam, U = torch.linalg.eigh(H)
    return (U * lam.clamp_min(mu)[None, :]) @ U.T


def frobenius(V: torch.Tensor, d: int) -> torch.Tensor:
    """Frobenius norms of the matrices whose upper triangles are the rows of ``V``: ``(rows,)``."""
    return (V * V * frobenius_weights(d, V.dtype).to(V.device)).sum(-1).sqrt()


class Silent(Compressor):
    """Wraps a compressor so that only the rows with ``mask`` send (the others: an empty payload,
    0 bits, decoded as zeros). The mask is public (drawn from the round's shared stream or chosen
    by the server), so the decoder knows it. For compressors without header fields."""

    def __init__(self, inner: Compressor, mask: torch.Tensor) -> None:
        self.inner, self.mask = inner, mask.to(torch.bool).cpu()
        self.name = inner.name
        self.deterministic = inner.deterministic

    def params(self) -> dict:
        return self.inner.params()

    @staticmethod
    def check_inner(inner: Compressor, n: int, d: int) -> None:
        """Refuse a compressor whose layout needs header fields (an empty payload has none)."""
        ctx = Context(0, n, d, torch.arange(n), torch.float64, torch.device("cpu"))
        if inner.header_fields(ctx):
            raise ConfigError(f"{inner.name}: a compressor with a data-dependent header cannot be used with "
                              "client sampling or lazy aggregation here; use compressor='rank', 'topk' or 'randk'.")

    def _rows_mask(self, ctx: Context) -> torch.Tensor:
        return self.mask[ctx.clients]

    def check_shape(self, ctx: Context) -> None:
        self.inner.check_shape(ctx)

    def layout(self, ctx: Context, message: Message | None) -> Layout:
        m = self._rows_mask(ctx)
        out: Layout = []
        for fields, idx in self.inner.layout(ctx, message):
            keep = idx[m[idx]]
            if keep.numel():
                out.append((fields, keep))
        return out  # the silent rows are in no group: 0 bits, an empty payload

    def encode(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None) -> list[bytes]:
        return [b"" if p is None else p for p in super().encode(X, seed, clients=clients, n=n)]

    def decode(self, payloads: list[bytes], seed: int, d: int, *, clients: Any = None, n: int | None = None,
               dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        ctx = self._decode_context(payloads, seed, d, clients, n, dtype, device)
        m = self._rows_mask(ctx)
        out = torch.zeros(ctx.rows, ctx.d, dtype=dtype, device=ctx.device)
        idx = m.nonzero().flatten()
        bad = [i for i in (~m).nonzero().flatten().tolist() if len(payloads[i])]
        if bad:
            raise PayloadError(f"{self.name}: client {int(ctx.clients[bad[0]])} was not asked to send, yet its "
                               "payload is not empty.")
        if idx.numel():
            out[idx] = self.inner.decode([payloads[i] for i in idx.tolist()], seed, d, clients=ctx.clients[idx],
                                         n=ctx.n, dtype=dtype, device=device)
        return out

    def encode_message(self, X: torch.Tensor, ctx: Context) -> Message:
        return self.inner.encode_message(X, ctx)

    def decode_message(self, message: Message, ctx: Context) -> torch.Tensor:
        out = self.inner.decode_message(message, ctx)
        return out * self._rows_mask(ctx).to(out.device)[:, None].to(out.dtype)

    def check_message(self, message: Message, ctx: Context) -> None:
        self.inner.check_message(message, ctx)

    def theory(self, n: int, d: int):
        return self.inner.theory(n, d)


class NewtonBase(Algorithm):
    """Settings shared by the Newton-type methods: the Hessian compressor (a symmetric-matrix
    compressor of :mod:`commpress.compressors.matrix`), the Hessian learning rate ``alpha``,
    ``option`` 1 (projection) or 2 (shift), ``mu`` and the stepsize ``gamma`` (1: the Newton step)."""

    #: Takes a *matrix* compressor (``compressor="rank"``), not a vector one: the vector registry
    #: names do not apply (see :mod:`commpress.compressors.matrix`).
    uses_compressor = False
    uses_matrix_compressor = True

    def _setup(self, problem, network, compressor, *, gamma, seed, downlink_compressor, alpha, option, mu, h0,
               default_compressor: Any = "rank") -> None:
        Algorithm.__init__(self, problem, network, None, gamma=None, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        if not hasattr(problem, "hessians"):
            raise ConfigError(f"{owner} needs a problem with hessians(x) (logreg, least_squares, the quadratics); "
                              f"{type(problem).__name__} has none.")
        self.hess_compressor: MatrixCompressor = make_matrix(default_compressor if compressor is None else compressor)
        self.compressor = self.hess_compressor
        self.N = self.d * (self.d + 1) // 2
        self.hess_compressor.check_shape(Context(0, self.n, self.N, torch.arange(1), torch.float64, torch.device("cpu")))
        th = self.hess_compressor.theory(self.n, self.N)
        self.alpha = hessian_learning_rate(th.kind, th.delta, th.omega, alpha, owner)
        if option not in OPTIONS:
            raise ConfigError(f"{owner} needs option 1 (projection [H]_mu) or 2 (shift H + l I); got option={option!r}.")
        self.option = option
        if h0 not in H0_CHOICES:
            raise ConfigError(f"{owner} needs h0 in {list(H0_CHOICES)}; got h0={h0!r}.")
        self.h0 = h0
        if mu is None:
            mu = float(problem.smoothness().mu) if option == 1 else 0.0
        self.mu = float(mu)
        if option == 1 and not (self.mu > 0 and math.isfinite(self.mu)):
            raise ConfigError(f"{owner} option 1 needs mu > 0 (the projection [H]_mu); got mu={mu!r}. "
                              "Pass mu=<strong convexity>, e.g. the l2 coefficient, or use option=2.")
        self.gamma = 1.0 if gamma is None else check_positive("gamma", gamma, owner)
        self._clients = None if self.network.is_full else self.network.clients
        self._eye = torch.eye(self.d, dtype=problem.dtype, device=problem.device)

    def _extra_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "option": self.option, "mu": self.mu, "h0": self.h0}

    # ---- oracles of the local clients
    def _grads(self, x: torch.Tensor) -> torch.Tensor:
        return self.problem.client_grads(x, clients=self._clients)

    def _hess(self, x: torch.Tensor) -> torch.Tensor:
        return sym_to_tri(self.problem.hessians(x, clients=self._clients)).to(self.problem.dtype)

    def _losses(self, x: torch.Tensor) -> torch.Tensor:
        return self.problem.client_losses(x, clients=self._clients)

    def _init_hessians(self, x: torch.Tensor) -> torch.Tensor:
        """H_i^0: the local Hessians at x^0 sent once densely (round -1), or zeros."""
        if self.h0 == "zero":
            return torch.zeros(self.network.rows, self.N, dtype=self.problem.dtype, device=self.problem.device)
        return self._up(self._hess(x), self.dense, INIT_ROUND, "hess0")

    # ---- server linear algebra
    def _matrix(self, H_tri: torch.Tensor, l: torch.Tensor | float = 0.0) -> torch.Tensor:
        """The matrix of the step: option 1 ``[H]_mu``, option 2 ``H + l I``."""
        H = tri_to_sym(H_tri, self.d)
        if self.option == 1:
            return project_mu(H, self.mu)
        return H + float(l) * self._eye

    def _send_shifts(self, H_i: torch.Tensor, Hx: torch.Tensor, t: int) -> torch.Tensor:
        """Option 2: every client sends l_i = ||H_i - ∇²f_i(x)||_F (one float32); returns their mean."""
        l_i = frobenius(H_i - Hx, self.d)[:, None]
        return self.network.mean(self._up(l_i, self.dense, t, "shift"))[0]
