r"""Where the rows of a linear-model problem come from: a LibSVM dataset or a seeded generator.

Synthetic generator (ours; the data laws of the synthetic tasks of Huang et al., NEOLITHIC,
NeurIPS 2022, are not published in the talk we hold).
With ``h`` = heterogeneity and ``sigma`` = noise, drawn from the stream
``(seed, "problems/synthetic")`` in this order:

.. math::
    \bar w \sim \mathcal N(0, I_d/d),\quad w_i = \bar w + h\,\zeta_i,\ \zeta_i \sim \mathcal N(0, I_d/d),\quad
    \mu_i = h\,\eta_i,\ \eta_i \sim \mathcal N(0, I_d),\\
    a_{ij} = \mu_i + \epsilon_{ij},\ \epsilon_{ij} \sim \mathcal N(0, I_d),\qquad
    t_{ij} = a_{ij}^\top w_i + \sigma\,\xi_{ij},\ \xi_{ij} \sim \mathcal N(0, 1).

Regression uses ``y_ij = t_ij``; classification ``b_ij = sign(t_ij)`` (0 mapped to +1).
``h = 0``: every client draws from one law (i.i.d. clients); larger ``h`` shifts both the
features and the true model per client.
"""

from __future__ import annotations

import numpy as np
import torch

from commpress._rng import shared_generator
from commpress.errors import ConfigError


def load_dataset(owner: str, dataset: str, n_features: int | None, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense rows ``(N, d)`` and raw labels ``(N,)`` of a LibSVM dataset (name or path)."""
    from commpress import datasets

    X, y = datasets.load(dataset, n_features=n_features)
    return torch.from_numpy(X.toarray()).to(dtype), torch.from_numpy(np.asarray(y)).to(dtype)


def binary_labels(owner: str, y: torch.Tensor, dataset: str) -> torch.Tensor:
    """Labels mapped to {-1, +1}: the smaller value -> -1, the larger -> +1 (as the MiniFL and EF21 loaders)."""
    values = torch.unique(y)
    if values.numel() != 2:
        shown = values[:6].tolist()
        raise ConfigError(
            f"{owner} needs a binary dataset (two label values); {dataset!r} has {values.numel()} "
            f"({shown}{'...' if values.numel() > 6 else ''}). Use a binary LibSVM file."
        )
    return torch.where(y == values[0], -1.0, 1.0).to(y.dtype)


def synthetic_linear(
    n: int, m: int, d: int, heterogeneity: float, noise: float, seed: int, dtype: torch.dtype, classification: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``(n*m, d)`` (client i = rows ``i*m..(i+1)*m-1``) and targets ``(n*m,)``."""
    g = shared_generator(seed, "problems/synthetic")
    f64 = torch.float64
    w_bar = torch.randn(d, generator=g, dtype=f64) / d**0.5
    w = w_bar + heterogeneity * torch.randn((n, d), generator=g, dtype=f64) / d**0.5
    mu = heterogeneity * torch.randn((n, d), generator=g, dtype=f64)
    a = mu[:, None, :] + torch.randn((n, m, d), generator=g, dtype=f64)
    t = torch.einsum("nmd,nd->nm", a, w) + noise * torch.randn((n, m), generator=g, dtype=f64)
    if classification:
        t = torch.where(t >= 0, 1.0, -1.0).to(f64)
    return a.reshape(n * m, d).to(dtype), t.reshape(n * m).to(dtype)
