"""The fast paths of sign, PermK and RandK give the message path's bits (issue 12, point 4).

``apply`` of sign and RandK computes ``decode(encode(X))`` its own way (one output buffer, no
index list); sign's wire encoder sums |x| a few rows at a time. These must equal the plain
formulas and the wire path bit for bit, at sizes where the chunking really happens.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import commpress as cp
from commpress.compressors.base import f32
from commpress.compressors.randk import RandK


def _reference_sign(X: torch.Tensor, block: int | None) -> torch.Tensor:
    """The scaled sign as first written: padded |x| blocks, float32 scales, b (-2 s) + s."""
    n, d = X.shape
    B = d if block is None else block
    blocks = -(-d // B)
    absolute = torch.nn.functional.pad(X.abs(), (0, blocks * B - d)).view(n, blocks, B)
    sizes = torch.full((blocks,), float(B), dtype=X.dtype)
    sizes[-1] = d - (blocks - 1) * B
    scale = f32(absolute.sum(dim=2) / sizes).to(X.dtype).repeat_interleave(B, dim=1)[:, :d]
    return (X < 0).to(X.dtype).mul_(-2.0 * scale).add_(scale)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,block", [((7, 1 << 19), None), ((5, 3 << 17), 256), ((4, 1000), 7), ((1, 10), None)])
def test_sign_apply_and_wire_equal_the_plain_formula(shape, block, dtype):
    X = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 3
    X[0, :3] = torch.tensor([0.0, -0.0, 1e-30], dtype=dtype)
    C = cp.compressors.make("sign", block_size=block)
    want = _reference_sign(X, block)
    assert _same_bits(C.apply(X, 0)[0], want)
    assert _same_bits(C.decode(C.encode(X, 0), 0, shape[1], dtype=dtype), want)
    # strides do not matter: a transposed view gives the contiguous copy's bits on both paths
    T = X.t().contiguous().t()
    assert _same_bits(C.apply(T, 0)[0], want) and _same_bits(C.decode(C.encode(T, 0), 0, shape[1], dtype=dtype), want)


def test_plain_sign_fast_path():
    X = torch.randn(3, 100, generator=torch.Generator().manual_seed(2))
    X[0, 0] = -0.0
    out = cp.compressors.make("sign", scaled=False).apply(X, 0)[0]
    assert _same_bits(out, torch.where(X < 0, -1.0, 1.0))


@pytest.mark.parametrize("kw", [{}, {"scaled": False}, {"float_bits": 64}, {"k": 1}, {"ratio": 1.0}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_randk_apply_equals_its_message_path(kw, dtype):
    X = torch.randn(6, 5000, dtype=dtype, generator=torch.Generator().manual_seed(3))
    X[1, :50] = -0.0
    C = cp.compressors.make("randk", **kw)
    ctx = C._context(X, 11, None, None)
    want = C.decode_message(C.encode_message(X, ctx), ctx)
    assert C._apply_fused(X, ctx) is not None
    assert _same_bits(C.apply(X, 11)[0], want)
    sub = C.apply(X[[4, 1]], 11, clients=[4, 1], n=6)[0]
    assert _same_bits(sub, want[[4, 1]])


def test_randk_fast_path_leaves_float32_overflow_to_the_encoder():
    X = torch.ones(2, 10, dtype=torch.float64)
    X[0] = 1e300
    with pytest.raises(cp.errors.NonFiniteError):
        cp.compressors.make("randk", k=3).apply(X, 1)


def test_a_subclass_that_changes_a_hook_takes_the_generic_path():
    class FixedSeed(RandK):
        def encode_message(self, X, ctx):
            return super().encode_message(X, dataclasses.replace(ctx, seed=0))

        def decode_message(self, message, ctx):
            return super().decode_message(message, dataclasses.replace(ctx, seed=0))

    X = torch.randn(3, 50, generator=torch.Generator().manual_seed(4))
    C = FixedSeed(k=5)
    assert torch.equal(C.apply(X, 9)[0], RandK(k=5).apply(X, 0)[0])  # its own hooks ran
    assert C._apply_fused(X, C._context(X, 9, None, None)) is None


@pytest.mark.parametrize("n,d", [(3, 10), (7, 12345), (5, 3), (4, 4)])
def test_permk_decode_without_the_dummy_column(n, d):
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(5))
    C = cp.compressors.make("permk")
    ctx = C._context(X, 2, None, None)
    idx, _, scale = C._seeded_support(ctx)
    want = torch.zeros(n, d + 1)
    want.scatter_(1, idx, X.gather(1, idx.clamp(max=d - 1)).masked_fill_(idx == d, 0.0) * scale)
    want = want[:, :d]
    assert _same_bits(C.apply(X, 2)[0], want)
    assert _same_bits(C.decode(C.encode(X, 2), 2, d), want)
