"""Elias-omega codec and QSGD's sparse stream (commpress.wire.elias; spec compressors.md §0.4, §2)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from commpress.errors import PayloadError
from commpress.wire import elias


def _bits_to_bytes(bits: str) -> bytes:
    return elias.pack_bits(torch.tensor([int(b) for b in bits], dtype=torch.uint8))


# ---------------------------------------------------------------- the scalar code
@pytest.mark.parametrize(
    "value, code",
    [(1, "0"), (2, "100"), (3, "110"), (4, "101000"), (7, "101110"), (8, "1110000"), (15, "1111110"),
     (16, "10100100000"), (100, "1011011001000")],
)
def test_omega_codewords(value, code):
    assert elias.omega_bits(value) == code


def test_omega_lengths_of_the_spec():
    # |w(1)| = 1, |w(2)| = |w(3)| = 3, |w(4..7)| = 6, |w(8..15)| = 7
    expected = {1: 1, 2: 3, 3: 3, **{v: 6 for v in range(4, 8)}, **{v: 7 for v in range(8, 16)}}
    for value, length in expected.items():
        assert len(elias.omega_bits(value)) == length
    lengths = elias.omega_length(torch.arange(1, 16))
    assert lengths.tolist() == [expected[v] for v in range(1, 16)]


def test_vectorised_codes_equal_the_scalar_code():
    values = torch.cat([torch.arange(1, 3000), torch.tensor([2**16 - 1, 2**16, 2**31, elias.MAX_VALUE])])
    codes, lengths = elias.omega_codes(values)
    for v, c, n in zip(values.tolist(), codes.tolist(), lengths.tolist()):
        assert format(c, "b").zfill(n) == elias.omega_bits(v)


def test_scalar_code_rejects_out_of_range():
    for bad in (0, -3, elias.MAX_VALUE + 1):
        with pytest.raises(ValueError):
            elias.omega_bits(bad)


# ---------------------------------------------------------------- the sparse stream
def _random_sparse(rows: int, d: int, s: int, density: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(1, s + 1, (rows, d), generator=g) * (torch.rand(rows, d, generator=g) < density)
    signs = torch.randint(0, 2, (rows, d), generator=g)
    return signs, levels


def _reference_stream(signs: torch.Tensor, levels: torch.Tensor) -> str:
    """The stream of one row written straight from the spec's words."""
    nz = levels.nonzero().reshape(-1).tolist()
    out = elias.omega_bits(len(nz) + 1)
    previous = 0
    for i in nz:
        out += elias.omega_bits(i + 1 - previous) + str(int(signs[i] != 0)) + elias.omega_bits(int(levels[i]))
        previous = i + 1
    return out


@pytest.mark.parametrize("d, s, density", [(1, 1, 1.0), (7, 1, 0.5), (50, 3, 0.2), (300, 20, 0.05), (64, 2, 0.0)])
def test_stream_matches_the_spec_and_round_trips(d, s, density):
    signs, levels = _random_sparse(5, d, s, density, seed=d + s)
    streams = elias.encode_stream(signs, levels)
    lengths = elias.stream_length(levels)
    for r in range(5):
        bits = "".join(map(str, streams[r].tolist()))
        assert bits == _reference_stream(signs[r], levels[r])
        assert len(bits) == int(lengths[r])
        payload = elias.pack_bits(streams[r])
        assert len(payload) == (len(bits) + 7) // 8
        where, got_signs, got_levels = elias.decode_stream(payload, d, s)
        assert torch.equal(where, levels[r].nonzero().reshape(-1))
        assert torch.equal(got_levels, levels[r, where])
        assert torch.equal(got_signs, (signs[r, where] != 0).long())


def test_worked_example():
    # levels (0, 2, 0, 0, 1), signs (., -, ., ., +): w(3) | w(2) 1 w(2) | w(3) 0 w(1)
    levels = torch.tensor([[0, 2, 0, 0, 1]])
    signs = torch.tensor([[1, 1, 0, 0, 0]])
    assert "".join(map(str, elias.encode_stream(signs, levels)[0].tolist())) == "110" + "100" + "1" + "100" + "110" + "0" + "0"


def test_zero_vector_stream_is_one_bit():
    levels = torch.zeros(2, 9, dtype=torch.int64)
    assert elias.stream_length(levels).tolist() == [1, 1]
    assert elias.pack_bits(elias.encode_stream(levels, levels)[0]) == b"\x00"


# ---------------------------------------------------------------- hostile streams
def _good_payload():
    levels = torch.tensor([0, 2, 0, 0, 1])
    signs = torch.tensor([1, 1, 0, 0, 0])
    return elias.pack_bits(elias.encode_stream(signs[None], levels[None])[0])


@pytest.mark.parametrize(
    "bits, why",
    [
        ("1110000" + "0", "count 8 - 1 = 7 > d = 5"),
        ("100" + "1011000", "gap 6 beyond d = 5 (truncated too)"),
        ("100" + "100" + "0" + "110", "level 3 > s = 2"),
        ("101000" + "00", "nnz = 3, the byte ends inside the first entry: truncated"),
        ("110" + "101010" + "0" + "0" + "0", "first position 5, second 6 > d = 5"),
    ],
)
def test_hostile_streams_are_rejected(bits, why):
    with pytest.raises(PayloadError):
        elias.decode_stream(_bits_to_bytes(bits), 5, 2)


def test_zero_padding_can_complete_a_stream():
    # "100" = one nonzero; the zero padding reads as gap 1, sign +, level 1: the canonical stream.
    where, signs, levels = elias.decode_stream(_bits_to_bytes("100"), 5, 2)
    assert where.tolist() == [0] and levels.tolist() == [1] and signs.tolist() == [0]


def test_padding_must_be_short_and_zero():
    good = _good_payload()
    elias.decode_stream(good, 5, 2)  # 15 bits + 1 padding bit: fine
    with pytest.raises(PayloadError):
        elias.decode_stream(good + b"\x00", 5, 2)  # a whole extra byte
    with pytest.raises(PayloadError):
        elias.decode_stream(good[:-1] + bytes([good[-1] | 1]), 5, 2)  # nonzero padding bit
    with pytest.raises(PayloadError):
        elias.decode_stream(good[:-1], 5, 2)  # truncated
    with pytest.raises(PayloadError):
        elias.decode_stream(b"", 5, 2)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=24), d=st.integers(1, 40), s=st.integers(1, 9))
def test_random_bytes_decode_cleanly_or_raise(data, d, s):
    try:
        where, signs, levels = elias.decode_stream(data, d, s)
    except PayloadError:
        return
    assert where.shape == signs.shape == levels.shape
    assert bool((where[1:] > where[:-1]).all()) and bool(((where >= 0) & (where < d)).all())
    assert bool(((levels >= 1) & (levels <= s)).all()) and bool(((signs == 0) | (signs == 1)).all())
    # a stream that decodes is canonical: re-encoding gives the same bytes
    dense_signs = torch.zeros(1, d, dtype=torch.int64)
    dense_levels = torch.zeros(1, d, dtype=torch.int64)
    dense_signs[0, where], dense_levels[0, where] = signs, levels
    assert elias.pack_bits(elias.encode_stream(dense_signs, dense_levels)[0]) == data
