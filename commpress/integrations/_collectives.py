"""The collectives the DDP hooks use, launched asynchronously: plain mean, dense all-reduce,
all-gather of byte payloads.

Each launcher starts its collective with ``async_op=True`` and returns a :class:`Launched` (the
collective's future and what to compute from its result, extended step by step with
:meth:`Launched.then`) and the bytes this rank handed to the collective (its input tensors), so
that the hook state can keep an honest ledger. Byte payloads are gathered without pickling: with
one all-gather of fixed-size frames (an 8-byte length word, then the payload zero-padded to a
width every rank computes from the compressor's layout) when the payload sizes are known before
encoding, else as two tensor all-gathers (the lengths, synchronously, then the padded payloads).

**Order of collectives.** Ranks must issue the collectives of a process group in the same order.
Every collective here is launched by the hook itself (on DDP's autograd thread, in bucket order),
never from a completion callback: a callback runs when its collective completes (on gloo, on one
of the process group's worker threads), so a collective launched there could be issued in a
different order on another rank, also relative to DDP's own collectives (the unused-parameter map
of ``find_unused_parameters``). This is why payloads of unknown size exchange their lengths
synchronously instead of chaining the payload gather on the length gather's future.

A rank that fails to compress its bucket (a diverged gradient, say) still takes part in the
collective with a failure mark (length -1, or a flag entry in the all-reduce), so that every
rank raises instead of the others waiting forever.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist

from commpress.errors import DistributedError
from commpress.network._collectives import gather_int64

#: Bytes of the length word every rank sends with (or before) its payload.
LENGTH_BYTES = 8

_gather_into_tensor = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


class Launched:
    """A collective in flight and the computation on its result.

    ``future`` is the collective's ``torch.futures.Future`` (``work.get_future()``); ``finish(future)``
    computes the value (it calls ``future.value()``, which raises if the collective failed).
    :meth:`then` appends a step; :meth:`to_future` hands the whole chain to DDP.
    """

    __slots__ = ("future", "finish")

    def __init__(self, future: torch.futures.Future, finish: Callable[[torch.futures.Future], Any]) -> None:
        self.future = future
        self.finish = finish

    @classmethod
    def done(cls, value: Any) -> "Launched":
        """An already completed step (nothing to communicate)."""
        fut: torch.futures.Future = torch.futures.Future()
        fut.set_result(None)
        return cls(fut, lambda _: value)

    def then(self, step: Callable[[Any], Any]) -> "Launched":
        """Apply ``step`` to the value once the collective has completed."""
        finish = self.finish
        return Launched(self.future, lambda fut: step(finish(fut)))

    def to_future(self, on_error: Callable[[BaseException], None] | None = None) -> torch.futures.Future:
        """The future DDP waits for: ``future.then(finish)``, as PyTorch's own hooks chain theirs.

        It completes with the chain's value, or with the error of the collective or of any step
        (``on_error`` may annotate it first): ``wait()``, and DDP's ``backward()``, then raise a
        ``RuntimeError`` whose message starts with the original exception's class, message and
        notes. (``Future.set_exception`` would keep the class for a Python waiter, but DDP's C++
        reducer would read the exception as the bucket's value: "Unable to cast ... to Tensor".)

        The chain runs when the collective completes: on gloo on the thread that completes it, on
        NCCL at once (its futures complete when the work is queued; the chain's kernels are ordered
        after the collective on the stream, and the returned future carries that stream to DDP).
        """
        finish = self.finish

        def complete(fut: torch.futures.Future) -> Any:
            try:
                return finish(fut)
            except Exception as err:
                if on_error is not None:
                    on_error(err)
                raise

        return self.future.then(complete)


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


def plain_mean(x: torch.Tensor, group: Any, world: int) -> tuple[Launched, int]:
    """The uncompressed mean over ranks, computed as PyTorch's ``allreduce_hook`` does (divide, then sum)."""
    total = x.div(world)
    work = dist.all_reduce(total, group=group, async_op=True)
    return Launched(work.get_future(), lambda fut: _checked(fut, total)), total.numel() * total.element_size()


def summed_mean(x: torch.Tensor | None, d: int, group: Any, world: int, like: torch.Tensor) -> tuple[Launched, int]:
    """Mean over ranks of the ranks' (decoded) rows ``x`` (``(d,)``): sum with all-reduce, divide.

    One extra entry carries the failure flag: ``x=None`` marks this rank as failed (its row is NaN,
    so that the mean is NaN on every rank even before anyone reads the flag). The value is
    ``(mean, flag)``, ``flag`` a one-entry tensor on the device of ``like``, nonzero when any rank
    failed; reading it is left to the caller (on a GPU, a read waits for the all-reduce).
    """
    total = like.new_zeros(d + 1)
    if x is None:
        total[:d] = float("nan")
        total[d] = 1.0
    else:
        total[:d] = x
    work = dist.all_reduce(total, group=group, async_op=True)

    def finish(fut: torch.futures.Future) -> tuple[torch.Tensor, torch.Tensor]:
        _checked(fut, total)
        return total[:d].div_(world), total[d:]

    return Launched(work.get_future(), finish), total.numel() * total.element_size()


def gather_framed(payload: bytes | None, width: int, group: Any, world: int, device: torch.device
                  ) -> tuple[Launched, int]:
    """Every rank's ``payload`` with one all-gather, when every rank knows ``width`` >= every length.

    Each rank sends a frame of ``LENGTH_BYTES + width`` bytes: its length (-1: it failed) as an
    int64, then the payload zero-padded. The value is the payloads in rank order, or ``None`` if
    any rank failed. The frames are built and read on the host (the compressor's bytes) and
    cross the device, when there is one, as uint8 tensors.
    """
    frame = LENGTH_BYTES + width
    mine = torch.zeros(frame, dtype=torch.uint8)
    size = -1 if payload is None else len(payload)
    if size > width:
        raise DistributedError(f"a payload of {size} bytes does not fit the {width}-byte frame")  # caller's bug
    mine[:LENGTH_BYTES] = torch.tensor([size], dtype=torch.int64).view(torch.uint8)
    if payload:
        mine[LENGTH_BYTES : LENGTH_BYTES + size] = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
    mine = mine.to(device)
    out = torch.empty(world * frame, dtype=torch.uint8, device=mine.device)
    work = _gather_into_tensor(out, mine, group=group, async_op=True)

    def finish(fut: torch.futures.Future) -> list[bytes] | None:
        _checked(fut, out)
        host = out.cpu().reshape(world, frame)  # the bytes path: the payloads are parsed on the host
        words = host[:, :LENGTH_BYTES].reshape(-1).clone(memory_format=torch.contiguous_format)  # aligned, dense
        sizes = words.view(torch.int64).tolist()
        if min(sizes) < 0:
            return None
        return [host[r, LENGTH_BYTES : LENGTH_BYTES + s].numpy().tobytes() for r, s in enumerate(sizes)]

    return Launched(work.get_future(), finish), frame


def gather_bytes(payload: bytes | None, group: Any, world: int, device: torch.device) -> tuple[Launched, int]:
    """Every rank's ``payload`` when their sizes are not known in advance: the lengths first, with
    a blocking all-gather (its result sizes the next one), then the payloads zero-padded to the
    longest, asynchronously. The value is the payloads in rank order (``None`` if any rank failed)."""
    length = torch.tensor([-1 if payload is None else len(payload)], dtype=torch.int64, device=device)
    sizes = [int(v) for v in gather_int64(length, group, world)[:, 0].tolist()]
    if min(sizes) < 0:
        return Launched.done(None), LENGTH_BYTES
    width = max(sizes)
    if width == 0:  # nobody sends anything this round (e.g. importance sampling drew no one here)
        return Launched.done([b""] * world), LENGTH_BYTES
    mine = torch.zeros(width, dtype=torch.uint8)
    if payload:
        mine[: len(payload)] = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
    mine = mine.to(device)
    out = torch.empty(world * width, dtype=torch.uint8, device=mine.device)
    work = _gather_into_tensor(out, mine, group=group, async_op=True)

    def finish(fut: torch.futures.Future) -> list[bytes]:
        _checked(fut, out)
        host = out.cpu().reshape(world, width)
        return [host[r, :s].numpy().tobytes() for r, s in enumerate(sizes)]

    return Launched(work.get_future(), finish), LENGTH_BYTES + width


def _checked(fut: torch.futures.Future, result: torch.Tensor) -> torch.Tensor:
    fut.value()  # raises the collective's error, if it failed
    return result
