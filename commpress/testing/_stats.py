"""Monte-Carlo tests with tolerances from the sample variance (the house rule: fixed seeds, no
hand-tuned tolerances). Samples are i.i.d. along dim 0."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def zscore(samples: torch.Tensor, expected: float | torch.Tensor) -> torch.Tensor:
    """``(mean - expected) / standard error`` along dim 0, the standard error from the sample
    variance (unbiased), elementwise over the other dimensions."""
    samples = samples.double()
    T = samples.shape[0]
    se = samples.std(dim=0, unbiased=True) / T**0.5
    diff = samples.mean(dim=0) - torch.as_tensor(expected, dtype=torch.float64)
    return diff / se.clamp_min(1e-300)


@dataclass(frozen=True)
class BoundTest:
    """Outcome of :func:`upper_bound_test`."""

    ok: bool
    mean: float
    se: float
    bound: float
    tolerance: float


def upper_bound_test(samples: torch.Tensor, bound: float, *, z: float, floor: float = 0.0) -> BoundTest:
    """One-sided: the sample mean of the scalar ``samples`` (``(T,)``) is at most ``bound + z * se + floor``,
    ``se`` the sample standard deviation over ``sqrt(T)``: fails only when the expectation exceeds
    ``bound`` by a margin that chance would reach with probability about ``Phi(-z)``."""
    samples = samples.double().reshape(-1)
    T = samples.numel()
    mean = float(samples.mean())
    se = float(samples.std(unbiased=True)) / T**0.5 if T > 1 else 0.0
    tol = z * se + floor
    return BoundTest(mean <= bound + tol, mean, se, float(bound), tol)
