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
    Bernoulli Aggregation, TMLR 2023 (adaptive thresholding, Example "Adaptive Thresholding").
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
    "AdaptiveThreshold", "MatrixCompressor", "RankR", "SymRandK", "SymTopK", "frobenius_weights", "make",
    "matrix_side", "names", "sym_to_tri", "tri_to_sym",
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
class RankR(MatrixCompressor):
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

    def __init__(self, rank: int = 1) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"RankR needs an integer rank >= 1; got rank={rank!r}. Use rank=1 (FedNL's Rank-1).")
        self.rank = rank

    def params(self) -> dict:
        return {"rank": self.rank}

    def _check_shape(self, ctx: Context) -> None:
        side = matrix_side(ctx.d)
        if self.rank > side:
            raise ConfigError(f"RankR needs rank <= d; got rank={self.rank} for d={side}. Use rank <= {side}.")

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


# ---------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[MatrixCompressor]] = {
    "topk": SymTopK, "randk": SymRandK, "rank": RankR, "threshold": AdaptiveThreshold,
}


def names() -> list[str]:
    """Names of the symmetric-matrix compressors (their own registry, not the vector one)."""
    return sorted(_REGISTRY)


def make(spec: Any, **params: Any) -> MatrixCompressor:
    """A matrix compressor from a name (``"rank"``, ``"topk"``, ``"randk"``, ``"threshold"``, with or
    without the ``"matrix/"`` prefix), a dict with ``"name"``, or an instance."""
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
