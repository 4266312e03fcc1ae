"""Splitting ``total`` items into ``parts`` nearly equal consecutive groups (PermK, PermK+CQ).

Convention (ours; no paper fixes it): the first ``total % parts`` groups have
``ceil(total / parts)`` items, the others ``floor(total / parts)``; group ``g`` starts at
``g * floor + min(g, total % parts)``. Everything is vectorised over positions / group indices.
"""

from __future__ import annotations

from typing import Any

import torch

from commpress.errors import ConfigError


def group_sizes(total: int, parts: int, groups: torch.Tensor | None = None) -> torch.Tensor:
    """int64 sizes of the given groups (default: all ``parts``): ceil for ``g < total % parts``, else floor."""
    q, r = divmod(total, parts)
    g = torch.arange(parts) if groups is None else groups
    return (g < r).to(torch.int64).add_(q)


def group_starts(total: int, parts: int, groups: torch.Tensor | None = None) -> torch.Tensor:
    """int64 first position of the given groups (default: all ``parts``)."""
    q, r = divmod(total, parts)
    g = torch.arange(parts) if groups is None else groups
    return g * q + g.clamp(max=r)


def locate(pos: torch.Tensor, total: int, parts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Group and offset inside the group of every position in ``[0, total)`` (int64 tensors)."""
    q, r = divmod(total, parts)
    big = r * (q + 1)
    group = torch.where(pos < big, pos // (q + 1), r + (pos - big) // max(q, 1))
    return group, pos - group_starts(total, parts, group)


def check_bool(name: str, value: Any, owner: str) -> bool:
    """A strict boolean parameter (``1``/``"yes"`` are rejected: configs must say True/False)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{owner} needs {name} True or False; got {name}={value!r} ({type(value).__name__}).")
    return value
