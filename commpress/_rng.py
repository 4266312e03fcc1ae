"""Keyed randomness: every random draw is a pure function of (seed, tag, client).

Spec: ``shared/spec/compressors.md`` §0.3. A *stream* is identified by (seed, tag, c) with
``c = -1`` for the shared stream of the round and ``c = i`` for client ``i``'s private stream.
The key is

    k = SM(SM(SM(seed) xor FNV1a64(tag)) xor (c + 1))        (all arithmetic mod 2^64)

with SM the splitmix64 finaliser, and a CPU ``torch.Generator`` is seeded with ``k mod 2^63``.
Draws are made on the CPU and moved to the device afterwards (CUDA generators give other
numbers, which would break simulator == distributed equality).

Private draws for a *batch* of clients are made as one matrix: ``private_rand(seed, tag, n,
shape, clients)`` draws the ``(n, *shape)`` matrix from the stream ``(seed, tag, -2)`` and returns
the rows ``clients``. Row ``i`` is a pure function of (seed, tag, n, shape, i), never of the
position of a client in the batch, so any process computes exactly its own clients' draws.
It costs one vectorised draw for the whole population (no Python loop over clients); a process
that holds only a few of many clients pays for all n rows, which is cheap next to the
gradient it compresses.
"""

from __future__ import annotations

import math

import torch

_MASK64 = (1 << 64) - 1
SEED_LIMIT = 1 << 63


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _fnv1a64(tag: str) -> int:
    h = 0xCBF29CE484222325
    for byte in tag.encode("ascii"):
        h = ((h ^ byte) * 0x100000001B3) & _MASK64
    return h


def stream_key(seed: int, tag: str, client: int = -1) -> int:
    """The 63-bit generator seed of stream (seed, tag, client); client -1 is the shared stream."""
    k = _splitmix64(_splitmix64(_splitmix64(int(seed) & _MASK64) ^ _fnv1a64(tag)) ^ ((client + 1) & _MASK64))
    return k % SEED_LIMIT


def derive_seed(seed: int, *parts: int | str) -> int:
    """A new round seed from a base seed and labels (e.g. the round number): a pure function."""
    k = int(seed) & _MASK64
    for part in parts:
        mixed = _fnv1a64(part) if isinstance(part, str) else (int(part) & _MASK64)
        k = _splitmix64(k ^ mixed)
    return k % SEED_LIMIT


def generator(seed: int, tag: str, client: int = -1) -> torch.Generator:
    """A CPU generator for stream (seed, tag, client)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(stream_key(seed, tag, client))
    return g


def shared_generator(seed: int, tag: str) -> torch.Generator:
    """The shared stream of the round: identical on every process."""
    return generator(seed, tag, -1)


def private_rand(
    seed: int,
    tag: str,
    n: int,
    shape: tuple[int, ...],
    clients: torch.Tensor | None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Uniform [0, 1) draws, row i = client i's private draws of the round.

    Returns ``(len(clients), *shape)`` (or ``(n, *shape)`` when ``clients`` is None), on the CPU.
    """
    g = generator(seed, tag, -2)
    full = torch.rand((n, *shape), generator=g, dtype=dtype)
    return full if clients is None else full[clients]


def private_randint(
    seed: int, tag: str, n: int, high: int, shape: tuple[int, ...], clients: torch.Tensor | None
) -> torch.Tensor:
    """Integers in [0, high), row i = client i's private draws (see :func:`private_rand`)."""
    g = generator(seed, tag, -2)
    full = torch.randint(0, high, (n, *shape), generator=g)
    return full if clients is None else full[clients]


def private_randperm_topk(
    seed: int, tag: str, n: int, d: int, k: int, clients: torch.Tensor | None
) -> torch.Tensor:
    """For each client a uniformly random k-subset of range(d), sorted: ``(rows, k)`` int64.

    The subset of :func:`private_subset_mask` as sorted index lists.
    """
    mask = private_subset_mask(seed, tag, n, d, k, clients)
    rows = mask.shape[0]
    flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]  # row-major: each row's k positions, ascending
    return flat.view(rows, k) - (torch.arange(rows) * d).unsqueeze(1)


