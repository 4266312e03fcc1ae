"""Wangni et al. 2018: unbiased sparsification with variance-optimal keep probabilities."""

from __future__ import annotations

import math

import torch

from commpress._rng import private_rand, row_counts
from commpress.compressors._checks import check_float, check_float_bits
from commpress.compressors._sparse import index_bits, index_fields, index_message, mask_from_message, ragged_rows, unragged
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits
from commpress.errors import ConfigError, PayloadError
from commpress.compressors.registry import register
from commpress.wire import UINT, Field
from commpress.wire.fields import float_field

_MAX_ITERATIONS = 64


def kkt_probabilities(a: torch.Tensor, *, kappa: float | None = None, epsilon: float | None = None) -> torch.Tensor:
    r"""Keep probabilities :math:`p_j = \min(1, \lambda a_j)` of every row of magnitudes ``a`` (float64).

    Density mode (``kappa``): :math:`\sum_j p_j = \kappa` (all :math:`p_j = 1` on the nonzeros if
    :math:`\kappa \ge` their number). Variance mode (``epsilon``): :math:`\sum_j a_j^2/p_j = (1+\epsilon)\|a\|^2`.
    Zeros get :math:`p_j = 0`.

    Solved by the water-filling fixed point, vectorised over rows: start with no saturated
    coordinate, :math:`\lambda` from the constraint with the saturated set S fixed
    (:math:`\lambda = (\kappa - |S|)/\sum_{j\notin S} a_j` or
    :math:`\lambda = \sum_{j\notin S} a_j / ((1+\epsilon)\|a\|^2 - \sum_{j\in S} a_j^2)`), then
    :math:`S = \{j: \lambda a_j > 1\}`, until S stops growing. :math:`\lambda` increases
    monotonically to the KKT value and S to the set of the sorted rule (the smallest t with
    :math:`\lambda_t a_{t+1} \le 1`), typically in a few passes over the rows; rows not settled after
    64 passes (never seen) are solved by the sorted rule :func:`kkt_probabilities_sorted`.
    """
    rows, d = a.shape
    nonzero = a > 0
    m = row_counts(nonzero).to(a.dtype)
    total = a.sum(dim=1)
    if kappa is not None:
        settled = m <= kappa  # keep every nonzero
        budget = None
    else:
        budget = (1.0 + epsilon) * (a * a).sum(dim=1)
        settled = m == 0
    t = torch.zeros(rows, dtype=a.dtype)
    s1 = torch.zeros(rows, dtype=a.dtype)
    s2 = torch.zeros(rows, dtype=a.dtype)
    lam = torch.zeros(rows, dtype=a.dtype)
    active = ~settled
    for _ in range(_MAX_ITERATIONS):
        if not bool(active.any()):
            break
        if kappa is not None:
            lam = torch.where(active, (kappa - t) / (total - s1).clamp_min(1e-300), lam)
        else:
            lam = torch.where(active, (total - s1) / (budget - s2).clamp_min(1e-300), lam)
        inv = torch.where(active & (lam > 0), 1.0 / lam.clamp_min(1e-300), torch.full_like(lam, math.inf))
        saturated = a > inv.unsqueeze(1)
        t_new = row_counts(saturated).to(a.dtype)
        active = active & (t_new != t)
        t = t_new
        # sums over the saturated set, which is small: gather its entries instead of masking all of a
        flat = torch.nonzero(saturated.view(-1), as_tuple=True)[0]
        r_idx = torch.div(flat, d, rounding_mode="floor")
        sat_a = a.reshape(-1)[flat]
        s1 = torch.zeros(rows, dtype=a.dtype, device=a.device).index_add_(0, r_idx, sat_a)
        if kappa is None:
            s2 = torch.zeros(rows, dtype=a.dtype, device=a.device).index_add_(0, r_idx, sat_a * sat_a)
    p = (a * lam.unsqueeze(1)).clamp_(max=1.0)
    if bool(active.any()):
        rows_left = active.nonzero().flatten()
        p[rows_left] = kkt_probabilities_sorted(a[rows_left], kappa=kappa, epsilon=epsilon)
    if bool(settled.any()):
        p[settled] = nonzero[settled].to(a.dtype)
    return p


