"""Helpers of the problem tests: the shipped datasets, a reference split."""

from __future__ import annotations

import torch

import commpress as cp
import commpress.datasets  # noqa: F401  (cp.datasets until commpress/__init__ imports it)


def need(name: str) -> None:
    """Check that ``name`` is reachable; the datasets these tests use ship with the package, so a
    missing one is an error (never a skip)."""
    cp.datasets.locate(name)


def reference_blocks(X: torch.Tensor, y: torch.Tensor, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Contiguous split written independently: sizes ceil/floor, larger blocks first."""
    N = X.shape[0]
    out, start = [], 0
    for i in range(n):
        size = N // n + (1 if i < N % n else 0)
        out.append((X[start:start + size], y[start:start + size]))
        start += size
    assert start == N
    return out
