r"""Compressors of symmetric matrices (Hessian differences of the Newton-type methods).

A symmetric :math:`X\in\mathbb S^d` travels as its upper triangle
:math:`\mathcal T=\{(j,l): j\le l\}` in row-major order, a vector of :math:`N_u=d(d+1)/2`
entries (:func:`sym_to_tri`, :func:`tri_to_sym`). Every compressor here is a
:class:`~commpress.compressors.Compressor` on these triangle vectors, so a batch of client
matrices is an ``(n, N_u)`` batch: the network, the ledger and the wire format (``encode``,
``decode``, exact payload bits) are the ones of the vector compressors. The classes
:math:`\mathbb B(\delta)`, :math:`\mathbb U(\omega)` of :meth:`~commpress.compressors.Compressor.theory` are stated in the
**Frobenius** norm of the matrix, :math:`\|X\|_F^2=\sum_{\mathcal T}w_{jl}X_{jl}^2` with
:math:`w_{jl}=1` on the diagonal and 2 off it (not the Euclidean norm of the triangle vector).

They are kept out of the vector registry (:func:`commpress.compressors.names`): they only accept
``d = N_u`` triangular and their constants are Frobenius constants, so the library-wide vector
contract suite does not apply to them. Their own registry: :func:`make`, :func:`names`.

References:
    Safaryan, Islamov, Qian, Richtárik, FedNL: Making Newton-Type Methods Applicable to Federated
    Learning, ICML 2022 (Top-K, Rank-R, Rand-K matrix compressors); Islamov, Qian, Hanzely,
    Safaryan, Richtárik, Distributed Newton-Type Methods with Communication Compression and
    Bernoulli Aggregation, TMLR 2023 (adaptive thresholding, Example "Adaptive Thresholding";
    App. "Rotation Compression"); Vogels, Karimireddy, Jaggi, PowerSGD: Practical Low-Rank Gradient
    Compression for Distributed Optimization, NeurIPS 2019; Qian, Islamov, Safaryan, Richtárik, Basis
    Matters: Better Communication-Efficient Second Order Methods for Federated Learning, AISTATS 2022.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch

from commpress.compressors._sparse import (
    index_bits, index_fields, index_message, mask_from_message, ragged_rows, unragged,
)
from commpress.compressors.base import (
    Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout,
)
from commpress.compressors.randk import RandK
from commpress.compressors.topk import TopK
from commpress.errors import ConfigError, InputError, PayloadError
from commpress.wire.fields import UINT, Field, float_field

__all__ = [
    "AdaptiveThreshold", "MatrixCompressor", "PowerSGD", "RankR", "Rotation", "SymRandK", "SymTopK",
    "frobenius_weights", "make", "matrix_side", "names", "sym_to_tri", "tri_to_sym",
]


# ---------------------------------------------------------------------- triangle packing
def matrix_side(n_entries: int) -> int:
    """The side d of a symmetric matrix whose upper triangle has ``n_entries = d(d+1)/2`` entries."""
    d = (math.isqrt(8 * int(n_entries) + 1) - 1) // 2
    if d * (d + 1) // 2 != int(n_entries) or d < 1:
        raise ConfigError(
            f"matrix compressors act on upper triangles of d(d+1)/2 entries; got {n_entries} entries, "
            "which is no triangular number. Pack the matrices with commpress.compressors.matrix.sym_to_tri."
        )
    return d


@lru_cache(maxsize=32)
def _triu(d: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.triu_indices(d, d)
    return idx[0].contiguous(), idx[1].contiguous()


def sym_to_tri(M: torch.Tensor) -> torch.Tensor:
    """Upper triangles (row-major, diagonal included) of ``(..., d, d)`` matrices: ``(..., d(d+1)/2)``."""
    if M.dim() < 2 or M.shape[-1] != M.shape[-2]:
        raise InputError(f"sym_to_tri expects square matrices (..., d, d); got shape {tuple(M.shape)}.")
    r, c = _triu(int(M.shape[-1]))
    return M[..., r, c]


def tri_to_sym(V: torch.Tensor, d: int | None = None) -> torch.Tensor:
    """The symmetric ``(..., d, d)`` matrices of upper triangles ``(..., d(d+1)/2)``."""
    d = matrix_side(V.shape[-1]) if d is None else int(d)
    r, c = _triu(d)
    M = torch.zeros(*V.shape[:-1], d, d, dtype=V.dtype, device=V.device)
    M[..., r, c] = V
    M[..., c, r] = V
    return M


def frobenius_weights(d: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""Weights :math:`w_{jl}` (1 diagonal, 2 off) with :math:`\|X\|_F^2=\sum w_{jl}V_{jl}^2` on triangles."""
    r, c = _triu(d)
    return torch.where(r == c, 1.0, 2.0).to(dtype)