def kkt_probabilities_sorted(a: torch.Tensor, *, kappa: float | None = None, epsilon: float | None = None) -> torch.Tensor:
    """The sorted KKT rule (Wangni et al. 2018, as solved exactly), a full sort per row: the reference
    for the fixed point above."""
    rows, d = a.shape
    s = a.sort(dim=1, descending=True).values
    m = row_counts(a > 0)
    csum = torch.cumsum(s, dim=1)
    total = csum[:, -1:]
    head = torch.cat([torch.zeros(rows, 1, dtype=a.dtype), csum[:, :-1]], dim=1)  # sum of the t largest
    tail = total - head  # sum_{j > t} a_j, for t = 0..d-1
    t = torch.arange(d, dtype=a.dtype).unsqueeze(0)
    if kappa is not None:
        cond = (kappa - t) * s <= tail  # lambda_t a_{t+1} <= 1
    else:
        sq = s * s
        csq = torch.cumsum(sq, dim=1)
        head2 = torch.cat([torch.zeros(rows, 1, dtype=a.dtype), csq[:, :-1]], dim=1)
        budget = (1.0 + epsilon) * csq[:, -1:] - head2
        cond = tail * s <= budget
    first = cond.to(torch.int8).argmax(dim=1, keepdim=True)
    tail_t = tail.gather(1, first)
    if kappa is not None:
        lam = (kappa - first.to(a.dtype)) / tail_t.clamp_min(1e-300)
    else:
        lam = tail_t / budget.gather(1, first)
    p = (a * lam).clamp_(max=1.0)
    full = (m.to(a.dtype) <= kappa) if kappa is not None else (m == 0)
    p[full] = (a[full] > 0).to(a.dtype)
    return p


