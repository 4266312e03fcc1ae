"""The collectives the DDP hooks use: plain mean, dense all-reduce, all-gather of byte payloads.

Each returns what it computed and the bytes this rank handed to the collective (its input
tensors), so that the hook state can keep an honest ledger. Byte payloads are gathered as two
tensor all-gathers (the lengths, then the payloads zero-padded to the longest; the tensor
collectives are shared with :mod:`commpress.network.dist`, in ``commpress.network._collectives``):
no pickling, no ``all_gather_object``.

A rank that fails to compress its bucket (a diverged gradient, say) still takes part in the
collective with a failure mark (length -1, or a flag entry in the all-reduce), so that every
rank raises instead of the others waiting forever.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from commpress.errors import DistributedError
from commpress.network._collectives import gather_int64, gather_padded_bytes

#: Bytes of the length word every rank sends before its payload.
LENGTH_BYTES = 8


def rank_and_world(group: Any) -> tuple[int, int]:
    """(rank in ``group``, size of ``group``); ``group=None`` is the default group."""
    if not dist.is_available() or not dist.is_initialized():
        raise DistributedError(
            "the commpress DDP hooks need an initialised torch.distributed process group; "
            "call torch.distributed.init_process_group(...) before training with the hook."
        )
    rank = dist.get_rank(group)
    if rank < 0:
        raise DistributedError(
            f"this process is not a member of the hook's process group {group!r}; "
            "register the hook with the group the DDP model was built with."
        )
    return rank, dist.get_world_size(group)


def plain_mean(x: torch.Tensor, group: Any, world: int) -> tuple[torch.Tensor, int]:
    """The uncompressed mean over ranks, computed as PyTorch's ``allreduce_hook`` does (divide, then sum)."""
    total = x.div(world)
    dist.all_reduce(total, group=group)
    return total, total.numel() * total.element_size()


def summed_mean(x: torch.Tensor | None, d: int, group: Any, world: int, like: torch.Tensor) -> tuple[torch.Tensor | None, int]:
    """Mean over ranks of the ranks' (decoded) rows ``x`` (``(d,)``): sum with all-reduce, divide.

    One extra entry carries the failure flag: ``x=None`` marks this rank as failed. Returns
    ``None`` for the mean when any rank failed.
    """
    total = like.new_zeros(d + 1)
    if x is None:
        total[d] = 1.0
    else:
        total[:d] = x
    dist.all_reduce(total, group=group)
    sent = total.numel() * total.element_size()
    if bool(total[d] != 0):
        return None, sent
    return total[:d].div_(world), sent


def all_gather_bytes(
    payload: bytes | None, group: Any, world: int, device: torch.device
) -> tuple[list[bytes] | None, int]:
    """Every rank's ``payload``, in rank order (``None`` if any rank passed ``None``: it failed),
    and the bytes this rank put into the all-gathers."""
    length = torch.tensor([-1 if payload is None else len(payload)], dtype=torch.int64, device=device)
    sizes = [int(v) for v in gather_int64(length, group, world)[:, 0].tolist()]
    if min(sizes) < 0:
        return None, LENGTH_BYTES
    width = max(sizes)
    if width == 0:  # nobody sends anything this round (e.g. importance sampling drew no one here)
        return [b""] * world, LENGTH_BYTES
    gathered = gather_padded_bytes(payload or b"", width, group, world, device)
    payloads = [t[:size].numpy().tobytes() for t, size in zip(gathered, sizes)]
    return payloads, LENGTH_BYTES + width
