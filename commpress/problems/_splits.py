"""Splitting the N rows of a dataset over n clients, stored as padded dense blocks.

Splits (``split=``):

- ``"contiguous"`` (the "uniform segments" of Panferov et al. 2024, Sec. 4.2): the rows in file
  order cut into n consecutive blocks whose sizes differ by at most one; the first ``N mod n``
  blocks get the extra row (MiniFL's rule). E.g. N = 10, n = 4 -> sizes 3, 3, 2, 2.
- ``"shuffled"``: the rows permuted by a seeded uniform permutation (stream
  ``(seed, "problems/split/shuffled")``), then cut as above: i.i.d.-like clients.
- ``"label_skew"``: the rows stably sorted by label (ties keep file order), then cut as above:
  each client sees one label, or two at a class boundary (the pathological non-i.i.d. split).

Storage: client i's rows are ``features[i, :m_i]``; rows ``m_i..m_max-1`` are zero padding with
``mask`` False. For contiguous-type splits ``m_max - m_i <= 1``, so the padding costs at most one
row per client and every oracle is one batched matmul.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from commpress._rng import shared_generator
from commpress.errors import ConfigError

#: The ways to split a data set's rows across clients (``split=`` of the problems): ``"contiguous"``
#: (consecutive blocks in file order), ``"shuffled"`` (a seeded permutation first), ``"label_skew"``
#: (sorted by label first: each client sees one label, or two at a boundary).
SPLITS = ("contiguous", "shuffled", "label_skew")


@dataclass(frozen=True)
class ClientData:
    """Rows of every client as padded tensors.

    ``features`` ``(n, m_max, d)``; ``targets`` ``(n, m_max)`` (labels or regression targets,
    0 on padding); ``mask`` ``(n, m_max)`` bool; ``counts`` ``(n,)`` int64; ``rows`` ``(n, m_max)``
    the original row number of each entry (-1 on padding).
    """

    features: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    counts: torch.Tensor
    rows: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.counts.numel())

    @property
    def d(self) -> int:
        return int(self.features.shape[-1])


def block_sizes(N: int, n: int) -> torch.Tensor:
    """Sizes of n contiguous blocks of N rows: differ by at most one, larger blocks first."""
    base, extra = divmod(N, n)
    return torch.full((n,), base, dtype=torch.int64) + (torch.arange(n) < extra).long()


def split_order(N: int, n: int, split: str, labels: torch.Tensor | None, seed: int, owner: str) -> torch.Tensor:
    """The row order whose consecutive blocks are the clients, ``(N,)`` int64."""
    if n > N:
        raise ConfigError(
            f"{owner}: n_clients={n} exceeds the number of samples N={N}; every client needs at "
            f"least one sample. Use n_clients <= {N}."
        )
    if split == "contiguous":
        return torch.arange(N)
    if split == "shuffled":
        return torch.randperm(N, generator=shared_generator(seed, "problems/split/shuffled"))
    if split == "label_skew":
        if labels is None:
            raise ConfigError(f"{owner}: split='label_skew' needs labels; use 'contiguous' or 'shuffled'.")
        return torch.sort(labels.reshape(-1), stable=True).indices
    raise ConfigError(f"{owner} needs split in {list(SPLITS)}; got split={split!r}.")


def partition(
    X: torch.Tensor,
    y: torch.Tensor,
    n: int,
    split: str,
    seed: int,
    owner: str,
    labels: torch.Tensor | None = None,
) -> ClientData:
    """Split rows ``X`` ``(N, *feature_shape)``, ``y`` ``(N,)`` over n clients (padded layout).

    ``labels`` (default ``y``) is what ``label_skew`` sorts by.
    """
    N = int(X.shape[0])
    order = split_order(N, n, split, y if labels is None else labels, seed, owner)
    counts = block_sizes(N, n)
    m_max = int(counts.max())
    offsets = torch.cumsum(counts, 0) - counts
    j = torch.arange(m_max)
    mask = j[None, :] < counts[:, None]
    position = torch.where(mask, offsets[:, None] + j[None, :], torch.zeros((), dtype=torch.int64))
    rows = order[position]
    shape = (n, m_max) + (1,) * (X.dim() - 1)
    features = X[rows] * mask.reshape(shape).to(X.dtype)
    targets = y[rows] * mask.to(y.dtype)
    return ClientData(features, targets, mask, counts, torch.where(mask, rows, -1))
