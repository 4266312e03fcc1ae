"""Compressors near the bits/error lower bounds of Albasyoni, Safaryan, Condat, Richtárik, *Optimal gradient compression for distributed and federated learning* (arXiv:2010.03246).

The paper's abstract names two: *Sparse Dithering*, "very close" to its worst-case lower bound, and
*Spherical Compression*, which "naturally achieves" its average-case bound. Their definitions in the
paper could not be read; the two classes below are labelled defaults built from the abstract's
description (each docstring says what is assumed).
"""

from __future__ import annotations

import math

import torch

from commpress._rng import private_rand, row_counts
from commpress.compressors._checks import check_int
from commpress.compressors._sparse import index_bits, index_fields, index_message, mask_from_message
from commpress.compressors.base import (
    Compressor, CompressorTheory, Context, Layout, Message, f32, f32_up, padded_bits, uniform_layout,
)
from commpress.compressors.registry import register
from commpress.errors import ConfigError, InputError, PayloadError
from commpress.wire import F32, UINT, Field

__all__ = ["SparseDithering", "Spherical"]

_F32_MAX = float(torch.finfo(torch.float32).max)


@register("sparse_dithering")
class SparseDithering(Compressor):
    r"""Sparse dithering (labelled default): 1-level :math:`\ell_2` random dithering, sent sparsely.

    .. math:: \mathcal C(x)_j = N\operatorname{sign}(x_j)\,\xi_j, \qquad \xi_j \sim \mathrm{Bernoulli}(|x_j|/N),
              \qquad N = \|x\| \text{ (float32, rounded up)} .

    Class: unbiased, :math:`\mathbb E\|\mathcal C(x) - x\|^2 = N\|x\|_1 - \|x\|^2`, i.e.
    :math:`\omega(x) = \|x\|_1/\|x\| - 1 \le \sqrt d - 1` (up to the float32 rounding of N). Independent
    clients: AB(omega/n, 0). Expected nonzeros :math:`\|x\|_1/\|x\| \le \sqrt d`.
    Payload per client: the float32 norm, a 32-bit count c of nonzeros, their index set
    (c indices of :math:`\lceil\log_2 d\rceil` bits or a d-bit bitmap, whichever is shorter) and c sign bits:
    :math:`64 + \min(c\lceil\log_2 d\rceil, d) + c` bits, data dependent.
    Randomness: one private uniform per coordinate (tag ``"sparse_dithering/u"``, (n, d), row-major).

    The paper's exact definition of Sparse Dithering was not recovered; this is the library's default
    reading ("dithering, encoded sparsely").

    References:
        Albasyoni, Safaryan, Condat, Richtárik, Optimal gradient compression for distributed and
        federated learning, arXiv:2010.03246, 2020; Alistarh et al., QSGD, NeurIPS 2017 (1-level dithering).
    """

    def params(self) -> dict:
        return {}

    def _header_fields(self, ctx: Context) -> list[Field]:
        return [Field("norm", F32, 32, 1), Field("count", UINT, 32, 1)]

    def _check_header(self, header: Message, ctx: Context) -> None:
        if bool((header["count"] > ctx.d).any()):
            raise PayloadError(f"{self.name}: count header {int(header['count'].max())} exceeds d={ctx.d}; "
                               "the payload is corrupted.")

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        counts = message["count"][:, 0].cpu()
        layout: Layout = []
        for c in counts.unique().tolist():
            # a row with no nonzero sends the header only (no zero-length fields)
            fields = self._header_fields(ctx) + (index_fields(c, ctx.d) + [Field("sign", UINT, 1, c)] if c else [])
            layout.append((fields, (counts == c).nonzero().flatten()))
        return layout

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        norm = torch.linalg.vector_norm(X.to(torch.float64), dim=1, keepdim=True)
        if bool((norm > _F32_MAX).any()):
            raise InputError(f"sparse_dithering: a norm {float(norm.max()):.3g} exceeds the float32 range of its header; "
                             "rescale the input.")
        N = f32_up(norm)
        Nd = N.to(torch.float64)
        p = torch.where(Nd > 0, X.abs().to(torch.float64) / Nd.clamp_min(1e-300), torch.zeros_like(Nd))
        u = private_rand(ctx.seed, "sparse_dithering/u", ctx.n, (ctx.d,), None if ctx.is_full else ctx.clients,
                         dtype=torch.float64, device=X.device)
        mask = (u < p).cpu()
        counts = row_counts(mask)
        flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        neg = (X < 0).cpu().reshape(-1)[flat]
        r_idx = torch.div(flat, ctx.d, rounding_mode="floor")
        start = torch.cumsum(counts, 0) - counts
        sign = torch.zeros(ctx.rows, max(1, int(counts.max()) if counts.numel() else 1), dtype=torch.uint8)
        sign[r_idx, torch.arange(flat.numel()) - start[r_idx]] = neg.to(torch.uint8)
        message = {"norm": N, "count": counts.unsqueeze(1), "sign": sign}
        message.update(index_message(mask, counts, flat=flat))
        return message

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        counts = message["count"][:, 0].cpu().to(torch.int64)
        if not bool((counts > 0).any()):
            return torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        if "index" not in message:  # rows without nonzeros, next to rows that sent bitmaps
            message = {**message, "index": torch.zeros(ctx.rows, 1, dtype=torch.int64)}
        mask = mask_from_message(message, counts, ctx.d, self.name)
        valid = torch.arange(message["sign"].shape[1]).unsqueeze(0) < counts.unsqueeze(1)
        sign = message["sign"].cpu().masked_select(valid).to(torch.float64)
        N = message["norm"].to(torch.float64).cpu().expand(ctx.rows, ctx.d)
        values = N.masked_select(mask) * (1.0 - 2.0 * sign)
        out = torch.zeros(ctx.rows, ctx.d, dtype=torch.float64)
        return out.masked_scatter_(mask, values).to(device=ctx.device, dtype=ctx.dtype)

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        if bool((message["norm"] < 0).any()):
            raise PayloadError("sparse_dithering: a negative norm header; the payload is corrupted.")

    def theory(self, n: int, d: int) -> CompressorTheory:
        omega = math.sqrt(d) - 1.0
        c = math.ceil(math.sqrt(d))
        bits = padded_bits(64 + index_bits(c, d) + c)
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=bits,
                                extras={"bits_data_dependent": True, "independent": True,
                                        "bits_note": "upper bound at the worst case ||x||_1 = sqrt(d) ||x|| nonzeros "
                                                     "(expected ||x||_1/||x||)"})


