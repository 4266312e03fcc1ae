"""Keyed randomness: every random draw is a pure function of (seed, tag, client).

The rule (commpress's design choice, documented here as its specification):

    "Every call receives one integer round seed 0 <= seed < 2^63. Callers pass a fresh seed per
    round (e.g. a hash of a base seed and the round number). Nothing else is random. A *stream*
    is identified by (seed, tag, c): tag is a short ASCII string naming the purpose (e.g.
    "cq/sigma"), c = i for client i's private stream and c = -1 for the shared stream of the
    round. Any derivation is acceptable if it is a pure function of (seed, tag, c) and is
    documented."

**Round seeds** (:func:`derive_seed`). A run seed and labels (round number, role, bucket, ...)
become a round seed by hashing every label *with its position* before mixing it in:

    k_0 = SM(seed)
    k_j = SM(k_{j-1} xor H_j(part_j))                  for j = 1, 2, ...
    H_j(v) = SM(SM(v xor K) + j * 0x9E3779B97F4A7C15)  K = 0 for integers, K = 0x5851F42D4C957F2D
                                                       for strings, where v = FNV1a64(string)
    derive_seed(seed, part_1, ..., part_m) = k_m mod 2^63

Since the seed is hashed on its own before the first label meets it, ``derive_seed(0, 1)`` and
``derive_seed(1, 0)`` are unrelated (the earlier rule ``SM(seed xor part)`` made them equal, so
run seeds 0..3 replayed each other's rounds); labels at different positions, or of different
types (the round 1 and the string "1"), hash differently. Different tuples give different
64-bit values except with probability about 2^-64 per pair (tested: no collision over seeds
0..255 x rounds 0..4095 x roles), and the streams they key are statistically independent
(tested on MARINA's coins, with the old rule as negative control).

**Streams.** A stream is identified by (seed, tag, c) with ``c = -1`` for the shared stream of
the round and ``c = i`` for client ``i``'s private stream. The key is

    k = SM(SM(SM(seed) xor FNV1a64(tag)) xor (c + 1))        (all arithmetic mod 2^64)

with SM the splitmix64 finaliser (Steele, Lea, Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014). Shared draws (permutations, shifts, coins) come from a CPU
``torch.Generator`` seeded with ``k mod 2^63`` (or :func:`shared_integers`, NumPy's PCG64 seeded
with the same key). Draws are made on the CPU and moved to the device afterwards (CUDA
generators give other numbers, which would break simulator == distributed equality).

Private draws for a *batch* of clients (:func:`private_rand`, :func:`private_words`) are rows of
one matrix read from the counter-like PCG64 stream (seed, tag, -2): row ``i`` is the block of
words ``[i W, (i + 1) W)``. Row ``i`` is a pure function of (seed, tag, shape, i), never of ``n``
or of the position of a client in the batch, so any process computes exactly its own clients'
draws. The full batch is one vectorised draw (no Python loop over clients), and a process
holding a contiguous block of clients jumps to its block (``PCG64.advance``, O(log)) and draws
only its rows.
"""

from __future__ import annotations

import math

import numpy as np
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


_GOLDEN = 0x9E3779B97F4A7C15
_STRING_SALT = 0x5851F42D4C957F2D


def _label_hash(part: int | str, position: int) -> int:
    """``H_j(part)``: a label hashed with its type and its position ``j >= 1`` (module docstring)."""
    if isinstance(part, str):
        value = _fnv1a64(part) ^ _STRING_SALT
    else:
        value = int(part) & _MASK64
    return _splitmix64((_splitmix64(value) + position * _GOLDEN) & _MASK64)


def derive_seed(seed: int, *parts: int | str) -> int:
    """A round seed from a run seed and labels (round number, role, ...): a pure function.

    ``k_0 = SM(seed)``, ``k_j = SM(k_{j-1} xor H_j(part_j))``, result ``k_m mod 2^63``, with each
    label hashed with its position and type (module docstring): different (seed, parts...)
    tuples give unrelated seeds, so different run seeds give independent streams.
    """
    k = _splitmix64(int(seed) & _MASK64)
    for position, part in enumerate(parts, start=1):
        k = _splitmix64(k ^ _label_hash(part, position))
    return k % SEED_LIMIT


