"""Keyed randomness: every random draw is a pure function of (seed, tag, client, coordinate).

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

**Stream keys.** A stream (seed, tag, c), ``c = -1`` for the shared stream of the round and
``c = i`` for client ``i``'s private stream, has the 64-bit key

    K(seed, tag, c) = SM(SM(SM(seed) xor FNV1a64(tag)) xor (c + 1))        (all arithmetic mod 2^64)

with SM the splitmix64 function ``SM(x) = mix(x + G)``, ``G = 0x9E3779B97F4A7C15`` (the golden
gamma) and ``mix`` Stafford's "Mix13" finaliser (``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31``, logical shifts).

**Counter-based words.** Word ``j >= 0`` of a stream with key K is

    word(K, j) = SM(K + j G) = mix(K + (j + 1) G)                            (mod 2^64)

that is, output ``j`` of the SplitMix64 generator seeded with K (Steele, Lea, Flood, "Fast
splittable pseudorandom number generators", OOPSLA 2014; Vigna's ``splitmix64.c``; Java's
``SplittableRandom``): a Weyl sequence with the golden gamma, each term hashed by Mix13.
SplitMix64 passes TestU01's BigCrush (as reported by Steele et al.). The gamma matters: Mix13
applied to a unit-step counter, ``mix(j)``, fails PractRand early (Evensen, "On mixing functions
in fast splittable PRNGs", 2018; Maiga, "Tuning Murmur3", 2020), which is why the counter is
``(j + 1) G``, the sequence that was tested. Two rows with keys K, K' reuse each other's words only if
``(K' - K) G^-1 mod 2^64`` is below their length: probability ``<= 2 W / 2^64`` per pair of rows
of W words, since the keys are themselves SM hashes.

The words are computed by torch integer operations on the tensor's own device (int64, which
wraps mod 2^64 on every device; a logical right shift is ``(z >> k) & (2^(64-k) - 1)``), so a
draw is identical bit for bit on CPU and CUDA, and any block of rows and columns is computed
without the others: there is no stream to advance.

**Private draws** (:func:`private_words`, :func:`private_rand`): client i's row is the word
sequence of key ``K(seed, tag, i)``. Coordinate j of client i is a pure function of
(seed, tag, i, j) -- not of ``n``, of the shape, of the other rows or of where the client sits in
the batch -- so any process computes exactly its own clients' draws, contiguous or not:

- words: ``word(K_i, j)`` as int64 (the bits of the unsigned word);
- float64: ``(word(K_i, j) >> 11) 2^-53`` (the 53 top bits);
- float32: the 32-bit half h of ``word(K_i, j // 2)`` -- the low half for even j, the high half
  for odd j -- gives ``(h >> 8) 2^-24`` (its 24 top bits); float16 and bfloat16 are converted
  from it and kept below 1.

**Shared draws.** :func:`shared_words` is the word sequence of ``K(seed, tag, -1)``;
:func:`shared_integers` reads lanes of it (definition there). Permutations, coins and Gaussian
matrices still come from a CPU ``torch.Generator`` seeded with ``K(seed, tag, c) mod 2^63``
(:func:`generator`, :func:`shared_generator`, :func:`private_randn`) and are moved to the device
afterwards: CUDA generators give other numbers, and a permutation by sorting random keys, or a
Gaussian by ``log``/``cos``, would depend on each device's tie-breaking and libm, so those draws
are made where they are the same for everybody (they are O(n + d), or test-sized).

**Fused quantizers** (:func:`uniform_at`, :func:`fused_uniform_map`): the uniform of (client i,
coordinate j) is the elementwise expression above in the row key and j, so a compiled quantizer
computes it inside its own loop instead of reading a drawn matrix (the draw alone costs about
twice a copy of the input).

**Speed** (``benchmarks/rng.py``: (16, 2^20) values, one thread, CPU time on this project's
loaded 2-core VM, ranges over runs). Eager torch makes the words in cache-sized tiles
(:data:`_BLOCK_WORDS`) with in-place operations: 2.3-2.8 ns per float32 value, 4.5-5.8 ns per
float64 value (the NumPy PCG64 draw this replaced: 2.9-3.6 and 2.9-4.0 ns). ``COMMPRESS_COMPILE=1``
(or :func:`set_compile`) runs the same arithmetic as one ``torch.compile`` kernel per kind:
1.0-2.0 and 1.2-1.4 ns, tested equal bit for bit; its first call in a process compiles (5 s
with inductor's on-disk cache warm, 18 s cold, then 0.2-2 s for each further kind).
Philox4x32-10 (Salmon et al., SC 2011), the other candidate, written in the same int64 torch
arithmetic costs 15 / 24 ns eager and 5 / 8 ns compiled (ten rounds of two 32x32 -> 64-bit
products per four 32-bit outputs, against Mix13's two products per 64 bits): SplitMix64 is 4-6x
cheaper for a statistical quality (BigCrush) that suffices here.
"""