@register("spherical")
class Spherical(Compressor):
    r"""Spherical compression (labelled default): the best of :math:`2^b` shared random directions per block.

    Split x into blocks of m coordinates (the last one zero-padded). A codebook of :math:`2^b` unit
    vectors :math:`c_0, \dots, c_{2^b-1} \in \mathbb R^m` is drawn from the round's shared stream; per block
    :math:`x_B` the client sends the index :math:`j^* = \arg\max_j |\langle c_j, x_B\rangle|` (b bits) and the
    float32 coefficient :math:`\langle c_{j^*}, x_B\rangle`:

    .. math:: \mathcal C(x)_B = \langle c_{j^*}, x_B\rangle\, c_{j^*},
              \qquad \|\mathcal C(x)_B - x_B\|^2 = \|x_B\|^2(1 - \rho^2),\ \rho = \max_j|\langle c_j, x_B/\|x_B\|\rangle| .

    Class: biased; the first m codewords are the basis vectors :math:`e_1, \dots, e_m` [library choice], so
    :math:`\rho^2 \ge 1/m` always and the compressor is contractive with :math:`\delta = 1/m` (a worst-case
    bound; for a random direction the error is close to :math:`4^{-b/m}`, the average-case lower bound:
    ``extras["delta_typical"]``). Payload per client: :math:`\lceil d/m\rceil(b + 32)` bits.
    Randomness: the codebook only (tag ``"spherical/codebook"``, shared: a :math:`(2^b - m) \times m`
    standard Gaussian matrix, row-major, rows normalised). Encoding costs :math:`O(2^b m)` per block:
    keep b small (<= 16).

    OGC's Spherical Compression is defined in the paper as achieving the average-case bound; its exact
    construction was not recovered. This random-codebook reading is the library's default.

    Args:
        bits: b, index bits per block (default 8, at most 16; :math:`2^b \ge m`).
        block: m, coordinates per block (default 8, at most 64).

    References:
        Albasyoni, Safaryan, Condat, Richtárik, Optimal gradient compression for distributed and
        federated learning, arXiv:2010.03246, 2020.
    """

    correlated = True

    def __init__(self, bits: int = 8, block: int = 8) -> None:
        self.bits = check_int("bits", bits, "Spherical", low=1, high=16, hint=" bits indexes 2^bits codewords per block.")
        self.block = check_int("block", block, "Spherical", low=1, high=64)
        if 2**self.bits < self.block:
            raise ConfigError(f"Spherical needs 2^bits >= block (the basis vectors are codewords); got bits={bits}, "
                              f"block={block}. Raise bits to at least {math.ceil(math.log2(self.block))}.")

    def params(self) -> dict:
        return {"bits": self.bits, "block": self.block}

    def blocks(self, d: int) -> int:
        return -(-d // self.block)

    def codebook(self, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The ``(2^b, m)`` codebook of a round (unit rows; the first m are the basis vectors)."""
        m = self.block
        g = Context(seed, 1, 1, torch.arange(1), torch.float64, torch.device("cpu")).shared_generator("spherical/codebook")
        G = torch.randn(2**self.bits - m, m, generator=g, dtype=torch.float64)
        G = G / torch.linalg.vector_norm(G, dim=1, keepdim=True).clamp_min(1e-300)
        return torch.cat([torch.eye(m, dtype=torch.float64), G]).to(dtype)

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        nb = self.blocks(ctx.d)
        return uniform_layout([Field("index", UINT, self.bits, nb), Field("coef", F32, 32, nb)], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        m, nb = self.block, self.blocks(ctx.d)
        book = self.codebook(ctx.seed).to(X.device)
        Z = torch.zeros(ctx.rows, nb * m, dtype=torch.float64, device=X.device)
        Z[:, : ctx.d] = X
        Z = Z.view(-1, m)
        if float(Z.abs().max()) * math.sqrt(m) > _F32_MAX:
            raise InputError("spherical: a block's coefficient exceeds the float32 range; rescale the input.")
        chunk = max(1, (1 << 22) // book.shape[0])
        idx = torch.empty(Z.shape[0], dtype=torch.int64, device=X.device)
        coef = torch.empty(Z.shape[0], dtype=torch.float64, device=X.device)
        for s in range(0, Z.shape[0], chunk):  # bounded memory: (chunk, 2^b) inner products at a time
            P = Z[s: s + chunk] @ book.T
            j = P.abs().argmax(dim=1)
            idx[s: s + chunk] = j
            coef[s: s + chunk] = P.gather(1, j.unsqueeze(1)).squeeze(1)
        return {"index": idx.view(ctx.rows, nb), "coef": f32(coef.view(ctx.rows, nb))}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        m, nb = self.block, self.blocks(ctx.d)
        book = self.codebook(ctx.seed, ctx.dtype).to(ctx.device)
        idx = message["index"].to(device=ctx.device, dtype=torch.int64)
        coef = message["coef"].to(device=ctx.device, dtype=ctx.dtype)
        out = book[idx.reshape(-1)].view(ctx.rows, nb, m) * coef.unsqueeze(-1)
        return out.reshape(ctx.rows, nb * m)[:, : ctx.d].contiguous()

    def theory(self, n: int, d: int) -> CompressorTheory:
        nb = self.blocks(d)
        return CompressorTheory("contractive", omega=None, delta=1.0 / self.block, A=None, B=None,
                                bits=padded_bits(nb * (self.bits + 32)),
                                extras={"delta_typical": 1.0 - 4.0 ** (-self.bits / self.block),
                                        "note": "delta = 1/m is the worst case (basis codewords); "
                                                "delta_typical = 1 - 4^(-b/m), the average-case bound"})
