import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from commpress.wire import F32, F64, UINT, Field, pack_rows, payload_bits, payload_bytes, unpack_rows


def _random_message(fields, rows, g):
    msg = {}
    for f in fields:
        if f.kind is F32:
            msg[f.name] = torch.randn(rows, f.count, generator=g)
        elif f.kind is F64:
            msg[f.name] = torch.randn(rows, f.count, generator=g, dtype=torch.float64)
        else:
            msg[f.name] = torch.randint(0, 2 ** f.width, (rows, f.count), generator=g) if f.width else torch.zeros(rows, f.count, dtype=torch.int64)
    return msg


field_st = st.one_of(
    st.builds(lambda w, c: Field("u", UINT, w, c), st.integers(1, 40), st.integers(0, 9)),
    st.builds(lambda c: Field("f", F32, 32, c), st.integers(0, 5)),
    st.builds(lambda c: Field("g", F64, 64, c), st.integers(0, 3)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(field_st, min_size=1, max_size=6), st.integers(1, 4), st.integers(0, 10_000))
def test_pack_unpack_roundtrip_any_layout(fields, rows, seed):
    fields = [Field(f"{f.name}{i}", f.kind, f.width, f.count) for i, f in enumerate(fields)]
    g = torch.Generator().manual_seed(seed)
    msg = _random_message(fields, rows, g)
    data = pack_rows(fields, msg, rows)
    assert data.shape == (rows, payload_bytes(fields))
    assert data.shape[1] * 8 - payload_bits(fields) < 8
    back = unpack_rows(fields, data)
    for f in fields:
        assert torch.equal(back[f.name].to(msg[f.name].dtype), msg[f.name]), f


def test_bit_order_is_msb_first_and_padding_is_zero():
    fields = [Field("a", UINT, 1, 3), Field("b", UINT, 3, 1)]
    data = pack_rows(fields, {"a": torch.tensor([[1, 0, 1]]), "b": torch.tensor([[5]])}, 1)
    assert data.tolist() == [[0b10110100]]


def test_float32_header_is_little_endian_ieee():
    data = pack_rows([Field("x", F32, 32, 1)], {"x": torch.tensor([[1.0]])}, 1)
    assert bytes(data[0].tolist()) == b"\x00\x00\x80\x3f"


def test_field_validation():
    with pytest.raises(ValueError):
        Field("x", F32, 16, 1)
    with pytest.raises(ValueError):
        Field("x", UINT, 70, 1)


# ----------------------------------------------------------------- torch bit packing == numpy's
# The packer is torch operations on the data's device; numpy.packbits / unpackbits (the former
# implementation) are the reference for the byte layout: MSB first, zero-padded.
def _bits(rows, m, seed):
    return torch.randint(0, 2, (rows, m), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("m", [*range(0, 41), 63, 64, 65, 127, 1000, 4097])
def test_pack_bits_equals_numpy_packbits(m):
    import numpy as np

    from commpress.wire.pack import _pack_bits, _unpack_bits

    for rows in (1, 3):
        bits = _bits(rows, m, 1000 * rows + m)
        packed = _pack_bits(bits)
        assert packed.dtype == torch.uint8
        assert np.array_equal(packed.numpy(), np.packbits(bits.numpy(), axis=1))
        back = _unpack_bits(packed)
        assert np.array_equal(back.numpy(), np.unpackbits(packed.numpy(), axis=1))
        assert torch.equal(back[:, :m], bits)


def test_pack_bits_of_views_and_edge_patterns():
    import numpy as np

    from commpress.wire.pack import _pack_bits

    bits = _bits(4, 81, 7)
    views = (bits[:, 1:], bits[1:3, :64], bits.t().contiguous().t()[:, :40], bits[:, ::2], bits[:1, :64],
             _bits(3, 17, 1)[1:2, 7:15])  # the last: one row, aligned start, a row stride not a multiple of 8
    for view in views:
        assert np.array_equal(_pack_bits(view).numpy(), np.packbits(view.numpy(), axis=1))
    for pattern in (torch.ones(2, 64, dtype=torch.uint8), torch.zeros(2, 24, dtype=torch.uint8)):
        assert np.array_equal(_pack_bits(pattern).numpy(), np.packbits(pattern.numpy(), axis=1))


def test_elias_pack_bits_equals_numpy_packbits():
    import numpy as np

    from commpress.wire.elias import pack_bits

    for m in (0, 1, 7, 8, 9, 100):
        bits = _bits(1, m, m)[0]
        assert pack_bits(bits) == np.packbits(bits.numpy()).tobytes()


@settings(max_examples=30, deadline=None)
@given(st.lists(field_st, min_size=1, max_size=6), st.integers(1, 4), st.integers(0, 10_000))
def test_pack_rows_equals_the_numpy_reference(fields, rows, seed):
    """The whole payload, bit fields at any offset, equals the former numpy-based packer's bytes."""
    import numpy as np

    from commpress.wire import pack as wire_pack

    fields = [Field(f"{f.name}{i}", f.kind, f.width, f.count) for i, f in enumerate(fields)]
    msg = _random_message(fields, rows, torch.Generator().manual_seed(seed))
    ours = pack_rows(fields, msg, rows)
    original = wire_pack._pack_bits
    try:
        wire_pack._pack_bits = lambda b: torch.from_numpy(np.packbits(b.numpy(), axis=1))
        reference = pack_rows(fields, msg, rows)
    finally:
        wire_pack._pack_bits = original
    assert torch.equal(ours, reference)
