"""CQ: correlated quantization (Suresh et al. 2022; CQ paper Def. 7, Alg. 2, Thm. 1)."""

from __future__ import annotations

import torch

from commpress._rng import private_rand, shared_generator, shared_integers
from commpress.compressors._range_quantizer import RangeQuantizer, plain, remember
from commpress.compressors.base import CompressorTheory, Context
from commpress.compressors.registry import register


def correlated_thresholds(
    seed: int, n: int, d: int, rows: torch.Tensor | None, dtype: torch.dtype, tag: str = "cq",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""CQ's thresholds :math:`U_{ij} = ((\sigma_i + h_j) \bmod n + \gamma_{ij}) / n` for the given rows.

    Draw order: :math:`\sigma` = ``randperm(n)`` on the shared stream ``tag + "/sigma"``;
    :math:`h` = :func:`~commpress._rng.shared_integers` ``(n, d)`` on ``tag + "/shift"``; :math:`\gamma` = the private (n, d)
    uniform matrix of ``tag + "/gamma"``. Computed as ``frac((gamma + sigma_i + h_j) / n)``,
    which equals the formula because :math:`\sigma_i + h_j + \gamma_{ij} < 2n`. On ``device``
    (default: the CPU): :math:`h` and :math:`\gamma` are drawn there, :math:`\sigma` (O(n)) on the
    CPU and moved.
    """
    sig, shift = _shared_parts(seed, n, d, rows, dtype, tag, device)
    gamma = private_rand(seed, f"{tag}/gamma", n, (d,), rows, dtype=dtype, device=device)
    return stratified_thresholds_(gamma, sig, shift.unsqueeze(0), n)


def _shared_parts(seed: int, n: int, d: int, rows: torch.Tensor | None, dtype: torch.dtype, tag: str,
                  device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma of the rows ``(rows,)``, h ``(d,)``) of :func:`correlated_thresholds`, as ``dtype``."""
    sigma = torch.randperm(n, generator=shared_generator(seed, f"{tag}/sigma")).to(device=device, dtype=dtype)
    shift = shared_integers(seed, f"{tag}/shift", n, d, device).to(dtype)
    return (sigma if rows is None else sigma[rows.to(sigma.device)]), shift


def stratified_thresholds_(
    gamma: torch.Tensor, ranks: torch.Tensor, shifts: torch.Tensor, sizes: int | torch.Tensor
) -> torch.Tensor:
    r"""CQ's threshold rule for clients of given ranks in groups of given sizes, in place on ``gamma``.

    .. math:: U_{ij} = \frac{((\rho_i + h_j) \bmod q_i) + \gamma_{ij}}{q_i}
              = \operatorname{frac}\Big(\frac{\gamma_{ij} + \rho_i + h_j}{q_i}\Big)

    (equal because :math:`\rho_i, h_j \le q_i - 1`). For each coordinate the ranks
    :math:`(\rho_i + h_j) \bmod q` of a group form a permutation, so its thresholds fall one per
    stratum ``[k/q, (k+1)/q)``. CQ uses one group (q = n, ranks :math:`\sigma`); PermK+CQ one per
    block of clients.

    Args:
        gamma: ``(rows, count)`` private uniforms in [0, 1) (overwritten with the thresholds).
        ranks: ``(rows,)`` ranks in {0..q_i-1}, in gamma's dtype.
        shifts: ``(1 or rows, count)`` shifts in {0..q_i-1}, in gamma's dtype.
        sizes: the group size q (int) or a ``(rows, 1)`` tensor of sizes.
    """
    inv = 1.0 / sizes if isinstance(sizes, int) else sizes.to(gamma.dtype).reciprocal()
    return gamma.add_(ranks.unsqueeze(1)).add_(shifts).mul_(inv).frac_()


@register("cq")
class CQ(RangeQuantizer):
    r"""Correlated quantization: the clients' rounding thresholds are stratified jointly.

    As IQ (same range, same levels, same payload), but client i's threshold for coordinate j is

    .. math:: U_{ij} = \frac{\pi^{(j)}_i + \gamma_{ij}}{n}, \qquad
              \pi^{(j)}_i = (\sigma_i + h_j) \bmod n,

    with a shared permutation :math:`\sigma` of the clients (tag ``"cq/sigma"``), a shared shift
    vector :math:`h \in \{0..n-1\}^d` (tag ``"cq/shift"``; Suresh's O(d) trick: for every j,
    :math:`\pi^{(j)}` is a uniform permutation) and private :math:`\gamma_{ij} \sim U[0,1)`
    (tag ``"cq/gamma"``). Each :math:`U_{ij}` is marginally uniform, so every client is
    individually unbiased; jointly the n thresholds of a coordinate fall one per stratum
    [k/n, (k+1)/n), which cancels error in the mean.

    Class: correlated (individually unbiased), :math:`\omega = d - 1` (s = 1); AB((d-1)/n, 0)
    over all inputs (never worse than IQ); on identical inputs the mean's error is
    :math:`\frac{4\|x\|^2}{s^2 n^2}\sum_j \phi(n t_j) \le \frac{d\|x\|^2}{s^2 n^2}`, about n times below IQ.
    Payload per client: as IQ, 32 + d * ceil(log2(s+1)) bits.

    Args:
        levels: number of intervals s of the uniform grid (1 = one bit).
        range: ``"norm"`` (default), ``"minmax"`` or ``"fixed"``.

    References:
        Suresh, Sun, Ro, Yu, Correlated quantization for distributed mean estimation and
        optimization, ICML 2022; Panferov, Demidovich, Rammal, Richtárik, Correlated Quantization for
        Faster Nonconvex Distributed Optimization, 2024, Def. 7, Alg. 2, Thm. 1, Cor. 2.
    """

    correlated = True

    def _thresholds(self, ctx: Context) -> torch.Tensor:
        return correlated_thresholds(ctx.seed, ctx.n, ctx.d, None if ctx.is_full else ctx.clients, ctx.dtype,
                                     device=ctx.device)

    def _fused_thresholds(self, ctx: Context) -> tuple[str, tuple[torch.Tensor, ...]] | None:
        if not plain(self, CQ, ("_thresholds",)):
            return None
        sig, shift = _shared_parts(ctx.seed, ctx.n, ctx.d, None if ctx.is_full else ctx.clients, ctx.dtype, "cq",
                                   ctx.device)
        # stratified_thresholds_ multiplies by the Python float 1/n, i.e. by 1/n rounded to the dtype
        inv = torch.full((1, 1), 1.0 / ctx.n, dtype=ctx.dtype, device=ctx.device)
        return "cq/gamma", (sig.unsqueeze(1), shift.unsqueeze(0), inv)

    def theory(self, n: int, d: int) -> CompressorTheory:
        s2 = self.levels**2
        return self._base_theory(
            n, d, "correlated",
            {"A_homogeneous": d / (n * n * s2), "A_paper": d / (4 * n * n * s2), "A_paper_iq": d / (4 * n * s2)},
        )


remember(CQ, ("_thresholds",))
