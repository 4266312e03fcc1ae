"""Proximal operators of the regularisers the proximal methods support."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError

REGULARIZERS = (None, "l1", "l2")


def check_regularizer(reg: Any, lam: Any, owner: str) -> tuple[str | None, float]:
    r"""Validate ``R``: ``None``; ``"l1"``: :math:`\lambda\|x\|_1`; ``"l2"``: :math:`\frac\lambda2\|x\|^2`."""
    if reg not in REGULARIZERS:
        raise ConfigError(f"{owner} needs reg in {list(REGULARIZERS)}; got reg={reg!r}.")
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs a number lam >= 0; got lam={lam!r}.") from None
    if not (lam >= 0 and math.isfinite(lam)):
        raise ConfigError(f"{owner} needs lam >= 0 (regularisation strength); got lam={lam!r}.")
    return reg, lam


def prox(x: torch.Tensor, gamma: float, reg: str | None, lam: float) -> torch.Tensor:
    r"""``prox_{γR}(x)``: soft-thresholding at γλ (l1) or :math:`x/(1+\gamma\lambda)` (l2)."""
    if reg is None or lam == 0:
        return x
    if reg == "l2":
        return x / (1.0 + gamma * lam)
    return torch.sign(x) * (x.abs() - gamma * lam).clamp(min=0.0)


def regularizer_value(x: torch.Tensor, reg: str | None, lam: float) -> float:
    """R(x)."""
    if reg is None or lam == 0:
        return 0.0
    if reg == "l2":
        return 0.5 * lam * float(x.dot(x))
    return lam * float(x.abs().sum())