class MatrixCompressor(Compressor):
    """Base of the symmetric-matrix compressors: the triangle-vector length is checked, and
    :meth:`compress` takes ``(rows, d, d)`` matrices."""

    def _check_shape(self, ctx: Context) -> None:
        matrix_side(ctx.d)

    def compress(self, M: torch.Tensor, seed: int, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``apply`` on matrices: ``(rows, d, d)`` symmetric -> (reconstruction ``(rows, d, d)``, bits ``(rows,)``)."""
        V_hat, bits = self.apply(sym_to_tri(M), seed, **kw)
        return tri_to_sym(V_hat, int(M.shape[-1])), bits

    def matrix_theory(self, d: int, n: int = 1) -> CompressorTheory:
        """:meth:`~commpress.compressors.Compressor.theory` at matrix side ``d``."""
        return self.theory(n, d * (d + 1) // 2)


# ---------------------------------------------------------------------- Top-K
class _KeptEntries:
    """What Top-K and Rand-K of a triangle share: K entries kept (default: the side d), the vector
    compressor's checks after the triangle check."""

    _vector: type  # the vector compressor the class specialises

    def __init__(self, k: int | None = None, float_bits: int = 32) -> None:
        self._vector.__init__(self, k=k, float_bits=float_bits)

    def params(self) -> dict:
        return {"k": self.k, "float_bits": self.float_bits}

    def k_for(self, d: int) -> int:
        side = matrix_side(d)
        return min(self.k if self.k is not None else side, d)

    def _check_shape(self, ctx: Context) -> None:
        matrix_side(ctx.d)
        self._vector._check_shape(self, ctx)


class SymTopK(_KeptEntries, MatrixCompressor, TopK):
    r"""Symmetric Top-K: keep the K entries of the upper triangle largest in magnitude, mirror them.

    .. math:: \mathcal C(X)_{jl}=\mathcal C(X)_{lj}=X_{jl}\,\mathbb 1[(j,l)\in T_K(X)],\qquad
              T_K(X)\subset\mathcal T,\ |T_K|=K \text{ of largest } |X_{jl}|.

    Class: contractive in Frobenius norm, :math:`\delta=K/d^2` (every kept entry dominates every
    dropped one and the kept weight is at least K, so the kept mass is at least :math:`K/d^2`
    of :math:`\|X\|_F^2`).

    .. note:: The FedNL reference code uses :math:`\delta=2K/(d(d+1))`, which is not a valid
       constant: for d = 6, K = 3, diagonal 1.0001 and off-diagonal 1 only 0.0833 < 0.1429 of
       the mass is kept. ``theory`` reports it as ``extras["delta_code"]`` for reference only.

    Payload per client: K float32 values and their positions in the triangle (K indices of
    :math:`\lceil\log_2N_u\rceil` bits, or an :math:`N_u`-bit bitmap if shorter). The papers count
    32K bits (indices free).

    Args:
        k: entries of the triangle kept; default d (the papers' "Top-d").

    References:
        Safaryan et al., FedNL, ICML 2022 (Top-K matrix compressor); Islamov et al., Newton-3PC,
        TMLR 2023, Sect. 6 (Top-d).
    """

    name = "matrix/topk"
    _vector = TopK

    def theory(self, n: int, d: int) -> CompressorTheory:
        side, k = matrix_side(d), self.k_for(d)
        return CompressorTheory(
            "contractive", omega=None, delta=min(1.0, k / side**2), A=None, B=None,
            bits=padded_bits(self.float_bits * k + index_bits(k, d)),
            extras={"k": k, "side": side, "bits_paper": 32 * k, "delta_code": 2 * k / (side * (side + 1)),
                    "norm": "frobenius"},
        )


# ---------------------------------------------------------------------- Rand-K
class SymRandK(_KeptEntries, MatrixCompressor, RandK):
    r"""Symmetric Rand-K: K uniformly random entries of the upper triangle, scaled, mirrored.

    .. math:: \mathcal C(X)_{jl}=\mathcal C(X)_{lj}=\tfrac{N_u}{K}X_{jl}\,\mathbb 1[(j,l)\in S],\qquad
              S\subset\mathcal T \text{ uniform}, |S|=K.

    Class: unbiased, :math:`\omega=N_u/K-1` exactly in Frobenius norm (each weighted entry is kept with
    probability :math:`K/N_u`). Payload per client: K float32 values (positions from the private
    seeded stream, 0 bits): 32K bits, as the papers count.

    Args:
        k: entries kept; default d.

    References:
        Safaryan et al., FedNL, ICML 2022 (Rand-K matrix compressor).
    """

    name = "matrix/randk"
    _vector = RandK

    def theory(self, n: int, d: int) -> CompressorTheory:
        th = RandK.theory(self, n, d)
        return CompressorTheory(th.kind, omega=th.omega, delta=None, A=th.A, B=th.B, bits=th.bits,
                                extras={**th.extras, "side": matrix_side(d), "norm": "frobenius"})


# ---------------------------------------------------------------------- Rank-R
class _Ranked:
    """What Rank-R and PowerSGD share: an integer rank R in [1, d], checked once."""

    def __init__(self, rank: int = 1) -> None:
        label = type(self).__name__
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"{label} needs an integer rank >= 1; got rank={rank!r}. Use rank=1.")
        self.rank = rank

    def params(self) -> dict:
        return {"rank": self.rank}

    def _check_shape(self, ctx: Context) -> None:
        side = matrix_side(ctx.d)
        if self.rank > side:
            raise ConfigError(f"{type(self).__name__} needs rank <= d; got rank={self.rank} for d={side}. "
                              f"Use rank <= {side}.")