def private_subset_mask(
    seed: int, tag: str, n: int, d: int, k: int, clients: torch.Tensor | None
) -> torch.Tensor:
    """For each client a uniformly random k-subset of range(d) as a ``(rows, d)`` bool mask (k True per row).

    Definition (a pure function of (seed, tag, n, d, k, client)): the ``(n, ceil(d/2))`` matrix of
    full-range 64-bit words drawn with ``Tensor.random_`` from the stream ``(seed, tag, -2)`` is
    read as int32 keys, row i's first d keys belonging to client i; the subset is the k smallest
    keys, ties broken by the lower index (``k == d``: everything, nothing drawn). Exactly uniform
    up to ties: the total-variation distance to the uniform k-subset is at most the chance that
    another key equals the k-th smallest, below ``d / 2^32`` (2.4e-4 at d = 2^20). (float32
    uniforms, with 2^24 values, would make that d / 2^24.)

    Computation (same result as sorting each row). Measured on one loaded core against
    ``torch.rand`` of the same shape, k = d/10, mask / sorted indices: (16, 2^20) 1.0-1.5x /
    1.3-1.9x, (256, 4096) 2.1-2.6x / 2.8-3.2x; the former ``torch.rand`` + ``topk`` + ``sort``
    took 3-5x / 4-6x, ``argsort`` 14x+. The keys are 2 per 64-bit generator call (0.6-0.9x); a
    window ``[lo, hi)`` of key values holding the k-th smallest key with high probability (its
    expected rank +- (4 sigma + 4)) is cut out, the keys below ``lo`` are counted (bool row sums
    through a 64-bit lane trick: torch's integer reductions are ~50x slower than float ones on
    CPU), the wanted rank among each row's few window keys (with their indices) is found by one
    ``kthvalue`` over all rows, and the window keys up to it join the keys below ``lo``. A row whose k-th key falls outside its window (about 6e-5 per row), and every
    row when d < 256, is done by an exact ``topk`` over (key, index).
    """
    if k >= d:
        rows = n if clients is None else int(clients.numel())
        return torch.ones(rows, d, dtype=torch.bool)
    words = torch.empty(n, (d + 1) // 2, dtype=torch.int64).random_(-(2**63), None, generator=generator(seed, tag, -2))
    if clients is not None:
        words = words[clients]
    keys = words.view(torch.int32)
    return _smallest_keys_mask(keys if keys.shape[1] == d else keys[:, :d], k)


_INT64_MAX = (1 << 63) - 1
_EXACT_BELOW = 256
_WINDOW_SIGMAS = 4.0  # a row's k-th key misses its window with probability ~6e-5: then exact


def _exact_smallest(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Mask of the k smallest (key, index) pairs of every row, by topk over combined int64 keys."""
    rows, d = keys.shape
    combined = (keys.to(torch.int64) << 32) | torch.arange(d, dtype=torch.int64)
    idx = torch.topk(combined, k, dim=1, largest=False, sorted=False).indices
    return torch.zeros(rows, d, dtype=torch.bool).scatter_(1, idx, True)


def row_counts(mask: torch.Tensor) -> torch.Tensor:
    """Number of True per row of a bool matrix, int64 ``(rows,)``.

    Eight bools are one int64 word; summing at most 255 words keeps every byte lane below 256, so
    the lanes of the partial sums are the per-lane counts.
    """
    rows, d = mask.shape
    if d % 8 or not mask.is_contiguous():
        return mask.sum(dim=1)
    words = mask.view(torch.int64)
    main = (words.shape[1] // 128) * 128
    parts = [words[:, :main].reshape(rows, -1, 128).sum(dim=2)] if main else []
    if main < words.shape[1]:
        parts.append(words[:, main:].sum(dim=1, keepdim=True))
    lanes = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
    return lanes.contiguous().view(torch.uint8).reshape(rows, -1).sum(dim=1, dtype=torch.int64)


def _sparse_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """Flat positions of the True entries of a sparse bool matrix, ascending (int64).

    Scans 64-bit words (8 bools each) for nonzero ones first: an 8x shorter scan than
    ``nonzero`` over the bools when few words hold a True.
    """
    flat_mask = mask.reshape(-1)
    if flat_mask.numel() % 8 or not mask.is_contiguous():
        return torch.nonzero(flat_mask, as_tuple=True)[0]
    words = torch.nonzero(flat_mask.view(torch.int64), as_tuple=True)[0]
    if words.numel() == 0:
        return words
    hits = torch.nonzero(flat_mask.view(-1, 8)[words], as_tuple=True)
    return words[hits[0]] * 8 + hits[1]


def _smallest_keys_mask(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Mask of the k smallest (key, index) pairs of every row of an int32 key matrix (1 <= k < d)."""
    rows, d = keys.shape
    if d < _EXACT_BELOW:
        return _exact_smallest(keys, k)
    width = _WINDOW_SIGMAS * math.sqrt(k * (1.0 - k / d)) + 4.0  # in ranks
    step = 2.0**32 / d  # key values per rank
    lo = max(-(2**31), math.floor(-(2**31) + (k - width) * step))
    hi = math.ceil(-(2**31) + (k + width) * step)
    mask = keys < lo
    need = k - row_counts(mask)  # rank of the k-th smallest among the window keys (1-based)
    window = keys < hi if hi < 2**31 else torch.ones_like(mask)
    window ^= mask  # lo <= key < hi
    flat = _sparse_nonzero(window) if 16 * width < d else torch.nonzero(window.view(-1), as_tuple=True)[0]
    del window
    r_idx = torch.div(flat, d, rounding_mode="floor")
    c_idx = flat - r_idx * d
    count = torch.bincount(r_idx, minlength=rows)
    ok = (need >= 1) & (need <= count)
    if flat.numel():
        combined = (keys.reshape(-1)[flat] if keys.is_contiguous() else keys[r_idx, c_idx]).to(torch.int64)
        combined = (combined << 32) | c_idx
        # one selection for all rows: shift row i right by (max need - need_i) behind -inf fillers,
        # so every row's wanted element has the same rank, and torch.kthvalue finds them at once
        need_c = torch.minimum(need.clamp(min=1), count.clamp(min=1))
        top = int(need_c.max())
        shift = top - need_c
        slots = max(int((shift + count).max()), top)
        table = torch.where(torch.arange(slots).unsqueeze(0) < shift.unsqueeze(1),
                            torch.tensor(-_INT64_MAX - 1), torch.tensor(_INT64_MAX))
        offset = shift - (torch.cumsum(count, 0) - count)  # slot of entry e of row r: e - start_r + shift_r
        table[r_idx, torch.arange(flat.numel()) + offset[r_idx]] = combined
        kth = table.kthvalue(top, dim=1).values
        # the window keys up to the k-th pair (key, index) join the keys below lo: k per ok row
        threshold = torch.where(ok, kth, torch.tensor(-_INT64_MAX - 1))
        mask.view(-1)[flat] = combined <= threshold[r_idx]  # window entries are False so far
    if not bool(ok.all()):
        bad = (~ok).nonzero().flatten()
        mask[bad] = _exact_smallest(keys[bad], k)
    return mask
