"""Tensor-only collectives shared by the distributed network and the DDP hooks.

Nothing here pickles: every exchange is an all-gather of equal-sized tensors. Variable-length
byte payloads go in two steps, the lengths (small int64 vectors) first, then the bytes
zero-padded to the longest; per-rank row blocks of different heights are padded likewise and
cut back on arrival.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def gather_vectors(values: torch.Tensor, group: Any, world: int) -> torch.Tensor:
    """All-gather of one vector per rank (same length and dtype everywhere): ``(world, len)``."""
    mine = values.reshape(-1).contiguous()
    out = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(out, mine, group=group)
    return torch.stack(out)


def gather_int64(values: torch.Tensor, group: Any, world: int) -> torch.Tensor:
    """All-gather of one int64 vector per rank (same length everywhere): ``(world, len)``."""
    return gather_vectors(values.to(torch.int64), group, world)


def gather_padded_bytes(blob: bytes, width: int, group: Any, world: int, device: Any = None) -> list[torch.Tensor]:
    """All-gather of one byte string per rank, each zero-padded to ``width`` (>= every length).

    Returns the ``world`` padded ``(width,)`` uint8 tensors in rank order (on the CPU); the
    caller knows the true lengths from a previous :func:`gather_int64`.
    """
    mine = torch.zeros(width, dtype=torch.uint8)
    if blob:
        mine[: len(blob)] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    if device is not None:
        mine = mine.to(device)
    out = [torch.empty(width, dtype=torch.uint8, device=mine.device) for _ in range(world)]
    dist.all_gather(out, mine, group=group)
    return [t.cpu() for t in out]


def gather_rows(rows: torch.Tensor, counts: list[int], group: Any) -> torch.Tensor:
    """All-gather of per-rank row blocks of heights ``counts`` (rank r holds ``counts[r]`` rows).

    Each block is zero-padded to the tallest, gathered, cut back and concatenated in rank order:
    ``(sum(counts), *rows.shape[1:])``.
    """
    height = max(counts)
    padded = rows.new_zeros((height, *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    out = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(out, padded, group=group)
    return torch.cat([block[:c] for block, c in zip(out, counts)])