from __future__ import annotations

import math
import os
import warnings

import torch

from commpress._malloc import empty as _empty

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
    """``K(seed, tag, client) mod 2^63``: the seed of the stream's CPU ``torch.Generator``; client -1
    is the shared stream (module docstring)."""
    return _key(seed, tag, client) % SEED_LIMIT


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
    """A CPU ``torch.Generator`` for stream (seed, tag, client), seeded with ``K(seed, tag, client) mod 2^63``."""
    g = torch.Generator(device="cpu")
    g.manual_seed(stream_key(seed, tag, client))
    return g


def shared_generator(seed: int, tag: str) -> torch.Generator:
    """The shared stream of the round: identical on every process."""
    return generator(seed, tag, -1)


# --------------------------------------------------------------------------- the counter-based words
def _s64(x: int) -> int:
    """A 64-bit pattern as the signed int64 torch stores."""
    x &= _MASK64
    return x - (1 << 64) if x >> 63 else x


_GAMMA_S = _s64(_GOLDEN)
_MIX_STEPS = ((30, _s64(0xBF58476D1CE4E5B9)), (27, _s64(0x94D049BB133111EB)), (31, None))
_LOW_BITS = {shift: (1 << (64 - shift)) - 1 for shift, _ in _MIX_STEPS}  # logical shift = arithmetic & mask
_MASK53 = (1 << 53) - 1


def _mix(z: torch.Tensor) -> torch.Tensor:
    """Mix13 of every int64 entry (a new tensor)."""
    for shift, mult in _MIX_STEPS:
        z = z ^ ((z >> shift) & _LOW_BITS[shift])
        if mult is not None:
            z = z * mult
    return z


