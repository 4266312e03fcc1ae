"""Keyed randomness (commpress._rng): the bit-level definition, addressing, uniformity, independence.

The definition is checked against an independent pure-Python SplitMix64 (the sequential
generator of Steele et al. / Vigna's ``splitmix64.c``, not the library's counter formula). The
statistical battery runs on the library's draws and, as negative controls that prove its power,
on deliberately weak generators (a counter without mixing, a Weyl sequence without mixing, rows
not keyed by client, draws that ignore the seed or the tag), each of which must fail the check
aimed at it.
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from commpress import _rng

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


# --------------------------------------------------------------------------- pure-Python reference
def ref_mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def ref_stream(seed_state: int, count: int) -> list[int]:
    """Vigna's splitmix64 ``next()`` called ``count`` times from state ``seed_state``."""
    out, state = [], seed_state
    for _ in range(count):
        state = (state + GAMMA) & M64
        out.append(ref_mix(state))
    return out


def ref_word(key: int, j: int) -> int:
    """Word j of the stream of ``key`` without running the stream (the counter formula)."""
    return ref_mix((key + (j + 1) * GAMMA) & M64)


def ref_fnv(tag: str) -> int:
    h = 0xCBF29CE484222325
    for b in tag.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def ref_key(seed: int, tag: str, c: int) -> int:
    sm = lambda x: ref_stream(x, 1)[0]  # noqa: E731 -- SM(x) = the first output from state x
    return sm(sm(sm(seed) ^ ref_fnv(tag)) ^ ((c + 1) & M64))


def signed(w: int) -> int:
    return w - (1 << 64) if w >> 63 else w


CASES = [(0, "t", 0), (5, "cq/gamma", 3), (2**63 - 1, "natural/u", 1000), (123456789, "", 7)]


# --------------------------------------------------------------------------- the bit-level definition
@pytest.mark.parametrize("seed,tag,client", CASES)
def test_words_are_the_splitmix64_stream_of_the_client_key(seed, tag, client):
    words = _rng.private_words(seed, tag, client + 1, 9, torch.tensor([client]))
    expected = ref_stream(ref_key(seed, tag, client), 9)
    assert words[0].tolist() == [signed(w) for w in expected]
    assert _rng.stream_key(seed, tag, client) == ref_key(seed, tag, client) % 2**63


@pytest.mark.parametrize("seed,tag,client", CASES)
def test_float64_is_the_53_top_bits_of_each_word(seed, tag, client):
    u = _rng.private_rand(seed, tag, client + 1, (2, 3), torch.tensor([client]))
    words = ref_stream(ref_key(seed, tag, client), 6)
    assert u.shape == (1, 2, 3)
    assert u.reshape(-1).tolist() == [(w >> 11) * 2.0**-53 for w in words]


@pytest.mark.parametrize("seed,tag,client", CASES)
def test_float32_is_two_24_bit_halves_per_word_low_half_first(seed, tag, client):
    m = 7  # odd: the high half of the last word is unused
    u = _rng.private_rand(seed, tag, client + 1, (m,), torch.tensor([client]), dtype=torch.float32)
    halves = [h for w in ref_stream(ref_key(seed, tag, client), 4) for h in (w & 0xFFFFFFFF, w >> 32)]
    assert u.dtype == torch.float32
    assert u[0].tolist() == [(h >> 8) * 2.0**-24 for h in halves[:m]]


def test_shared_words_are_the_stream_of_client_minus_one():
    assert _rng.shared_words(9, "s", 5).tolist() == [signed(w) for w in ref_stream(ref_key(9, "s", -1), 5)]


