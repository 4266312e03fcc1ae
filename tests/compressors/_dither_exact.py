"""Exact closed forms of spec compressors.md §18 for the norm + sign + level quantizers.

Each is computed with the float32 header the compressor really sends (the norm rounded upward),
so the Monte-Carlo tests compare against the exact expectation, not an approximation of it.
"""

from __future__ import annotations

import math

import torch

from commpress.compressors.base import f32_up


def header_norm(v: torch.Tensor, p) -> float:
    """The float32 norm header of a float64 vector (rounded upward)."""
    p = math.inf if p == "inf" else p
    norm = torch.linalg.vector_norm(v, ord=p)
    return f32_up(norm.reshape(1)).double().item()


def phi(t: torch.Tensor) -> torch.Tensor:
    f = t - t.floor()
    return f * (1 - f)


def dithering_error(x: torch.Tensor, p, s: int) -> float:
    """e(x) = N^2 / s^2 * sum_j phi(s y_j), y_j = |x_j| / N (spec §2, §18)."""
    N = header_norm(x, p)
    if N == 0:
        return 0.0
    return (N**2 / s**2 * phi(s * x.abs() / N).sum()).item()


def block_error(x: torch.Tensor, B: int, p=2, s: int = 1) -> float:
    """Sum of the dithering errors of the blocks [0, B), [B, 2B), ... (spec §6)."""
    return sum(dithering_error(x[i : i + B], p, s) for i in range(0, x.numel(), B))


def natural_levels(s: int) -> torch.Tensor:
    """{0, 2^(1-s), ..., 1/2, 1} (spec §3.1)."""
    return torch.tensor([0.0] + [2.0 ** (u - s) for u in range(1, s + 1)], dtype=torch.float64)


def natural_dithering_error(x: torch.Tensor, p, s: int) -> float:
    """e(x) = N^2 sum_j (l_{u+1} - y_j)(y_j - l_u) with l_u <= y_j <= l_{u+1} (spec §3.1)."""
    N = header_norm(x, p)
    if N == 0:
        return 0.0
    y = x.abs() / N
    levels = natural_levels(s)
    u = (torch.searchsorted(levels, y, right=True) - 1).clamp(max=s - 1)
    low, high = levels[u], levels[u + 1]
    return (N**2 * ((high - y) * (y - low)).sum()).item()


def natural_error(x: torch.Tensor) -> float:
    """e(x) = sum_j (2^(a+1) - |x_j|)(|x_j| - 2^a), a = floor(log2 |x_j|) (spec §3.2), with the
    bottom interval [0, 2^-126] for tiny values."""
    a = x.abs()
    low = torch.where(a >= 2.0**-126, torch.exp2(torch.floor(torch.log2(a.clamp_min(2.0**-126)))), torch.zeros_like(a))
    high = torch.where(a >= 2.0**-126, 2 * low, torch.full_like(a, 2.0**-126))
    return ((high - a) * (a - low)).sum().item()