def _mix_(z: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """Mix13 in place on ``z``, with ``scratch`` (same shape) as the only temporary."""
    for shift, mult in _MIX_STEPS:
        torch.bitwise_right_shift(z, shift, out=scratch)
        scratch.bitwise_and_(_LOW_BITS[shift])
        z.bitwise_xor_(scratch)
        if mult is not None:
            z.mul_(mult)
    return z


def _key(seed: int, tag: str, client: int) -> int:
    """``K(seed, tag, client)``, the 64-bit key of a stream (module docstring)."""
    return _splitmix64(_splitmix64(_splitmix64(int(seed) & _MASK64) ^ _fnv1a64(tag)) ^ ((client + 1) & _MASK64))


def _row_keys(seed: int, tag: str, n: int, clients: torch.Tensor | None) -> torch.Tensor:
    """``K(seed, tag, i)`` for every row's client i (all of 0..n-1 when ``clients`` is None): int64, CPU."""
    base = _splitmix64(_splitmix64(int(seed) & _MASK64) ^ _fnv1a64(tag))
    idx = torch.arange(n, dtype=torch.int64) if clients is None else clients.reshape(-1).to("cpu", torch.int64)
    return _mix(((idx + 1) ^ _s64(base)) + _GAMMA_S)


def _words_at(key: int, counters: torch.Tensor) -> torch.Tensor:
    """``word(key, j)`` for an int64 tensor of counters j (any shape, on its device)."""
    return _mix(counters.add(1).mul_(_GAMMA_S).add_(_s64(key)))


#: Words per tile on devices whose caches reward tiling: eager torch makes one pass over a tile
#: per operation, so a tile should stay in cache while ~17 operations run over it, and be large
#: enough that the ~17 Python calls per tile cost little (measured best at 2^17 on one thread of
#: this project's VM: 2.4 ns per float32 value at 2^17, 2.6 at 2^16, 3.0 at 2^15); a compiled kernel
#: fuses the passes, and its tiles only keep its intermediates small (reused, not page-faulted).
#: Other device types draw a call's words in one tile (one kernel per operation).
_BLOCK_WORDS: dict[str, int] = {"cpu": 1 << 17}
_COMPILED_BLOCK_WORDS: dict[str, int] = {"cpu": 1 << 18}


def _tiles(rows: int, W: int, block: int | None) -> list[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` tiles of a ``(rows, W)`` word matrix: one row and <= ``block`` columns,
    or whole rows (everything at once when ``block`` is None)."""
    if rows == 0 or W == 0:
        return []
    if block is None or rows * W <= block:
        return [(0, rows, 0, W)]
    if W >= block:
        return [(r, r + 1, c0, min(W, c0 + block)) for r in range(rows) for c0 in range(0, W, block)]
    R = block // W
    return [(r0, min(rows, r0 + R), 0, W) for r0 in range(0, rows, R)]


def _target(out: torch.Tensor, kind: str, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
    """The part of ``out`` that words ``[c0, c1)`` of rows ``[r0, r1)`` produce."""
    if kind == "f32":
        return out[r0:r1, 2 * c0 : min(2 * c1, out.shape[1])]
    return out[r0:r1, c0:c1]


def _eager_tile(z: torch.Tensor, scratch: torch.Tensor, target: torch.Tensor, kind: str) -> None:
    """Mix the counters ``z`` (int64, ``(R, w)``, overwritten) into ``target`` (module docstring)."""
    _mix_(z, scratch)
    if kind == "f64":
        z.bitwise_right_shift_(11).bitwise_and_(_MASK53)
        target.copy_(z)
        target.mul_(2.0**-53)
    elif kind == "f32":
        h = z.view(torch.int32)  # (R, 2w): low half of each word first (little-endian)
        h.bitwise_right_shift_(8).bitwise_and_(0xFFFFFF)
        target.copy_(h[:, : target.shape[1]])
        target.mul_(2.0**-24)


def _fill(keys: torch.Tensor, W: int, out: torch.Tensor, kind: str) -> torch.Tensor:
    """Write the draws of the rows keyed by ``keys`` (CPU int64) into ``out`` and return it.

    ``kind``: ``"words"`` (out ``(rows, W)`` int64), ``"f64"`` (out ``(rows, W)`` float64) or
    ``"f32"`` (out ``(rows, m)`` float32, ``W = ceil(m / 2)``). Compiled or eager: the same bits.
    """
    global _compile
    if _compile:
        try:
            return _fill_tiles(keys, W, out, kind, _compiled_kernel(kind))
        except Exception as err:  # noqa: BLE001 -- any compiler failure: the eager path gives the same bits
            _compile = False
            warnings.warn(f"commpress: compiled random draws unavailable ({type(err).__name__}: {err}); "
                          "drawing with eager torch instead (same values).", RuntimeWarning, stacklevel=3)
    return _fill_tiles(keys, W, out, kind, None)


def _fill_tiles(keys: torch.Tensor, W: int, out: torch.Tensor, kind: str, kernel) -> torch.Tensor:
    device, rows = out.device, keys.numel()
    blocks = _BLOCK_WORDS if kernel is None else _COMPILED_BLOCK_WORDS
    tiles = _tiles(rows, W, blocks.get(device.type))
    if not tiles:
        return out
    width = max(c1 - c0 for _, _, c0, c1 in tiles)
    size = max((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in tiles)
    steps = torch.arange(1, width + 1, dtype=torch.int64, device=device).mul_(_GAMMA_S).unsqueeze(0)  # (c + 1) G
    if kernel is None:
        scratch = torch.empty(size, dtype=torch.int64, device=device)
        z_buf = None if kind == "words" else torch.empty(size, dtype=torch.int64, device=device)
    host_keys: list[int] | None = None
    dev_keys: torch.Tensor | None = None
    for r0, r1, c0, c1 in tiles:
        R, w = r1 - r0, c1 - c0
        target = _target(out, kind, r0, r1, c0, c1)
        if R == 1:  # word(K, c) = mix((K + c0 G) + (c - c0 + 1) G)
            if host_keys is None:
                host_keys = keys.tolist()
            key: int | torch.Tensor = _s64(host_keys[r0] + c0 * _GOLDEN)
        else:  # whole rows: c0 == 0
            if dev_keys is None:
                dev_keys = keys.to(device)
            key = dev_keys[r0:r1].unsqueeze(1)
        if kernel is not None:
            if isinstance(key, int):
                key = torch.full((1, 1), key, dtype=torch.int64, device=device)
            kernel(key, steps[:, :w], target)
            continue
        z = target if z_buf is None else z_buf[: R * w].view(R, w)
        torch.add(steps[:, :w], key, out=z)
        _eager_tile(z, scratch[: R * w].view(R, w), target, kind)
    return out


# --------------------------------------------------------------------------- the compiled path
# The counters come in as a tensor (``steps``), never as ``arange(...) * G`` inside the kernel:
# inductor's C++ is built without -fwrapv, and a wrapping product that it folds into a loop-index
# expression is undefined behaviour (tried while building this: heap corruption). Products of
# loaded values go through at::vec intrinsics, which wrap; the bit-identity test guards the rest.
def _kernel_words(keys: torch.Tensor, steps: torch.Tensor, out: torch.Tensor) -> None:
    out.copy_(_mix(keys + steps))


def _kernel_f64(keys: torch.Tensor, steps: torch.Tensor, out: torch.Tensor) -> None:
    z = _mix(keys + steps)
    out.copy_(((z >> 11) & _MASK53).to(torch.float64) * 2.0**-53)


def _kernel_f32(keys: torch.Tensor, steps: torch.Tensor, out: torch.Tensor) -> None:
    h = _mix(keys + steps).view(torch.int32)
    out.copy_((((h >> 8) & 0xFFFFFF).to(torch.float32) * 2.0**-24)[:, : out.shape[1]])


_KERNELS = {"words": _kernel_words, "f64": _kernel_f64, "f32": _kernel_f32}
_compiled: dict[str, object] = {}
_compile = os.environ.get("COMMPRESS_COMPILE", "0") == "1"


def _compiled_kernel(kind: str):
    kernel = _compiled.get(kind)
    if kernel is None:
        kernel = _compiled[kind] = torch.compile(_KERNELS[kind], dynamic=True, fullgraph=True)
    return kernel


def set_compile(enabled: bool) -> bool:
    """Draw through ``torch.compile``d kernels (True) or eager torch (False); returns the old setting.

    The default is ``COMMPRESS_COMPILE`` (``1``: compiled; unset or ``0``: eager). Both give the
    same bits (tested). A compiled kernel fuses the ~14 integer operations per word into one pass
    (1.0-2.0 ns per float32 and 1.2-1.4 ns per float64 value on one CPU thread, against 2.3-2.8
    and 4.5-5.8 ns eager) and costs 5-18 s to compile on its first call in a process. Worth it
    for long float64 runs on the CPU; off by default so that short runs, tests and every
    distributed worker skip the compile. If compiling fails (no C++ compiler, an unsupported
    device), draws fall back to eager torch with a warning and the setting turns off.

    The same switch turns on the fused compressors (:func:`fused_uniform_map`): IQ, CQ,
    dithering/QSGD (one block per row, fixed-width codes) and natural compression then run
    ``apply``, ``encode_message`` and ``decode_message`` as one compiled pass each, the uniforms
    computed inside the quantizer's loop (apply at (16, 2^20) float32, one CPU thread: 0.8-0.9x
    ``X.clone()``, against 2-6x eager), equal bit for bit to the eager path (tested). A kernel
    that fails to compile warns once and leaves its compressor on the eager path.
    """
    global _compile
    old, _compile = _compile, bool(enabled)
    return old


def fused_enabled() -> bool:
    """The switch of the compiled paths (draws and fused compressors): :func:`set_compile`."""
    return _compile


# --------------------------------------------------------------------------- fused uniform maps
# A stochastic quantizer reads x, draws one uniform per coordinate and writes its output: three
# passes over memory in eager torch (and a draw that alone costs ~2x a copy of x). Compiled, the
# uniform of (row i, column j) is computed inside the quantizer's own loop from the row key and the
# column index (:func:`uniform_at`), so reading x and writing the result is the only memory traffic.
def uniform_at(keys: torch.Tensor, col: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The private uniforms of rows keyed by ``keys`` at column indices ``col``, as torch code.

    ``keys``: ``(R, 1)`` int64 row keys ``K(seed, tag, i)``; ``col``: ``(1, c)`` integer column
    indices j. Returns ``(R, c)`` of ``dtype`` (float32 or float64), equal bit for bit to the
    columns ``col`` of :func:`private_rand` (module docstring): float64 ``(word(K, j) >> 11) 2^-53``;
    float32 the 24 top bits of the low (j even) or high (j odd) half of ``word(K, j // 2)``, i.e.
    bits ``8 + 32 (j mod 2)`` up of the word. Elementwise, so a compiled kernel fuses it with
    whatever uses the uniform. The column index comes in as a tensor (see the compiled path's note
    on inductor and wrapping products).
    """
    c = col.to(torch.int64)
    if dtype == torch.float64:
        w = _mix(keys + (c + 1) * _GAMMA_S)
        return ((w >> 11) & _MASK53).to(torch.float64) * 2.0**-53
    w = _mix(keys + ((c >> 1) + 1) * _GAMMA_S)
    return ((w >> ((c & 1) * 32 + 8)) & 0xFFFFFF).to(torch.float32) * 2.0**-24


#: Smallest call (entries) that runs a compiled fused kernel; smaller ones take the eager path.
FUSED_MIN_SIZE = 4096
_fused_kernels: dict[object, object] = {}
_fused_failed: set[object] = set()
_columns: dict[tuple[str, int], torch.Tensor] = {}


def _column_index(d: int, device: torch.device) -> torch.Tensor:
    """``arange(d)`` as int32 ``(1, d)`` on ``device`` (cached: the last few shapes)."""
    key = (str(device), d)
    col = _columns.get(key)
    if col is None:
        if len(_columns) >= 8:
            _columns.pop(next(iter(_columns)))
        col = _columns[key] = torch.arange(d, dtype=torch.int32 if d < 2**31 else torch.int64,
                                           device=device).unsqueeze(0)
    return col


def fused_uniform_map(kernel, X: torch.Tensor, seed: int, tag: str, n: int, clients: torch.Tensor | None,
                      args: tuple[torch.Tensor, ...], out_dtype: torch.dtype | tuple[torch.dtype, ...] | None = None):
    """Run ``kernel(X, keys, col, out, *args)`` compiled, over the private stream ``(seed, tag)``; or None.

    ``kernel`` is a module-level function of elementwise torch code that writes ``out`` (``(rows,
    d)``, ``out_dtype`` or ``X``'s) with ``out.copy_(...)``, computing the uniform of every entry as
    ``uniform_at(keys, col, X.dtype)`` (:func:`uniform_at`; ``keys`` the ``(rows, 1)`` keys of the
    rows' clients, ``clients`` or 0..n-1, ``col`` the ``(1, d)`` column indices): exactly the
    entries of ``private_rand(seed, tag, n, (d,), clients, dtype=X.dtype)``. A tuple ``out_dtype``
    gives the kernel a tuple of outputs. ``args`` are tensors broadcasting against ``(rows, d)``;
    pass numbers as tensors too (a Python number becomes a compile-time constant: one compilation
    per value). Each kernel must be its own function (torch.compile caches by code object, at most
    8 variants each: dtypes, size-1 dimensions). Called eagerly, the same function gives the same
    bits (tested per compressor).

    Returns the output (tensor or tuple), or None when the switch (:func:`set_compile`) is off, or
    when this kernel fails to compile (then with a warning, once: the caller takes its eager path,
    which gives the same values; the random draws keep their own setting).
    """
    rows, d = X.shape
    keys = _row_keys(seed, tag, n, clients).to(X.device).unsqueeze(1) if _compile else None
    return fused_map(kernel, X, keys, _column_index(d, X.device), shape=(rows, d), out_dtype=out_dtype or X.dtype,
                     args=args)


def fused_map(kernel, *inputs: torch.Tensor, shape: tuple[int, ...], out_dtype, args=()):
    """Run ``kernel(*inputs, out, *args)`` compiled (``out``: new ``shape`` tensor(s) of ``out_dtype``,
    on the first input's device), or return None: :func:`fused_uniform_map` without the uniforms.
    Calls of fewer than :data:`FUSED_MIN_SIZE` entries return None (eager torch is as fast there,
    and every shape class a kernel sees costs a compilation)."""
    if not _compile or kernel in _fused_failed or math.prod(shape) < FUSED_MIN_SIZE:
        return None
    try:
        compiled = _fused_kernels.get(kernel)
        if compiled is None:
            compiled = _fused_kernels[kernel] = torch.compile(kernel, dynamic=True, fullgraph=True)
        device = inputs[0].device
        inputs = tuple(t.contiguous() for t in inputs)  # one compiled variant: contiguous rows
        out = (tuple(_empty(shape, t, device) for t in out_dtype) if isinstance(out_dtype, tuple)
               else _empty(shape, out_dtype, device))
        compiled(*inputs, out, *args)
        return out
    except Exception as err:  # noqa: BLE001 -- any compiler failure: the eager path gives the same values
        _fused_failed.add(kernel)
        warnings.warn(f"commpress: compiled kernel {kernel.__qualname__} unavailable ({type(err).__name__}: "
                      f"{str(err)[:200]}); using eager torch instead (same values).", RuntimeWarning, stacklevel=3)
        return None


def _device(device: torch.device | str | None) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


# --------------------------------------------------------------------------- public draws
def private_words(seed: int, tag: str, n: int, words: int, clients: torch.Tensor | None,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Full-range 64-bit random words, row i = client i's first ``words`` private words: ``(rows, words)`` int64.

    Entry (i, j) is ``word(K(seed, tag, i), j)`` (module docstring): a pure function of
    (seed, tag, i, j), computed on ``device`` for the rows asked only (``clients``, or 0..n-1).
    """
    keys = _row_keys(seed, tag, n, clients)
    out = _empty((keys.numel(), int(words)), torch.int64, _device(device))
    return _fill(keys, int(words), out, "words")


def shared_words(seed: int, tag: str, words: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The first ``words`` words of the shared stream (seed, tag, -1): ``(words,)`` int64 on ``device``."""
    keys = torch.tensor([_s64(_key(seed, tag, -1))], dtype=torch.int64)
    out = _empty((1, int(words)), torch.int64, _device(device))
    return _fill(keys, int(words), out, "words")[0]


def private_rand(
    seed: int,
    tag: str,
    n: int,
    shape: tuple[int, ...],
    clients: torch.Tensor | None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniform [0, 1) draws, row i = client i's private draws of the round.

    Returns ``(len(clients), *shape)`` (or ``(n, *shape)`` when ``clients`` is None) on ``device``
    (default: the CPU). Value j of row i (row-major over ``shape``) is, with ``K = K(seed, tag, i)``:

    - float64: ``(word(K, j) >> 11) 2^-53``;
    - float32: ``(h >> 8) 2^-24``, h the low (j even) or high (j odd) 32-bit half of ``word(K, j // 2)``;
    - float16 / bfloat16: the float32 value converted, kept below 1.

    A pure function of (seed, tag, i, j, dtype) -- see the module docstring for ``word`` and the
    measured speed.
    """
    device = _device(device)
    m = math.prod(shape)
    keys = _row_keys(seed, tag, n, clients)
    rows = keys.numel()
    if dtype == torch.float64:
        out = _fill(keys, m, _empty((rows, m), torch.float64, device), "f64")
    else:
        if not dtype.is_floating_point:
            raise TypeError(f"private_rand draws floating uniforms; got dtype {dtype}. "
                            "Use private_words for integers.")
        out = _fill(keys, (m + 1) // 2, _empty((rows, m), torch.float32, device), "f32")
        if dtype != torch.float32:
            below_one = 1.0 - torch.finfo(dtype).eps / 2
            out = out.to(dtype).clamp_(max=below_one)
    return out.reshape(rows, *shape)


def private_randn(seed: int, tag: str, n: int, shape: tuple[int, ...], clients: torch.Tensor | None,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard Gaussians, row i = client i's: ``(rows, *shape)`` on the CPU (move them yourself).

    Row i is ``torch.randn(shape, generator=generator(seed, tag, i), dtype=dtype)``: a pure function
    of (seed, tag, shape, i) drawn for the rows asked only. On the CPU because Gaussians from
    ``log`` and ``cos`` would differ in the last bit between devices' math libraries; it serves
    test-sized draws (Haar rotations, Gaussian sketches).
    """
    idx = range(n) if clients is None else clients.reshape(-1).tolist()
    rows = [torch.randn(tuple(shape), generator=generator(seed, tag, int(i)), dtype=dtype) for i in idx]
    return torch.stack(rows) if rows else torch.empty((0, *shape), dtype=dtype)


_LEMIRE_RETRY = 1 << 40  # attempt a of a rejected value reads the stream from word a * 2^40 on


def shared_integers(seed: int, tag: str, high: int, size: int,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """``size`` integers uniform on {0..high-1} from the shared stream (seed, tag, -1), exactly, in the
    smallest integer dtype that holds them, on ``device``.

    Definition, with ``w_j = word(K(seed, tag, -1), j)`` (module docstring) read as little-endian
    lanes:

    - ``high`` a power of two up to 2^32: value j is lane j of 8 bits (high <= 2^8), 16 bits
      (<= 2^16) or 32 bits, masked to its low ``log2(high)`` bits;
    - otherwise, up to 2^32: Lemire's multiply-shift on 32-bit lane j, x: ``m = x high``, value
      ``m >> 32``, rejected when ``m mod 2^32 < 2^32 mod high``; a rejected value j is drawn again
      from lane j of the words from ``a 2^40`` on (attempt a = 1, 2, ...), which no draw reaches;
    - above 2^32: the top ``ceil(log2 high)`` bits of word j, rejected when ``>= high``, with the
      same retries.
    """
    if high < 1:
        raise ValueError(f"shared_integers needs high >= 1; got {high}.")
    device = _device(device)
    kind = (torch.int8 if high <= 2**7 else torch.int16 if high <= 2**15
            else torch.int32 if high <= 2**31 else torch.int64)
    key = _key(seed, tag, -1)
    if high & (high - 1) == 0 and high <= 2**32:
        lane = torch.uint8 if high <= 2**8 else torch.int16 if high <= 2**16 else torch.int32
        per_word = 8 // lane.itemsize
        lanes = shared_words(seed, tag, -(-size // per_word), device).view(lane)[:size]
        if lane != torch.uint8:
            lanes = lanes.to(torch.int64)
        return (lanes & (high - 1)).to(kind)
    lemire = high <= 2**32
    bits = (high - 1).bit_length()
    counters = torch.arange(size, dtype=torch.int64, device=device)
    out = torch.empty(size, dtype=torch.int64, device=device)
    attempt = 0
    while counters.numel():
        offset = attempt * _LEMIRE_RETRY
        if lemire:
            if attempt == 0:
                x = shared_words(seed, tag, (size + 1) // 2, device).view(torch.int32)[:size].to(torch.int64)
            else:
                w = _words_at(key, torch.div(counters, 2, rounding_mode="floor") + offset)
                x = torch.where(counters % 2 == 0, w, w >> 32)
            prod = (x & 0xFFFFFFFF) * high  # < 2^64: as int64 it may wrap, the masks below read it unsigned
            value = (prod >> 32) & 0xFFFFFFFF
            accept = (prod & 0xFFFFFFFF) >= (2**32 % high)
        else:
            w = _words_at(key, counters + offset)
            value = (w >> (64 - bits)) & ((1 << bits) - 1)
            accept = value < high
        if bool(accept.all()):
            out[counters] = value
            break
        out[counters[accept]] = value[accept]
        counters = counters[~accept]
        attempt += 1
    return out.to(kind)


def private_randperm_topk(
    seed: int, tag: str, n: int, d: int, k: int, clients: torch.Tensor | None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """For each client a uniformly random k-subset of range(d), sorted: ``(rows, k)`` int64 on ``device``.

    The subset of :func:`private_subset_mask` as sorted index lists.
    """
    mask = private_subset_mask(seed, tag, n, d, k, clients, device)
    rows = mask.shape[0]
    flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]  # row-major: each row's k positions, ascending
    return flat.view(rows, k) - (torch.arange(rows, device=mask.device) * d).unsqueeze(1)


def private_subset_mask(
    seed: int, tag: str, n: int, d: int, k: int, clients: torch.Tensor | None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """For each client a uniformly random k-subset of range(d) as a ``(rows, d)`` bool mask (k True per row).

    Definition (a pure function of (seed, tag, d, k, client)): client i's ``ceil(d/2)`` private
    64-bit words (:func:`private_words`) are read as int32 keys (little-endian halves: key 2t is
    the low half of word t), its first d keys; the subset is the k smallest keys, ties broken by
    the lower index (``k == d``: everything, nothing drawn). Exactly uniform up to ties: the
    total-variation distance to the uniform k-subset is at most the chance that another key
    equals the k-th smallest, below ``d / 2^32`` (2.4e-4 at d = 2^20). (float32 uniforms, with
    2^24 values, would make that d / 2^24.)

    Computation (same result as sorting each row), on ``device``. Measured on one loaded core against
    ``torch.rand`` of the same shape, k = d/10, mask / sorted indices: (16, 2^20) 1.0-1.5x /
    1.3-1.9x, (256, 4096) 2.1-2.6x / 2.8-3.2x; the former ``torch.rand`` + ``topk`` + ``sort``
    took 3-5x / 4-6x, ``argsort`` 14x+. A window ``[lo, hi)`` of key values holding the k-th
    smallest key with high probability (its expected rank +- (4 sigma + 4)) is cut out, the keys
    below ``lo`` are counted (bool row sums through a 64-bit lane trick: torch's integer
    reductions are ~50x slower than float ones on CPU), the wanted rank among each row's few
    window keys (with their indices) is found by one ``kthvalue`` over all rows, and the window
    keys up to it join the keys below ``lo``. A row whose k-th key falls outside its window (about
    6e-5 per row), and every row when d < 256, is done by an exact ``topk`` over (key, index).
    """
    device = _device(device)
    if k >= d:
        rows = n if clients is None else int(clients.numel())
        return torch.ones(rows, d, dtype=torch.bool, device=device)
    keys = private_words(seed, tag, n, (d + 1) // 2, clients, device).view(torch.int32)
    return _smallest_keys_mask(keys if keys.shape[1] == d else keys[:, :d], k)


_INT64_MAX = (1 << 63) - 1
_EXACT_BELOW = 256
_WINDOW_SIGMAS = 4.0  # a row's k-th key misses its window with probability ~6e-5: then exact


def _exact_smallest(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Mask of the k smallest (key, index) pairs of every row, by topk over combined int64 keys."""
    rows, d = keys.shape
    combined = (keys.to(torch.int64) << 32) | torch.arange(d, dtype=torch.int64, device=keys.device)
    idx = torch.topk(combined, k, dim=1, largest=False, sorted=False).indices
    return torch.zeros(rows, d, dtype=torch.bool, device=keys.device).scatter_(1, idx, True)


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
        dev = keys.device
        table = torch.where(torch.arange(slots, device=dev).unsqueeze(0) < shift.unsqueeze(1),
                            torch.tensor(-_INT64_MAX - 1, device=dev), torch.tensor(_INT64_MAX, device=dev))
        offset = shift - (torch.cumsum(count, 0) - count)  # slot of entry e of row r: e - start_r + shift_r
        table[r_idx, torch.arange(flat.numel(), device=dev) + offset[r_idx]] = combined
        kth = table.kthvalue(top, dim=1).values
        # the window keys up to the k-th pair (key, index) join the keys below lo: k per ok row
        threshold = torch.where(ok, kth, torch.tensor(-_INT64_MAX - 1, device=dev))
        mask.view(-1)[flat] = combined <= threshold[r_idx]  # window entries are False so far
    if not bool(ok.all()):
        bad = (~ok).nonzero().flatten()
        mask[bad] = _exact_smallest(keys[bad], k)
    return mask
