"""Monte-Carlo helpers: z-scores with tolerances from the sample variance (``commpress.testing``'s)."""

from __future__ import annotations

import torch

from commpress.testing import zscore

__all__ = ["assert_mean", "seeds_stack", "zscore"]


def assert_mean(samples: torch.Tensor, expected, z: float = 5.0) -> None:
    """Every coordinate's sample mean is within ``z`` standard errors of ``expected``."""
    zs = zscore(samples, expected)
    worst = zs.abs().max().item()
    assert worst <= z, f"|z| = {worst:.2f} > {z}: mean {samples.double().mean(0)} vs expected {expected}"


def seeds_stack(fn, T: int) -> torch.Tensor:
    """Stack fn(seed) for seed in range(T)."""
    return torch.stack([fn(s) for s in range(T)])
