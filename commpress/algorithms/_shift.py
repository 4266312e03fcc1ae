"""Shared pieces of the shifted methods (DIANA, VR-DIANA): the shift stepsize α and h^0."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms.base import INIT_ROUND, Algorithm, check_positive, compressor_theory
from commpress.errors import ConfigError

H0_CHOICES = ("zero", "grad")


def shift_alpha(algo: Algorithm, alpha: Any) -> tuple[float, str]:
    """α given, else :math:`1/(\\omega+1)` from the compressor's theory (DIANA: Mishchenko et al. 2019)."""
    owner = type(algo).__name__
    if alpha is not None:
        return check_positive("alpha", alpha, owner, upper=1.0), "given"
    th = compressor_theory(algo.compressor, algo.n, algo.d)
    if th is None or th.omega is None or not math.isfinite(th.omega):
        raise ConfigError(
            f"{owner}: the compressor {algo.compressor!r} states no finite omega, so the default "
            "alpha = 1/(omega+1) is unknown; pass alpha= in (0, 1]."
        )
    return 1.0 / (th.omega + 1.0), "1/(omega+1)"


def check_h0(h0: Any, owner: str) -> str:
    if h0 not in H0_CHOICES:
        raise ConfigError(f"{owner} needs h0 in {list(H0_CHOICES)} (h_i^0 = 0 or ∇f_i(x^0)); got h0={h0!r}.")
    return h0


def initial_shifts(algo: Algorithm, h0: str, x: torch.Tensor, grads: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(h_i^0 rows, h^0): zeros, or the local gradients at x^0 (the server learns their mean
    from one dense uplink, charged to the initialisation round)."""
    if h0 == "zero":
        h_i = torch.zeros(algo.network.rows, algo.d, dtype=x.dtype, device=x.device)
        return h_i, torch.zeros(algo.d, dtype=x.dtype, device=x.device)
    G = algo.oracle.exact(x) if grads is None else grads
    received = algo._up(G, algo.dense, INIT_ROUND, "h0")
    # The clients keep exactly what the server decoded, so h = mean(h_i) holds exactly.
    return received, algo.network.mean(received)