class RankR(_Ranked, MatrixCompressor):
    r"""Rank-R: the R eigenpairs of largest :math:`|\lambda|` of the symmetric eigendecomposition.

    .. math:: X=\sum_j\lambda_ju_ju_j^\top,\ |\lambda_1|\ge|\lambda_2|\ge\dots,\qquad
              \mathcal C(X)=\sum_{j\le R}\lambda_ju_ju_j^\top .

    Deterministic; exact error :math:`\|\mathcal C(X)-X\|_F^2=\sum_{j>R}\lambda_j^2`.
    Class: contractive, :math:`\delta=R/d` (the R largest of d squared eigenvalues carry at least
    R/d of their sum). Payload per client: R float32 eigenvalues and R float32 eigenvectors:
    :math:`32R(d+1)` bits (the papers count :math:`32Rd`). The float32 rounding of the vectors is
    applied before reconstruction, so the server's matrix is exactly what the bytes give.

    Args:
        rank: R, ``1 <= R <= d`` (default 1).

    References:
        Safaryan et al., FedNL, ICML 2022 (Rank-R compressor; Rank-1 in the headline plots).
    """

    name = "matrix/rank"
    deterministic = True


    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        side = matrix_side(ctx.d)
        return uniform_layout([float_field("eigenvalues", 32, self.rank),
                               float_field("eigenvectors", 32, self.rank * side)], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        side = matrix_side(ctx.d)
        M = tri_to_sym(X.to(torch.float64), side)
        lam, U = torch.linalg.eigh(M)
        order = lam.abs().argsort(dim=-1, descending=True, stable=True)[:, : self.rank]
        lam_r = lam.gather(1, order)
        U_r = U.gather(2, order[:, None, :].expand(-1, side, -1))  # (rows, d, R)
        return {"eigenvalues": lam_r.to(torch.float32),
                "eigenvectors": U_r.transpose(1, 2).reshape(ctx.rows, -1).to(torch.float32)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        side = matrix_side(ctx.d)
        lam = message["eigenvalues"].to(device=ctx.device, dtype=torch.float64)
        U = message["eigenvectors"].to(device=ctx.device, dtype=torch.float64).reshape(ctx.rows, self.rank, side)
        M = torch.einsum("rk,rki,rkj->rij", lam, U, U)
        return sym_to_tri(M).to(ctx.dtype)

    def theory(self, n: int, d: int) -> CompressorTheory:
        side = matrix_side(d)
        r = min(self.rank, side)
        return CompressorTheory("contractive", omega=None, delta=r / side, A=None, B=None,
                                bits=padded_bits(32 * r * (side + 1)),
                                extras={"rank": r, "side": side, "bits_paper": 32 * r * side, "norm": "frobenius"})


# ---------------------------------------------------------------------- adaptive thresholding
class AdaptiveThreshold(MatrixCompressor):
    r"""Adaptive thresholding: keep the entries at least :math:`\lambda\|X\|_{\max}` in magnitude.

    .. math:: \mathcal C(X)_{jl}=X_{jl}\,\mathbb 1\big[|X_{jl}|\ge\lambda\|X\|_{\max}\big],\qquad \lambda\in(0,1].

    Class: contractive, :math:`\delta=1/(1+(d^2-1)\lambda^2)` (dropped entries are below
    :math:`\lambda M`, one entry equal to :math:`M=\|X\|_{\max}` is kept); the paper's Lemma states the
    weaker :math:`\max\{1-(d\lambda)^2, 1/d^2\}`, reported as ``extras["delta_paper"]``.
    Payload per client: a 32-bit count, the kept triangle values (float32) and their positions
    (:math:`\lceil\log_2N_u\rceil` bits each or a bitmap): data-dependent size.

    Args:
        lam: the threshold fraction λ (default 0.5, the paper's experiments).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with
        Communication Compression and Bernoulli Aggregation, TMLR 2023, Example "Adaptive Thresholding".
    """

    name = "matrix/threshold"
    deterministic = True

    def __init__(self, lam: float = 0.5) -> None:
        lam_f = float(lam) if isinstance(lam, (int, float)) and not isinstance(lam, bool) else float("nan")
        if not 0.0 < lam_f <= 1.0:
            raise ConfigError(f"AdaptiveThreshold needs lam in (0, 1]; got lam={lam!r}. Use lam=0.5 (the paper's).")
        self.lam = lam_f

    def params(self) -> dict:
        return {"lam": self.lam}

    def _header_fields(self, ctx: Context) -> list[Field]:
        return [Field("count", UINT, 32, 1)]

    def _check_header(self, header: Message, ctx: Context) -> None:
        if bool((header["count"] > ctx.d).any()):
            raise PayloadError(f"{self.name}: count header {int(header['count'].max())} exceeds {ctx.d}; "
                               "the payload is corrupted.")

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        counts = message["count"][:, 0].cpu()
        layout: Layout = []
        for c in counts.unique().tolist():
            fields = self._header_fields(ctx) + [float_field("values", 32, c)] + index_fields(c, ctx.d)
            layout.append((fields, (counts == c).nonzero().flatten()))
        return layout

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        rows, d = X.shape
        a = X.abs()
        M = a.max(dim=1, keepdim=True).values
        mask = (a >= self.lam * M) & (a > 0)
        flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        counts = torch.bincount(torch.div(flat, d, rounding_mode="floor"), minlength=rows).cpu()
        values = ragged_rows(mask, counts.to(X.device), X.reshape(-1)[flat].to(torch.float32), flat=flat)
        message = {"count": counts.unsqueeze(1), "values": values}
        message.update(index_message(mask.cpu(), counts, flat=flat.cpu()))
        return message

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        counts = message["count"][:, 0].cpu()
        mask = mask_from_message(message, counts, ctx.d, self.name)
        flat = unragged(message["values"], counts).to(device=ctx.device, dtype=ctx.dtype)
        out = torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        return out.masked_scatter_(mask.to(ctx.device), flat)

    def theory(self, n: int, d: int) -> CompressorTheory:
        side = matrix_side(d)
        lam2 = self.lam**2
        return CompressorTheory(
            "contractive", omega=None, delta=1.0 / (1.0 + (side**2 - 1) * lam2), A=None, B=None,
            bits=padded_bits(32 + 32 * d + index_bits(d, d)),
            extras={"side": side, "delta_paper": max(1.0 - side**2 * lam2, 1.0 / side**2), "norm": "frobenius",
                    "bits_data_dependent": True, "bits_note": "upper bound (every entry kept)"},
        )


# ---------------------------------------------------------------------- PowerSGD
class PowerSGD(_Ranked, MatrixCompressor):
    r"""PowerSGD rank R: one power step from a Gaussian start, symmetrised.

    .. math:: P=\operatorname{orth}(XQ),\quad Q'=X^\top P,\qquad
              \mathcal C(X)=\tfrac12\big(PQ'^\top+Q'P^\top\big),

    with :math:`Q\in\mathbb R^{d\times R}` standard Gaussian, drawn afresh every round from the round's
    shared stream (the same Q for every client), and :math:`\operatorname{orth}` the Q factor of the
    reduced QR decomposition (orthonormal columns). Since :math:`PP^\top` is the orthogonal projection
    onto :math:`\operatorname{span}(XQ)`, :math:`PQ'^\top=PP^\top X` and the compressor is exact
    (up to float32 rounding) when :math:`\operatorname{rank}X\le R`. The symmetrisation makes the
    output a symmetric matrix (it is sent as its upper triangle like every matrix here).

    Class: **none** (``kind="biased"``, ``delta=None``): one power step from a random start has no
    contraction constant valid for every X (a Q nearly orthogonal to the top eigenvectors keeps
    almost nothing). The FedNL reference code passes the user's Hessian learning rate as the
    compressor's δ; that is not a property of the compressor and is not copied here. Newton-type
    methods therefore need an explicit ``alpha`` with it.

    Payload per client: P and Q' as float32, :math:`2Rd` numbers: :math:`64Rd` bits, as the papers
    count (Q is regenerated from the seed, but the receiver cannot form XQ, so P is sent). P is
    rounded to float32 before :math:`Q'=X^\top P` is computed, and the server's matrix is exactly
    what the bytes give. Rows share Q, so they are not independent draws (``correlated``).

    Args:
        rank: R, ``1 <= R <= d`` (default 1).

    References:
        Vogels, Karimireddy, Jaggi, PowerSGD: Practical Low-Rank Gradient Compression for Distributed
        Optimization, NeurIPS 2019, Algorithm 1 (one power-iteration step; here a fresh Gaussian Q
        each round instead of the warm start); Safaryan et al., FedNL, ICML 2022 (PowerSGD as a
        Hessian compressor in the experiments).
    """

    name = "matrix/powersgd"
    #: Every client's P is computed from the same shared Gaussian Q: the rows of one call are not independent.
    correlated = True


    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        n_vec = self.rank * matrix_side(ctx.d)
        return uniform_layout([float_field("p", 32, n_vec), float_field("q", 32, n_vec)], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        side, rows = matrix_side(ctx.d), ctx.rows
        M = tri_to_sym(X.to(torch.float64), side)  # (rows, d, d), symmetric
        G = torch.randn(side, self.rank, generator=ctx.shared_generator("matrix/powersgd/q"), dtype=torch.float64)
        P = torch.linalg.qr(M @ G.to(X.device)).Q.to(torch.float32)  # (rows, d, R), orthonormal columns
        Qp = M.mT @ P.to(torch.float64)  # X^T P with the P that is sent
        return {"p": P.transpose(1, 2).reshape(rows, -1),
                "q": Qp.to(torch.float32).transpose(1, 2).reshape(rows, -1)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        side, rows = matrix_side(ctx.d), ctx.rows
        P = message["p"].to(device=ctx.device, dtype=torch.float64).reshape(rows, self.rank, side)
        Qp = message["q"].to(device=ctx.device, dtype=torch.float64).reshape(rows, self.rank, side)
        A = P.mT @ Qp  # P Q'^T, (rows, d, d)
        return sym_to_tri(0.5 * (A + A.mT)).to(ctx.dtype)

    def theory(self, n: int, d: int) -> CompressorTheory:
        side = matrix_side(d)
        r = min(self.rank, side)
        return CompressorTheory("biased", omega=None, delta=None, A=None, B=None, bits=padded_bits(64 * r * side),
                                extras={"rank": r, "side": side, "bits_paper": 64 * r * side, "norm": "frobenius",
                                        "note": "no contraction guarantee (one power step from a random start)"})


# ---------------------------------------------------------------------- rotation compression
class Rotation(MatrixCompressor):
    r"""Rotation compression: compress in a fixed orthonormal basis, rotate back.

    .. math:: \mathcal C_Q(X)=Q\,\mathcal C\big(Q^\top XQ\big)\,Q^\top,\qquad Q^\top Q=I,

    with :math:`\mathcal C` an inner matrix compressor (default symmetric Top-K). The map
    :math:`X\mapsto Q^\top XQ` is a linear isometry of :math:`\mathbb S^d` in the Frobenius norm, so
    :math:`\|\mathcal C_Q(X)-X\|_F=\|\mathcal C(Y)-Y\|_F` with :math:`Y=Q^\top XQ`: if
    :math:`\mathcal C\in\mathbb B(\delta)` then :math:`\mathcal C_Q\in\mathbb B(\delta)`, and likewise an
    unbiased :math:`\mathcal C\in\mathbb U(\omega)` stays in :math:`\mathbb U(\omega)`; ``theory``
    reports the inner compressor's class and constants. A good basis (e.g. the eigenvectors of a
    reference Hessian, or a basis of the data) makes :math:`Q^\top XQ` nearly diagonal, so a
    sparsifier loses little. ``basis=None`` is the identity (:math:`\mathcal C_I=\mathcal C`).

    Payload per client: the inner compressor's payload of :math:`Q^\top XQ` (Q is known to both sides;
    its one-time transfer is not part of this message). One basis serves every client (Basis Learn
    allows a basis per client).

    Args:
        basis: the orthogonal ``(d, d)`` matrix Q (columns: the basis vectors); default the identity.
        inner: the inner matrix compressor: a name, a dict with ``"name"`` or an instance (default ``"topk"``).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with
        Communication Compression and Bernoulli Aggregation, TMLR 2023, App. "Rotation Compression";
        Qian, Islamov, Safaryan, Richtárik, Basis Matters: Better Communication-Efficient Second Order
        Methods for Federated Learning (Basis Learn), AISTATS 2022, Sect. 2 (change of basis).
    """

    name = "matrix/rotation"

    def __init__(self, basis: Any = None, inner: Any = "topk") -> None:
        self.inner: MatrixCompressor = make(inner)
        self.deterministic = self.inner.deterministic
        self.correlated = self.inner.correlated
        if basis is None:
            self.basis: torch.Tensor | None = None
            return
        if not isinstance(basis, torch.Tensor) or basis.dim() != 2 or basis.shape[0] != basis.shape[1] \
                or not basis.is_floating_point():
            raise ConfigError(f"Rotation needs basis=None or a square floating (d, d) tensor; got "
                              f"{type(basis).__name__} {tuple(getattr(basis, 'shape', ()))}. Pass e.g. "
                              "torch.linalg.eigh(H).eigenvectors.")
        B = basis.detach().to(device="cpu", dtype=torch.float64)
        gap = float((B.mT @ B - torch.eye(B.shape[0], dtype=torch.float64)).abs().max())
        if not gap <= 1e-5:
            raise ConfigError(f"Rotation needs an orthogonal basis (Q^T Q = I); max |Q^T Q - I| = {gap:.3g}. "
                              "Orthonormalise it first, e.g. torch.linalg.qr(Q).Q.")
        self.basis = B

    def params(self) -> dict:
        return {"inner": {"name": self.inner.name, **self.inner.params()},
                "basis": "identity" if self.basis is None else f"given ({self.basis.shape[0]}x{self.basis.shape[0]})"}

    def _check_shape(self, ctx: Context) -> None:
        side = matrix_side(ctx.d)
        if self.basis is not None and self.basis.shape[0] != side:
            raise ConfigError(f"Rotation's basis is {self.basis.shape[0]}x{self.basis.shape[0]} but the matrices "
                              f"are {side}x{side}; pass a ({side}, {side}) basis.")
        self.inner.check_shape(ctx)

    def _rotate(self, V: torch.Tensor, ctx: Context, back: bool) -> torch.Tensor:
        """Triangles of :math:`Q^\\top XQ` (``back=False``) or :math:`QXQ^\\top` (``back=True``), ``ctx.dtype``."""
        if self.basis is None:
            return V.to(ctx.dtype)
        B = self.basis.to(V.device)
        M = tri_to_sym(V.to(torch.float64), B.shape[0])
        Y = B @ M @ B.mT if back else B.mT @ M @ B
        return sym_to_tri(Y).to(ctx.dtype)

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return self.inner.layout(ctx, message)

    def _header_fields(self, ctx: Context) -> list[Field]:
        return self.inner.header_fields(ctx)

    def _check_header(self, header: Message, ctx: Context) -> None:
        self.inner.check_header(header, ctx)

    def _check_message(self, message: Message, ctx: Context) -> None:
        self.inner.check_message(message, ctx)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        return self.inner.encode_message(self._rotate(X, ctx, back=False), ctx)

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        return self._rotate(self.inner.decode_message(message, ctx), ctx, back=True)

    def theory(self, n: int, d: int) -> CompressorTheory:
        th = self.inner.theory(n, d)
        return CompressorTheory(th.kind, omega=th.omega, delta=th.delta, A=th.A, B=th.B, bits=th.bits,
                                extras={**th.extras, "inner": self.inner.name, "norm": "frobenius",
                                        "basis": "identity" if self.basis is None else "given"})


# ---------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[MatrixCompressor]] = {
    "topk": SymTopK, "randk": SymRandK, "rank": RankR, "threshold": AdaptiveThreshold,
    "powersgd": PowerSGD, "rotation": Rotation,
}


def names() -> list[str]:
    """Names of the symmetric-matrix compressors (their own registry, not the vector one)."""
    return sorted(_REGISTRY)


def make(spec: Any, **params: Any) -> MatrixCompressor:
    """A matrix compressor from a name (``"rank"``, ``"topk"``, ``"randk"``, ``"threshold"``,
    ``"powersgd"``, ``"rotation"``, with or without the ``"matrix/"`` prefix), a dict with ``"name"``,
    or an instance."""
    if isinstance(spec, MatrixCompressor):
        if params:
            raise ConfigError("matrix make() got a compressor instance and parameters; pass one or the other.")
        return spec
    if isinstance(spec, dict) and "name" in spec:
        return make(spec["name"], **{k: v for k, v in spec.items() if k != "name"}, **params)
    if isinstance(spec, str):
        key = spec[len("matrix/"):] if spec.startswith("matrix/") else spec
        if key in _REGISTRY:
            return _REGISTRY[key](**params)
    raise ConfigError(
        f"unknown matrix compressor {spec!r}; use one of {names()} (e.g. compressor='rank' for Rank-1, "
        "or {'name': 'topk', 'k': d})."
    )