@pytest.mark.parametrize("high", [4, 256, 2**16, 2**32])
def test_shared_integers_of_a_power_of_two_are_masked_lanes(high):
    lane = 8 if high <= 2**8 else 16 if high <= 2**16 else 32
    size = 37
    words = ref_stream(ref_key(9, "s", -1), -(-size * lane // 64))
    lanes = [(w >> (lane * k)) & ((1 << lane) - 1) for w in words for k in range(64 // lane)]
    assert _rng.shared_integers(9, "s", high, size).tolist() == [x & (high - 1) for x in lanes[:size]]


def ref_lemire(key: int, high: int, j: int) -> int:
    attempt = 0
    while True:
        w = ref_word(key, j // 2 + attempt * 2**40)
        m = ((w >> (32 * (j % 2))) & 0xFFFFFFFF) * high
        if m & 0xFFFFFFFF >= 2**32 % high:
            return m >> 32
        attempt += 1


@pytest.mark.parametrize("high", [5, 1000, 3 * 2**30])  # 3 * 2^30 rejects 1/4 of the draws: retries run
def test_shared_integers_otherwise_are_lemire_with_keyed_retries(high):
    size = 301
    got = _rng.shared_integers(4, "h", high, size).tolist()
    assert got == [ref_lemire(ref_key(4, "h", -1), high, j) for j in range(size)]


def test_shared_integers_above_2_32_are_rejected_top_bits():
    high, size, key = 3 * 2**40 + 1, 50, ref_key(4, "h", -1)

    def ref(j: int) -> int:
        attempt = 0
        while (v := ref_word(key, j + attempt * 2**40) >> (64 - high.bit_length())) >= high:
            attempt += 1
        return v

    assert _rng.shared_integers(4, "h", high, size).tolist() == [ref(j) for j in range(size)]


# --------------------------------------------------------------------------- addressing
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("clients", [[0], [4], [2, 3], [6, 1, 5], [0, 2, 4, 6, 1, 3], [5, 5]])
def test_private_rows_are_those_of_the_full_matrix(dtype, clients):
    full = _rng.private_rand(11, "t", 7, (5,), None, dtype=dtype)
    rows = torch.tensor(clients)
    assert torch.equal(_rng.private_rand(11, "t", 7, (5,), rows, dtype=dtype), full[rows])
    words = _rng.private_words(11, "w", 7, 3, None)
    assert torch.equal(_rng.private_words(11, "w", 7, 3, rows), words[rows])


def test_a_row_does_not_depend_on_n_on_the_other_rows_or_on_its_length():
    a = _rng.private_rand(3, "t", 4, (9,), torch.tensor([2]))
    assert torch.equal(a, _rng.private_rand(3, "t", 100, (9,), torch.tensor([2])))
    assert torch.equal(a, _rng.private_rand(3, "t", 100, (20,), torch.tensor([2]))[:, :9])  # columns: a prefix
    assert not torch.equal(a, _rng.private_rand(3, "t", 4, (9,), torch.tensor([1])))
    assert not torch.equal(a, _rng.private_rand(4, "t", 4, (9,), torch.tensor([2])))  # another seed
    assert not torch.equal(a, _rng.private_rand(3, "u", 4, (9,), torch.tensor([2])))  # another tag


def test_any_block_of_columns_is_computed_without_the_others():
    full = _rng.private_words(8, "b", 3, 1000, None)
    keys = _rng._row_keys(8, "b", 3, None).tolist()
    for r, (c0, c1) in [(0, (0, 10)), (1, (500, 530)), (2, (990, 1000))]:
        block = _rng._words_at(keys[r], torch.arange(c0, c1))
        assert torch.equal(block, full[r, c0:c1])


@pytest.mark.parametrize("kind,shape,rows", [
    ("f64", (1000,), 9), ("f32", (1001,), 9), ("words", (700,), 5),  # tiles of whole rows
    ("f64", (3000,), 3), ("f32", (5001,), 2), ("words", (2500,), 2),  # tiles of part of a row
])
def test_tiles_do_not_change_the_draws(monkeypatch, kind, shape, rows):
    def draw():
        if kind == "words":
            return _rng.private_words(2, "k", rows, shape[0], None)
        return _rng.private_rand(2, "k", rows, shape, None, dtype=torch.float64 if kind == "f64" else torch.float32)

    whole = draw()
    monkeypatch.setitem(_rng._BLOCK_WORDS, "cpu", 512)  # uneven tiles, a short last one
    assert torch.equal(draw(), whole)


def test_lower_precisions_come_from_float32_and_stay_below_one():
    u32 = _rng.private_rand(1, "t", 4, (50_000,), None, dtype=torch.float32)
    for dtype in (torch.float16, torch.bfloat16):
        u = _rng.private_rand(1, "t", 4, (50_000,), None, dtype=dtype)
        assert u.dtype == dtype and float(u.min()) >= 0.0 and float(u.max()) < 1.0
        assert torch.equal(u, u32.to(dtype).clamp(max=1.0 - torch.finfo(dtype).eps / 2))
    with pytest.raises(TypeError, match="private_words"):
        _rng.private_rand(1, "t", 4, (5,), None, dtype=torch.int64)


def test_empty_draws():
    assert _rng.private_rand(1, "t", 0, (5,), None).shape == (0, 5)
    assert _rng.private_rand(1, "t", 3, (0,), None, dtype=torch.float32).shape == (3, 0)
    assert _rng.private_words(1, "t", 3, 0, torch.tensor([], dtype=torch.int64)).shape == (0, 0)
    assert _rng.shared_integers(1, "t", 7, 0).shape == (0,)


# --------------------------------------------------------------------------- the compiled path
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit notices from inductor's imports
def test_compiled_draws_equal_eager_draws_bit_for_bit():
    """``COMMPRESS_COMPILE=1`` / ``set_compile(True)``: the same bits (compiles 3 kernels: 5-30 s)."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler: torch.compile's CPU backend is unavailable")

    def draws():
        return [
            _rng.private_rand(1, "x", 5, (70_001,), None, dtype=torch.float32),  # odd: the last half unused
            _rng.private_rand(1, "x", 3, (600_001,), None, dtype=torch.float32),  # tiles of part of a row
            _rng.private_rand(1, "x", 300, (3, 3), None),
            _rng.private_rand(1, "x", 2, (2**18 + 3,), torch.tensor([7, 0]), dtype=torch.float64),
            _rng.private_words(2, "w", 9, 1001, torch.tensor([8, 1, 3])),
            _rng.shared_words(2, "w", 100_003),
        ]

    eager = draws()
    old = _rng.set_compile(True)
    try:
        compiled = draws()
        assert _rng._compile, "compiling failed and the draws fell back to eager torch"
    finally:
        _rng.set_compile(old)
    for a, b in zip(eager, compiled):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- uniformity and independence
Z = 5.0  # every statistic below is ~N(0, 1) (or a max of a few dozen) under the null: 5 sigma


def z_corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of paired samples as a z-score (r sqrt(N) ~ N(0, 1) when independent)."""
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    a, b = a - a.mean(), b - b.mean()
    r = float((a * b).sum() / (a.norm() * b.norm()))
    return abs(r) * math.sqrt(a.numel())


def z_pairs(a: torch.Tensor, b: torch.Tensor, bins: int = 8) -> float:
    """Chi-square of the (a, b) pairs on a bins x bins grid as a z-score ((chi2 - k) / sqrt(2k))."""
    a, b = a.reshape(-1), b.reshape(-1)
    cell = (a * bins).long().clamp_(max=bins - 1) * bins + (b * bins).long().clamp_(max=bins - 1)
    counts = torch.bincount(cell, minlength=bins * bins).double()
    expected = a.numel() / bins**2
    dof = bins * bins - 1
    return abs(float(((counts - expected) ** 2 / expected).sum()) - dof) / math.sqrt(2 * dof)


def disjoint_pairs(u: torch.Tensor, lag: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns ``(c, c + lag)`` of every row, each column in one pair at most (independent pairs)."""
    u = u[:, offset:]
    u = u[:, : u.shape[1] - u.shape[1] % (2 * lag)].reshape(u.shape[0], -1, 2, lag)
    return u[:, :, 0], u[:, :, 1]


def battery(draw, dtype: torch.dtype) -> dict[str, float]:
    """z-scores of the checks on ``draw(seed, tag, rows, m, dtype) -> (rows, m)`` uniforms."""
    rows, m = 64, 4096
    u = draw(2, "t", rows, m, dtype).double()
    N = u.numel()
    deciles = torch.histc(u, bins=10, min=0.0, max=1.0) / N
    z = {
        "mean": abs(float(u.mean()) - 0.5) / math.sqrt(1 / 12 / N),
        "deciles": float((deciles - 0.1).abs().max()) / math.sqrt(0.09 / N),
        # neighbouring coordinates, lags 1 and 2 (for float32: the two halves of one word, and the
        # same half of consecutive words): linear correlation, and the joint law of disjoint pairs
        "neighbours": max(z_corr(u[:, :-1], u[:, 1:]), z_corr(u[:, :-2], u[:, 2:])),
        "pairs": max(z_pairs(*disjoint_pairs(u, 1)), z_pairs(*disjoint_pairs(u, 1, 1)), z_pairs(*disjoint_pairs(u, 2))),
        # rows i and i + 1 (clients): the worst of the 63 adjacent pairs
        "rows": max(max(z_corr(u[i], u[i + 1]), z_pairs(u[i], u[i + 1], 4)) for i in range(rows - 1)),
    }
    for name, other in (("seeds", draw(3, "t", rows, m, dtype)), ("tags", draw(2, "t2", rows, m, dtype))):
        z[name] = max(z_corr(u, other), z_pairs(u, other.double()))
    return z


def library(seed, tag, rows, m, dtype):
    return _rng.private_rand(seed, tag, rows, (m,), None, dtype=dtype)


def _floats(words: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The library's float definitions applied to any (rows, words) int64 matrix."""
    if dtype == torch.float64:
        return ((words >> 11) & ((1 << 53) - 1)).double() * 2.0**-53
    h = words.contiguous().view(torch.int32)
    return ((h >> 8) & 0xFFFFFF).float() * 2.0**-24


def weak(words_of):
    """A generator from ``words_of(seed, tag, rows, W) -> (rows, W)`` int64 with the library's floats."""
    def draw(seed, tag, rows, m, dtype):
        W = m if dtype == torch.float64 else (m + 1) // 2
        return _floats(words_of(seed, tag, rows, W), dtype)[:, :m]
    return draw


def _counters(seed, tag, rows, W, step):
    keys = _rng._row_keys(seed, tag, rows, None).unsqueeze(1)
    return keys + torch.arange(1, W + 1) * _rng._s64(step)


CONTROLS = {
    # key + counter, no mixing: each row is nearly constant
    "counter": (weak(lambda s, t, r, W: _counters(s, t, r, W, 1)), {"deciles", "neighbours", "pairs", "rows"}),
    # the Weyl sequence without its finaliser: evenly spread, but each value fixes the next
    "weyl": (weak(lambda s, t, r, W: _counters(s, t, r, W, GAMMA)), {"neighbours", "pairs", "rows"}),
    # a good finaliser, but every client gets the same row
    "rows unkeyed": (weak(lambda s, t, r, W: _rng._mix(_counters(s, t, 1, W, GAMMA).expand(r, W))), {"rows"}),
    # a good finaliser, but the seed is ignored
    "seed ignored": (weak(lambda s, t, r, W: _rng._mix(_counters(0, t, r, W, GAMMA))), {"seeds"}),
    # a good finaliser, but the tag is ignored
    "tag ignored": (weak(lambda s, t, r, W: _rng._mix(_counters(s, "", r, W, GAMMA))), {"tags"}),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_private_draws_are_uniform_and_independent(dtype):
    z = battery(library, dtype)
    assert max(z.values()) < Z, z


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_negative_controls_fail_the_checks_aimed_at_them(control, dtype):
    draw, caught = CONTROLS[control]
    z = battery(draw, dtype)
    assert all(z[name] > Z for name in caught), (control, z)


def test_rows_never_reuse_each_others_words():
    # Overlapping streams are the failure of counter-based designs: if client i + 1's key were
    # client i's plus G, its row would be client i's shifted by one word. Any overlap repeats words.
    rows, W = 256, 4096
    words = _rng.private_words(2, "t", rows, W, None)
    assert torch.unique(words).numel() == rows * W
    # negative control: keys K + i G make every row a one-word shift of the previous one
    key = _rng._s64(_rng._key(2, "t", 0))
    shifted = _rng._mix(key + (torch.arange(rows).unsqueeze(1) + torch.arange(1, W + 1)) * _rng._s64(GAMMA))
    assert torch.unique(shifted).numel() < rows * W / 2


@pytest.mark.parametrize("high", [5, 4, 2, 1024, 3 * 2**30])  # Lemire, power-of-two lanes, retries
def test_shared_integers_are_uniform_in_range_in_a_small_dtype_and_identical_everywhere(high):
    h = _rng.shared_integers(9, "s", high, 200_001)
    dtype = (torch.int8 if high <= 2**7 else torch.int16 if high <= 2**15
             else torch.int32 if high <= 2**31 else torch.int64)
    assert h.dtype == dtype and h.shape == (200_001,)
    assert int(h.min()) >= 0 and int(h.max()) <= high - 1
    assert torch.equal(h, _rng.shared_integers(9, "s", high, 200_001))
    bins = min(high, 64)
    cell = (h.long() * bins) // high  # equal-width cells (high / bins values each for the big one)
    freq = torch.bincount(cell, minlength=bins).double() / h.numel()
    assert float((freq - 1 / bins).abs().max()) <= Z * math.sqrt((1 / bins) * (1 - 1 / bins) / h.numel())
    if high <= 5:  # neighbours independent: pairs uniform too
        pf = torch.bincount(h[:-1].long() * high + h[1:].long(), minlength=high * high).double() / (h.numel() - 1)
        q = 1 / high**2
        assert float((pf - q).abs().max()) <= Z * math.sqrt(q * (1 - q) / (h.numel() - 1))


def test_shared_integers_edge_sizes_and_dtypes():
    assert _rng.shared_integers(9, "s", 1000, 10).dtype == torch.int16
    assert _rng.shared_integers(9, "s", 2**20, 10).dtype == torch.int32
    assert _rng.shared_integers(9, "s", 2**40, 10).dtype == torch.int64
    assert _rng.shared_integers(9, "s", 1, 10).eq(0).all()
    with pytest.raises(ValueError):
        _rng.shared_integers(9, "s", 0, 10)


def test_private_gaussians_are_keyed_by_client_on_the_cpu():
    full = _rng.private_randn(3, "g", 4, (2, 3), None)
    assert full.shape == (4, 2, 3)
    assert torch.equal(_rng.private_randn(3, "g", 9, (2, 3), torch.tensor([2, 0])), full[[2, 0]])
    assert torch.equal(full[1], torch.randn(2, 3, generator=_rng.generator(3, "g", 1), dtype=torch.float64))
