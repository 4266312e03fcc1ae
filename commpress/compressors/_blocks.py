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


_HOOKS = ("encode_message", "decode_message", "_encode", "_decode", "layout", "_layout", "_checked_encode")
_OWN_HOOKS: dict[tuple[type, type], bool] = {}


def hooks_unchanged(obj: Any, owner: type) -> bool:
    """``type(obj)`` runs ``owner``'s message hooks: no subclass redefines encode/decode/layout.

    A fused ``apply`` of ``owner`` computes ``decode(encode(X))`` its own way; a subclass that
    changes a hook (a plugin, a test's broken variant) must take the generic path instead.
    """
    key = (type(obj), owner)
    got = _OWN_HOOKS.get(key)
    if got is None:
        got = _OWN_HOOKS[key] = all(getattr(type(obj), h) is getattr(owner, h) for h in _HOOKS)
    return got