def generator(seed: int, tag: str, client: int = -1) -> torch.Generator:
    """A CPU generator for stream (seed, tag, client)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(stream_key(seed, tag, client))
    return g


def shared_generator(seed: int, tag: str) -> torch.Generator:
    """The shared stream of the round: identical on every process."""
    return generator(seed, tag, -1)


def _pcg64(seed: int, tag: str, client: int, skip: int = 0) -> np.random.PCG64:
    """A PCG64 bit generator for stream (seed, tag, client), advanced by ``skip`` 64-bit words."""
    bits = np.random.PCG64(stream_key(seed, tag, client))
    if skip:
        bits.advance(skip)
    return bits


def _row_runs(clients: torch.Tensor) -> list[tuple[int, int]]:
    """``clients`` as runs ``(first, count)`` of consecutive indices, in their order."""
    c = clients.reshape(-1).tolist()
    runs: list[tuple[int, int]] = []
    for i in c:
        if runs and i == runs[-1][0] + runs[-1][1]:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def _private_block(seed: int, tag: str, n: int, clients: torch.Tensor | None, words: int, draw) -> np.ndarray:
    """Rows of the private matrix of stream (seed, tag): row i occupies words ``[i W, (i + 1) W)``.

    ``draw(bit_generator, rows)`` returns ``(rows, ...)`` values from the next ``rows * W`` words.
    A batch of consecutive clients costs one draw after one O(log) jump (``PCG64.advance``); a
    batch with more than :data:`_MAX_RUNS` runs draws the rows from its smallest to its largest
    client once and selects.
    """
    if clients is None:
        return draw(_pcg64(seed, tag, -2), n)
    runs = _row_runs(clients)
    if not runs:
        return draw(_pcg64(seed, tag, -2), 0)
    if len(runs) <= _MAX_RUNS:
        parts = [draw(_pcg64(seed, tag, -2, first * words), count) for first, count in runs]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    idx = clients.reshape(-1).numpy()
    first = int(idx.min())
    block = draw(_pcg64(seed, tag, -2, first * words), int(idx.max()) - first + 1)
    return block[idx - first]


#: A private draw for a batch of at most this many runs of consecutive clients jumps to each run.
_MAX_RUNS = 4
_F32_SCALE = np.float32(2.0**-24)


def private_words(seed: int, tag: str, n: int, words: int, clients: torch.Tensor | None) -> torch.Tensor:
    """Full-range 64-bit random words, row i = client i's ``words`` private words: ``(rows, words)`` int64.

    Row i is words ``[i W, (i + 1) W)`` of the PCG64 stream (seed, tag, -2) (W = ``words``): a pure
    function of (seed, tag, W, i), whatever ``n`` and whichever other rows are drawn.
    """
    def draw(bits: np.random.PCG64, rows: int) -> np.ndarray:
        return bits.random_raw(rows * words).reshape(rows, words)

    out = _private_block(seed, tag, n, clients, words, draw)
    return torch.from_numpy(np.ascontiguousarray(out).view(np.int64))


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

    Definition (``m = prod(shape)`` values per row, from the PCG64 stream (seed, tag, -2); row i
    is a pure function of (seed, tag, shape, dtype, i)):

    - float64: row i is words ``[i m, (i + 1) m)``, each word w giving ``(w >> 11) 2^-53``
      (53 random bits: NumPy's ``Generator.random``);
    - float32 (and lower precisions, converted from it and kept below 1): row i is words
      ``[i W, (i + 1) W)``, ``W = ceil(m / 2)``, each word giving two 32-bit halves (low half
      first) and each half h giving ``(h >> 8) 2^-24``.

    A process holding a contiguous block of clients draws only its rows (one jump ahead in the
    stream, O(log)), not the whole ``(n, m)`` matrix. Measured: 2.2 ns per float64 and
    1.5 ns per float32 value on one core, against 4-7 and 4.5 ns for ``torch.rand``.
    """
    m = math.prod(shape)
    if dtype == torch.float64:
        def draw(bits: np.random.PCG64, rows: int) -> np.ndarray:
            return np.random.Generator(bits).random(rows * m).reshape(rows, m)

        out = torch.from_numpy(_private_block(seed, tag, n, clients, m, draw))
    else:
        if not dtype.is_floating_point:
            raise TypeError(f"private_rand draws floating uniforms; got dtype {dtype}.")
        words = (m + 1) // 2

        def draw(bits: np.random.PCG64, rows: int) -> np.ndarray:
            halves = bits.random_raw(rows * words).view(np.uint32).reshape(rows, 2 * words)
            if 2 * words != m:
                halves = halves[:, :m]
            return (halves >> np.uint32(8)).astype(np.float32) * _F32_SCALE

        out = torch.from_numpy(_private_block(seed, tag, n, clients, words, draw))
        if dtype != torch.float32:
            below_one = 1.0 - torch.finfo(dtype).eps / 2
            out = out.to(dtype).clamp_(max=below_one)
    return out.reshape(out.shape[0], *shape)


def shared_integers(seed: int, tag: str, high: int, size: int) -> torch.Tensor:
    """``size`` integers uniform on {0..high-1} from the shared stream (seed, tag, -1), in the
    smallest integer dtype that holds them.

    ``high`` a power of two up to 2^16: the low bits of 8- or 16-bit lanes of the stream's 64-bit
    words (exact; 0.5 ns per value on one core). Otherwise NumPy's ``Generator.integers`` on the
    PCG64 stream (Lemire's method, exact; 1.5 ns per value, against 2.6 ns for ``torch.randint``).
    """
    if high < 1:
        raise ValueError(f"shared_integers needs high >= 1; got {high}.")
    kind = np.int8 if high <= 2**7 else np.int16 if high <= 2**15 else np.int32 if high <= 2**31 else np.int64
    bits = _pcg64(seed, tag, -1)
    if high & (high - 1) == 0 and high <= 2**16:
        lane = np.uint8 if high <= 2**8 else np.uint16
        per_word = 8 // np.dtype(lane).itemsize
        lanes = bits.random_raw(-(-size // per_word)).view(lane)[:size]
        return torch.from_numpy((lanes & lane(high - 1)).astype(kind, copy=False))
    return torch.from_numpy(np.random.Generator(bits).integers(0, high, size, dtype=kind))


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

    Definition (a pure function of (seed, tag, d, k, client)): client i's ``ceil(d/2)`` private
    64-bit words (:func:`private_words`) are read as int32 keys, its first d keys; the subset is the k smallest
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
    keys = private_words(seed, tag, n, (d + 1) // 2, clients).view(torch.int32)
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
