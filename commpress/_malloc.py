"""Keep large freed buffers in the process instead of returning them to the OS (glibc only).

glibc serves allocations above a dynamic threshold (128 KiB at start) with fresh ``mmap`` pages
and returns them on ``free``, so a loop that allocates and frees tensors of a few MB pays a page
fault per 4 KiB page every round. On this project's 2-core VM that was 0.5 ms per MB: a MARINA
round at d = 10^6 spent more time faulting pages than computing. :func:`keep_freed_memory` sets
glibc's ``M_MMAP_THRESHOLD`` to its 32 MiB maximum and ``M_TRIM_THRESHOLD`` to 1 GiB (``mallopt``),
so buffers up to 32 MiB are reused from the heap, and ``M_ARENA_MAX`` to 1, so that threads
(gloo's workers, where the asynchronous DDP hooks decode) reuse the same heap instead of arenas of
their own that are trimmed every step. Measured on 2 x 10^6 float64 (16 MB)
temporaries, 4 alive at once: 30-36 ms per round of allocations before, 2.7 ms after.

It changes process-wide allocator settings, so the library never calls it on import: the
``commpress`` command, the distributed workers and the benchmarks call it for their own process.
``COMMPRESS_KEEP_FREED_MEMORY=0`` turns it off. Elsewhere (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit hosts
_TRIM_THRESHOLD = 1024 * 1024 * 1024
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's allocator as described above; True when the settings took effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("COMMPRESS_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _done
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    # One arena: the DDP hooks decode on gloo's worker threads, whose own arenas handed their
    # freed heaps back to the OS every step (10M-parameter buckets: 1.8 s per step against 1.2 s).
    _done = bool(mallopt(_M_ARENA_MAX, 1)) and _done
    return _done


#: CPU tensors of at least this many bytes are allocated through NumPy (see :func:`empty`).
_HUGE_BYTES = 1 << 22  # NumPy madvises huge pages from 4 MiB on
_NUMPY_DTYPES = {
    "float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32",
    "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
}


def empty(shape: tuple[int, ...], dtype: "torch.dtype", device: "torch.device") -> "torch.Tensor":
    """An uninitialised tensor, like ``torch.empty``, whose first touch is cheap on the CPU.

    torch's CPU allocator takes large blocks from fresh ``mmap`` pages and faults them in 4 KiB at
    a time on first write; NumPy asks the kernel for transparent huge pages
    (``madvise(MADV_HUGEPAGE)``) on arrays of 4 MiB and more, so a large CPU result allocated
    through NumPy and wrapped with ``torch.from_numpy`` costs a quarter of the time to fill.
    Measured on this project's 2-core VM, THP in ``madvise`` mode, 2^24 float32 written once:
    1.75 ns per value with ``torch.empty``, 0.42 ns through NumPy (``THP_MEM_ALLOC_ENABLE=1``
    gives torch the same pages for every tensor). Other devices, small tensors and dtypes NumPy
    lacks use ``torch.empty``; the values written are the same either way.
    """
    import torch

    count = 1
    for s in shape:
        count *= int(s)
    if count * dtype.itemsize < _HUGE_BYTES:  # first: small tensors are most calls, and this is on hot paths
        return torch.empty(shape, dtype=dtype, device=device)
    device = torch.device(device)
    name = str(dtype).removeprefix("torch.")
    if device.type != "cpu" or name not in _NUMPY_DTYPES:
        return torch.empty(shape, dtype=dtype, device=device)
    import numpy as np

    return torch.from_numpy(np.empty(tuple(int(s) for s in shape), dtype=_NUMPY_DTYPES[name]))
