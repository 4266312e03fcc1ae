"""Monte-Carlo helpers: z-scores with tolerances from the sample variance."""

from __future__ import annotations

import torch


def zscore(samples: torch.Tensor, expected: float | torch.Tensor) -> torch.Tensor:
    """(mean - expected) / standard error, along dim 0 (samples are i.i.d. over dim 0)."""
    samples = samples.double()
    T = samples.shape[0]
    se = samples.std(dim=0, unbiased=True) / T**0.5
    diff = samples.mean(dim=0) - torch.as_tensor(expected, dtype=torch.float64)
    return diff / se.clamp_min(1e-300)


def assert_mean(samples: torch.Tensor, expected, z: float = 5.0) -> None:
    """Every coordinate's sample mean is within ``z`` standard errors of ``expected``."""
    zs = zscore(samples, expected)
    worst = zs.abs().max().item()
    assert worst <= z, f"|z| = {worst:.2f} > {z}: mean {samples.double().mean(0)} vs expected {expected}"


def seeds_stack(fn, T: int) -> torch.Tensor:
    """Stack fn(seed) for seed in range(T)."""
    return torch.stack([fn(s) for s in range(T)])