@register("wangni")
class Wangni(Compressor):
    r"""Wangni, Wang, Liu, Zhang 2018: keep coordinate j with probability :math:`p_j`, rescale by :math:`1/p_j`.

    .. math:: \mathcal C(v)_j = \frac{v_j Z_j}{p_j}, \qquad Z_j \sim \mathrm{Bernoulli}(p_j)\ \text{independent},
              \qquad p_j = \min(1, \lambda |v_j|),

    with :math:`\lambda` the KKT multiplier (exact; the paper's greedy algorithm approximates it), found
    per row by ``kkt_probabilities`` (this module). Unbiased, :math:`e(v) = \sum_j v_j^2 (1/p_j - 1)` exactly.

    - Density mode (default): expected nonzeros :math:`\kappa = \max(1, \rho d)` (all kept if v has
      at most :math:`\kappa` nonzeros); :math:`\omega \le d/\kappa - 1` (the uniform choice is feasible).
    - Variance mode (``epsilon``): the fewest expected nonzeros with
      :math:`\sum_j v_j^2/p_j \le (1+\epsilon)\|v\|^2`; :math:`\omega = \epsilon` exactly.

    Class: unbiased, AB(omega/n, 0). Payload per client (the support depends on v, so it cannot be
    seeded): a 32-bit count c, then c values (float32, or float64 with ``float_bits=64``) and the
    index set (c indices of ceil(log2 d) bits or a d-bit bitmap, whichever is shorter):
    :math:`32 + 32c + \min(c\lceil\log_2 d\rceil, d)` bits, data dependent. The decoder checks c <= d
    before laying out the rest. Randomness: the Bernoulli draws :math:`Z_j = 1\{U_j < p_j\}` with
    float64 private uniforms (tag ``"wangni/u"``, one (n, d) matrix; float64 so that tiny
    :math:`p_j` are not rounded up to the 2^-24 grid of float32 uniforms, which would bias them).

    Args:
        rho: density, :math:`\kappa = \max(1, \rho d)` expected kept coordinates (default 0.1).
        epsilon: variance mode with :math:`\omega = \epsilon > 0` (excludes ``rho``).
        float_bits: 32 (default) or 64 bits per value.

    References:
        Wangni, Wang, Liu, Zhang, Gradient Sparsification for Communication-Efficient Distributed
        Optimization, NeurIPS 2018; Huang et al., NEOLITHIC, NeurIPS 2022 (talk), Example II.
    """

    def __init__(self, rho: float | None = None, epsilon: float | None = None, float_bits: int = 32) -> None:
        if rho is not None and epsilon is not None:
            raise ConfigError(
                f"Wangni takes rho (density mode) or epsilon (variance mode), not both; got rho={rho!r}, "
                f"epsilon={epsilon!r}."
            )
        self.epsilon = None if epsilon is None else check_float(
            "epsilon", epsilon, "Wangni", low=0.0, low_open=True,
            hint=" epsilon is the variance bound omega (> 0); for no compression use 'identity'.")
        if self.epsilon is not None and not math.isfinite(self.epsilon):
            raise ConfigError(f"Wangni needs a finite epsilon; got epsilon={epsilon!r}.")
        self.rho = None if self.epsilon is not None else check_float(
            "rho", 0.1 if rho is None else rho, "Wangni", low=0.0, high=1.0, low_open=True,
            hint=" rho is the expected kept fraction of the coordinates.")
        self.float_bits = check_float_bits(float_bits, "Wangni")

    @property
    def mode(self) -> str:
        return "variance" if self.epsilon is not None else "density"

    def params(self) -> dict:
        p: dict = {"epsilon": self.epsilon} if self.epsilon is not None else {"rho": self.rho}
        return {**p, "float_bits": self.float_bits}

    def kappa(self, d: int) -> float:
        """Expected kept coordinates in density mode: max(1, rho d)."""
        return max(1.0, self.rho * d)

    def probabilities(self, X: torch.Tensor) -> torch.Tensor:
        """Keep probabilities of every coordinate of every row, float64 ``(rows, d)``."""
        a = X.abs().to(torch.float64)
        if self.epsilon is not None:
            return kkt_probabilities(a, epsilon=self.epsilon)
        return kkt_probabilities(a, kappa=self.kappa(X.shape[1]))

    # ------------------------------------------------------------------ hooks
    def _header_fields(self, ctx: Context) -> list[Field]:
        return [Field("count", UINT, 32, 1)]

    def _check_header(self, header: Message, ctx: Context) -> None:
        if bool((header["count"] > ctx.d).any()):
            bad = int(header["count"].max())
            raise PayloadError(f"{self.name}: count header {bad} exceeds d={ctx.d}; the payload is corrupted.")

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        counts = message["count"][:, 0].cpu()
        layout: Layout = []
        for c in counts.unique().tolist():
            fields = self._header_fields(ctx) + [float_field("values", self.float_bits, c)] + index_fields(c, ctx.d)
            layout.append((fields, (counts == c).nonzero().flatten()))
        return layout

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        rows, d = X.shape
        p = self.probabilities(X).to(X.device)
        u = private_rand(ctx.seed, "wangni/u", ctx.n, (d,), None if ctx.is_full else ctx.clients,
                         dtype=torch.float64, device=X.device)
        mask = u < p
        del u
        flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]  # kept entries, row-major
        counts = torch.bincount(torch.div(flat, d, rounding_mode="floor"), minlength=rows).cpu()
        kept = X.reshape(-1)[flat].to(torch.float64) / p.reshape(-1)[flat]
        values = ragged_rows(mask, counts.to(X.device), kept.to(torch.float32 if self.float_bits == 32 else torch.float64),
                             flat=flat)
        message = {"count": counts.unsqueeze(1), "values": values}
        message.update(index_message(mask.cpu(), counts, flat=flat.cpu()))
        return message

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        counts = message["count"][:, 0].cpu()
        mask = mask_from_message(message, counts, ctx.d, self.name)
        flat = unragged(message["values"], counts).to(device=ctx.device, dtype=ctx.dtype)
        out = torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        return out.masked_scatter_(mask.to(ctx.device), flat)

    # ------------------------------------------------------------------ theory
    def theory(self, n: int, d: int) -> CompressorTheory:
        extras: dict = {"mode": self.mode, "bits_data_dependent": True}
        if self.epsilon is not None:
            omega = self.epsilon
            bits = padded_bits(32 + self.float_bits * d + index_bits(d, d))  # an upper bound
            extras["bits_note"] = "upper bound (every coordinate kept); the count depends on v"
        else:
            kappa = min(self.kappa(d), float(d))
            omega = d / kappa - 1
            c = math.ceil(kappa)
            bits = padded_bits(32 + self.float_bits * kappa + index_bits(c, d))
            extras.update(kappa=kappa, omega_is_bound=True,
                          bits_note="expected count kappa (fewer if v has fewer nonzeros)")
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=bits, extras=extras)
