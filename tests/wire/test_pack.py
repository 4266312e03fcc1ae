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
