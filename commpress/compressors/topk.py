"""TopK: keep the k coordinates of largest magnitude (deterministic, contractive)."""

from __future__ import annotations

import torch

from commpress._rng import row_counts
from commpress.compressors._checks import check_float_bits
from commpress.compressors._sparse import (
    check_k_for_d, check_k_params, index_bits, index_fields, index_message, resolve_k, scatter_kept,
)
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.wire.fields import float_field


def topk_mask(X: torch.Tensor, k: int) -> torch.Tensor:
    """Bool ``(rows, d)``: the k entries of largest ``|x|`` per row, ties to the lower index."""
    rows, d = X.shape
    if k >= d:
        return torch.ones(rows, d, dtype=torch.bool, device=X.device)
    a = X.abs()
    kth = torch.topk(a, k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values  # k-th largest |x|
    mask = a > kth
    ties = a == kth
    need = k - row_counts(mask)
    n_ties = row_counts(ties)
    mask |= ties
    excess = (n_ties > need).nonzero().flatten()
    if excess.numel():  # more entries equal to the k-th magnitude than places: the lowest indices win
        t = ties[excess]
        drop = t & (torch.cumsum(t, dim=1) > need[excess].unsqueeze(1))
        mask[excess] &= ~drop
    return mask


@register("topk")
class TopK(Compressor):
    r"""Top-k sparsification: keep the k entries of largest magnitude, zero the rest.

    .. math:: \mathcal C(x) = \sum_{j \in T_k(x)} x_j e_j,

    :math:`T_k(x)` the indices of the k largest :math:`|x_j|` (ties: lower index first).
    Deterministic and biased; the error is the sum of the d - k smallest :math:`x_j^2`.

    Class: contractive, :math:`\delta = k/d` (attained when all :math:`|x_j|` are equal); AB n/a.
    Payload per client: the k kept values in index order (float32, or float64 with
    ``float_bits=64``) and their index set (k indices of ceil(log2 d) bits or a d-bit bitmap,
    whichever is shorter): :math:`32k + \min(k\lceil\log_2 d\rceil, d)` bits. No randomness.
    Cost: one ``torch.topk`` per call for the k-th largest magnitude, then comparisons.

    Args:
        k: entries kept per client (``1 <= k <= d``, checked per call); or
        ratio: the kept fraction, k = max(1, round(ratio d)) (half up). Default: ratio 0.1.
        float_bits: 32 (default) or 64 bits per value.

    References:
        Aji, Heafield, Sparse communication for distributed gradient descent, 2017; Stich et al.,
        Sparsified SGD with memory, NeurIPS 2018.
    """

    deterministic = True

    def __init__(self, k: int | None = None, ratio: float | None = None, float_bits: int = 32) -> None:
        self.k, self.ratio = check_k_params(k, ratio, "TopK")
        self.float_bits = check_float_bits(float_bits, "TopK")

    def params(self) -> dict:
        p: dict = {"k": self.k} if self.k is not None else {"ratio": self.ratio}
        return {**p, "float_bits": self.float_bits}

    def k_for(self, d: int) -> int:
        """The k used at dimension d."""
        return resolve_k(self.k, self.ratio, d, 0.1, "half_up")

    def _check_shape(self, ctx: Context) -> None:
        check_k_for_d(self.k_for(ctx.d), ctx.d, "TopK")

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        k = self.k_for(ctx.d)
        return uniform_layout([float_field("values", self.float_bits, k)] + index_fields(k, ctx.d), ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        k = self.k_for(ctx.d)
        mask = topk_mask(X, k)
        flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        idx = flat.view(ctx.rows, k) - (torch.arange(ctx.rows, device=flat.device) * ctx.d).unsqueeze(1)
        values = X.gather(1, idx)
        message = {"values": values.to(torch.float32 if self.float_bits == 32 else torch.float64)}
        message.update(index_message(mask.cpu(), k, idx.cpu()))
        return message

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        values = message["values"].to(device=ctx.device, dtype=ctx.dtype)
        out = torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        return scatter_kept(out, message, self.k_for(ctx.d), values, self.name)

    def theory(self, n: int, d: int) -> CompressorTheory:
        k = self.k_for(d)
        return CompressorTheory("contractive", omega=None, delta=k / d, A=None, B=None,
                                bits=padded_bits(self.float_bits * k + index_bits(k, d)), extras={"k": k})
