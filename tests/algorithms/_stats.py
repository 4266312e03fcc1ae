"""z-scores with the standard error from the sample variance."""

from __future__ import annotations

import torch


def zscore(samples: torch.Tensor, expected) -> torch.Tensor:
    samples = samples.double()
    se = samples.std(dim=0, unbiased=True) / samples.shape[0] ** 0.5
    return (samples.mean(dim=0) - torch.as_tensor(expected, dtype=torch.float64)) / se.clamp_min(1e-300)


def max_abs_z(samples: torch.Tensor, expected) -> float:
    return float(zscore(samples, expected).abs().max())
