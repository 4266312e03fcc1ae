"""TernGrad (spec compressors.md §4): unbiased, e = ||x||_inf ||x||_1 - ||x||^2, omega = (sqrt d - 1)/2."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError, PayloadError

from ._dither_exact import dithering_error, header_norm
from ._stats import assert_mean

T = 40_000
X_TEST = torch.tensor([0.3, -1.25, 0.0, 0.8, -0.05, 0.6, 1.0, -0.9, 0.125], dtype=torch.float64)


def _exact(x: torch.Tensor) -> float:
    """||x||_inf ||x||_1 - ||x||^2 with the float32 scale header (exact here: max |x| is a float32)."""
    return header_norm(x, "inf") * x.abs().sum().item() - x.pow(2).sum().item()


@pytest.mark.parametrize("packing", ["bits", "base3"])
def test_unbiased_with_the_exact_error(packing):
    X_hat, _ = cp.compressors.make("terngrad", packing=packing).apply(X_TEST.expand(T, 9).contiguous(), seed=1)
    assert_mean(X_hat, X_TEST)
    err = (X_hat - X_TEST).pow(2).sum(1)
    assert _exact(X_TEST) == pytest.approx(dithering_error(X_TEST, "inf", 1))
    assert_mean(err, _exact(X_TEST))
    with pytest.raises(AssertionError):  # negative control: the l2-dithering error differs
        assert_mean(err, dithering_error(X_TEST, 2, 1))
    assert set(X_hat.abs().unique().tolist()) == {0.0, 1.25}  # ternary: 0 or the scale


def test_omega_is_attained_at_the_extremal_vector():
    d = 25
    eps = 1 / (math.sqrt(d) + 1)
    x = torch.full((d,), eps, dtype=torch.float64)
    x[0] = 1.0
    omega = cp.compressors.make("terngrad").theory(1, d).omega
    assert omega == pytest.approx((math.sqrt(d) - 1) / 2)
    assert _exact(x) == pytest.approx(omega * x.pow(2).sum().item(), rel=1e-12)
    X_hat, _ = cp.compressors.make("terngrad").apply(x.expand(T, d).contiguous(), seed=2)
    assert_mean((X_hat - x).pow(2).sum(1), _exact(x))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # no other vector does worse
        v = torch.randn(d, generator=g, dtype=torch.float64)
        v = v / v.abs().max()
        assert _exact(v) <= omega * v.pow(2).sum().item() + 1e-12


def test_packings_send_the_same_vector_and_their_bit_counts():
    X = torch.randn(4, 23, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    X[1] = 0.0
    bits_C, base3_C = cp.compressors.make("terngrad"), cp.compressors.make("terngrad", packing="base3")
    a, bits_a = bits_C.apply(X, seed=5)
    b, bits_b = base3_C.apply(X, seed=5)
    assert torch.equal(a, b)
    assert bits_a.tolist() == [8 * math.ceil((32 + 2 * 23) / 8)] * 4
    assert bits_b.tolist() == [32 + 8 * math.ceil(23 / 5)] * 4
    assert bits_C.theory(4, 23).bits == bits_a[0] and base3_C.theory(4, 23).bits == bits_b[0]
    payloads = base3_C.encode(X, seed=5)
    assert torch.equal(base3_C.decode(payloads, seed=5, d=23, dtype=torch.float64), b)
    assert torch.equal(b[1], torch.zeros(23, dtype=torch.float64))


def test_base3_rejects_bad_bytes():
    C = cp.compressors.make("terngrad", packing="base3")
    good = C.encode(torch.randn(1, 7, dtype=torch.float64), seed=0)[0]
    with pytest.raises(PayloadError, match="243"):
        C.decode([good[:4] + bytes([243]) + good[5:]], seed=0, d=7)
    # d = 7: the second byte holds 2 trits and 3 padding trits, which must be 0
    with pytest.raises(PayloadError, match="padding"):
        C.decode([good[:5] + bytes([81])], seed=0, d=7)


def test_d1_exact_zero_and_parameters():
    C = cp.compressors.make("terngrad")
    X = torch.tensor([[0.7], [-3.0], [0.0]], dtype=torch.float32)
    assert torch.equal(C.apply(X, seed=0)[0], X)
    with pytest.raises(ConfigError):
        cp.compressors.make("terngrad", packing="trits")
    with pytest.raises(ConfigError, match="no parameter"):
        cp.compressors.make("terngrad", p=2)
