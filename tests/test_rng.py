"""Keyed randomness (commpress._rng): rows keyed by client, definitions, uniformity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from commpress import _rng


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("clients", [[0], [4], [2, 3], [6, 1, 5], [0, 2, 4, 6, 1, 3]])
def test_private_rows_are_those_of_the_full_matrix(dtype, clients):
    # Any subset (contiguous runs jump ahead in the stream; many runs draw a block and select).
    full = _rng.private_rand(11, "t", 7, (5,), None, dtype=dtype)
    rows = torch.tensor(clients)
    assert torch.equal(_rng.private_rand(11, "t", 7, (5,), rows, dtype=dtype), full[rows])
    words = _rng.private_words(11, "w", 7, 3, None)
    assert torch.equal(_rng.private_words(11, "w", 7, 3, rows), words[rows])


def test_a_row_does_not_depend_on_n_or_on_the_other_rows():
    a = _rng.private_rand(3, "t", 4, (9,), torch.tensor([2]))
    b = _rng.private_rand(3, "t", 100, (9,), torch.tensor([2]))
    assert torch.equal(a, b)
    assert not torch.equal(a, _rng.private_rand(3, "t", 4, (9,), torch.tensor([1])))
    assert not torch.equal(a, _rng.private_rand(4, "t", 4, (9,), torch.tensor([2])))  # another seed
    assert not torch.equal(a, _rng.private_rand(3, "u", 4, (9,), torch.tensor([2])))  # another tag


def test_float64_definition_is_the_53_top_bits_of_the_pcg64_words():
    m = 6
    got = _rng.private_rand(5, "t", 3, (m,), torch.tensor([2]))
    bits = np.random.PCG64(_rng.stream_key(5, "t", -2))
    bits.advance(2 * m)
    words = bits.random_raw(m)
    assert torch.equal(got[0], torch.from_numpy((words >> np.uint64(11)).astype(np.float64) * 2.0**-53))


def test_float32_definition_is_two_24_bit_halves_per_word_and_odd_rows_align():
    m = 5  # odd: each row uses ceil(5/2) = 3 words, the last half unused
    got = _rng.private_rand(5, "t", 3, (m,), torch.tensor([1]), dtype=torch.float32)
    bits = np.random.PCG64(_rng.stream_key(5, "t", -2))
    bits.advance(3)
    halves = bits.random_raw(3).view(np.uint32)[:m]
    assert torch.equal(got[0], torch.from_numpy((halves >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)))


def test_uniforms_lie_in_the_unit_interval_and_are_uniform():
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        u = _rng.private_rand(1, "t", 4, (50_000,), None, dtype=dtype)
        assert u.dtype == dtype and float(u.min()) >= 0.0 and float(u.max()) < 1.0
    u = _rng.private_rand(2, "t", 4, (50_000,), None).reshape(-1)
    N = u.numel()
    # mean 1/2 (var 1/12) and each decile holding 1/10 (var 0.09 / N): 5 standard errors
    assert abs(float(u.mean()) - 0.5) <= 5 * math.sqrt(1 / 12 / N)
    counts = torch.histc(u, bins=10, min=0.0, max=1.0) / N
    assert float((counts - 0.1).abs().max()) <= 5 * math.sqrt(0.09 / N)
    with pytest.raises(AssertionError):  # negative control: a 1% shift of the mean is seen
        assert abs(float(u.mean()) + 0.01 - 0.5) <= 5 * math.sqrt(1 / 12 / N)


@pytest.mark.parametrize("high", [5, 4, 2, 1024])  # Lemire, and the power-of-two lanes (8 and 16 bits)
def test_shared_integers_are_uniform_in_range_in_a_small_dtype_and_identical_everywhere(high):
    h = _rng.shared_integers(9, "s", high, 200_001)
    assert h.dtype == (torch.int8 if high <= 128 else torch.int16) and h.shape == (200_001,)
    assert int(h.min()) == 0 and int(h.max()) == high - 1
    assert torch.equal(h, _rng.shared_integers(9, "s", high, 200_001))
    freq = torch.bincount(h.long(), minlength=high).double() / h.numel()
    assert float((freq - 1 / high).abs().max()) <= 5 * math.sqrt((1 / high) * (1 - 1 / high) / h.numel())
    pairs = (h[:-1].long() * high + h[1:].long())  # neighbours independent: pairs uniform too
    if high <= 5:
        pf = torch.bincount(pairs, minlength=high * high).double() / pairs.numel()
        q = 1 / high**2
        assert float((pf - q).abs().max()) <= 5 * math.sqrt(q * (1 - q) / pairs.numel())


def test_shared_integers_edge_sizes_and_dtypes():
    assert _rng.shared_integers(9, "s", 1000, 10).dtype == torch.int16
    assert _rng.shared_integers(9, "s", 2**20, 10).dtype == torch.int32
    with pytest.raises(ValueError):
        _rng.shared_integers(9, "s", 0, 10)
