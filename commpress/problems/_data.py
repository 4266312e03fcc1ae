r"""Where the rows of a linear-model problem come from: a dataset file, your arrays, or a seeded generator.

Files: a LibSVM name or path, or an ``.npz`` file of arrays (:mod:`commpress.datasets`). Arrays:
``data=(A, b)`` with ``A`` ``(m, d)`` and ``b`` ``(m,)`` as NumPy, SciPy sparse or torch
(:func:`data_arrays`); an ``.npz`` file is read exactly like them.

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

from typing import Any

import numpy as np
import torch

from commpress._rng import shared_generator
from commpress.errors import ConfigError, InputError, InputTypeError


def load_dataset(owner: str, dataset: str, n_features: int | None, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense rows ``(N, d)`` and raw labels ``(N,)`` float64 of a dataset (LibSVM or ``.npz``; name or path)."""
    from commpress import datasets

    X, y = datasets.load(dataset, n_features=n_features)
    return to_features(owner, X, dtype, f"dataset {dataset!r}"), torch.from_numpy(np.asarray(y, dtype=np.float64))


def is_arrays_file(dataset: str) -> bool:
    """Whether ``dataset`` names an ``.npz`` file of arrays (read like ``data=``, not like LibSVM)."""
    return str(dataset).lower().endswith(".npz")


def data_arrays(owner: str, data: Any, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``data=(A, b)`` checked: rows ``(m, d)`` in ``dtype`` and labels/targets ``(m,)`` float64.

    Fewer samples than clients is refused by the split (:func:`commpress.problems._splits.split_order`).

    ``A``: NumPy array, SciPy sparse matrix (any format) or torch tensor; ``b`` likewise
    (:func:`commpress.datasets.check_arrays`). Every bad input is one :class:`InputError`.
    """
    from commpress.datasets import check_arrays

    if isinstance(data, (str, bytes)) or not isinstance(data, (tuple, list)) or len(data) != 2:
        shown = type(data).__name__ + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        raise InputTypeError(
            f"{owner} needs data=(A, b): A the (m, d) features, b the (m,) labels or targets; got a {shown}. "
            f"For a file pass dataset='path' instead."
        )
    A, b = check_arrays(data[0], data[1], f"{owner} data=(A, b)")
    return to_features(owner, A, dtype, "A in data=(A, b)"), torch.from_numpy(b)


def to_features(owner: str, X: Any, dtype: torch.dtype, what: str) -> torch.Tensor:
    """A float64 array or sparse matrix as a dense tensor in ``dtype``, refusing values that overflow it."""
    dense = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    out = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float64)).to(dtype)
    if dtype != torch.float64 and not bool(torch.isfinite(out).all()):
        big = float(np.abs(dense).max())
        raise InputError(
            f"{owner}: {what} holds values up to {big:.3g}, beyond the range of {dtype}. Use dtype='float64' or "
            f"rescale the features."
        )
    return out


def binary_labels(owner: str, y: torch.Tensor, dataset: str, fix: str = "Use a binary LibSVM file.") -> torch.Tensor:
    """Labels mapped to {-1, +1}: the smaller value -> -1, the larger -> +1 (as the MiniFL and EF21 loaders)."""
    values = torch.unique(y)
    if values.numel() != 2:
        shown = values[:6].tolist()
        raise ConfigError(
            f"{owner} needs a binary dataset (two label values); {dataset} has {values.numel()} "
            f"({shown}{'...' if values.numel() > 6 else ''}). {fix}"
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
