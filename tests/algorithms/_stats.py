"""z-scores with the standard error from the sample variance (``commpress.testing.zscore``)."""

from __future__ import annotations

import torch

from commpress.testing import zscore

__all__ = ["max_abs_z", "zscore"]


def max_abs_z(samples: torch.Tensor, expected) -> float:
    return float(zscore(samples, expected).abs().max())
