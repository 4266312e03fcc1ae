"""Natural compression C_nat (spec compressors.md §3.2): unbiased, exact error, omega = 1/8, domain."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.errors import InputError, PayloadError

from ._dither_exact import natural_error
from ._stats import assert_mean

T = 40_000
# Mixed magnitudes, powers of two (sent exactly), 4/3 * 2^a (the worst case), a zero, large values.
X_TEST = torch.tensor([0.3, -1.0, 4.0 / 3.0, 0.0, -5.5, 1e-3, 2.0**-20 * 1.7, 3e5, -0.75], dtype=torch.float64)


def _samples(x, seed, dtype=torch.float64):
    X_hat, _ = cp.compressors.make("natural").apply(x.to(dtype).expand(T, x.numel()).contiguous(), seed=seed)
    return X_hat.double()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_unbiased_with_the_exact_error(dtype):
    x = X_TEST.to(dtype).double()
    X_hat = _samples(x, 1, dtype)
    assert_mean(X_hat, x)
    assert_mean((X_hat - x).pow(2).sum(1), natural_error(x))
    with pytest.raises(AssertionError):  # negative control: omega ||x||^2 is not the error
        assert_mean((X_hat - x).pow(2).sum(1), x.pow(2).sum().item() / 8)


def test_outputs_are_neighbouring_powers_of_two():
    X_hat = _samples(X_TEST, 2)
    a = torch.floor(torch.log2(X_TEST.abs()))
    nz = X_TEST != 0
    mag = X_hat[:, nz].abs()
    low = torch.exp2(a[nz])
    assert torch.all((mag == low) | (mag == 2 * low))
    assert torch.all(X_hat[:, ~nz] == 0)
    assert torch.all(torch.sign(X_hat[:, nz]) == torch.sign(X_TEST[nz]))
    assert torch.all(X_hat[:, 1] == -1.0)  # a power of two is sent exactly


def test_omega_one_eighth_is_attained_at_four_thirds():
    x = torch.full((6,), 4.0 / 3.0, dtype=torch.float64) * torch.tensor([1, -2, 4, 0.5, 2.0**-30, 2.0**50], dtype=torch.float64)
    assert natural_error(x) == pytest.approx(x.pow(2).sum().item() / 8, rel=1e-12)
    X_hat = _samples(x, 3)
    assert_mean((X_hat - x).pow(2).sum(1) / x.pow(2).sum(), 1 / 8)
    t = cp.compressors.make("natural").theory(5, 100)
    assert t.kind == "unbiased" and t.omega == 0.125 and t.A == pytest.approx(0.025) and t.B == 0
    assert t.bits == 8 * math.ceil(9 * 100 / 8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_tiny_values_round_between_zero_and_2_pow_minus_126(dtype):
    x = torch.tensor([2.0**-127, -(2.0**-128) * 3, 2.0**-126], dtype=dtype)  # subnormal in float32
    X_hat = _samples(x.double(), 4, dtype)
    assert set(X_hat[:, 0].tolist()) == {0.0, 2.0**-126}
    assert set(X_hat[:, 1].tolist()) == {0.0, -(2.0**-126)}
    assert torch.all(X_hat[:, 2] == 2.0**-126)
    scale = 2.0**126  # z-test in units where the numbers are O(1)
    assert_mean(X_hat * scale, x.double() * scale)
    a = x.double().abs()
    assert_mean(((X_hat - x.double()) * scale).pow(2).sum(1), ((2.0**-126 - a) * a).sum().item() * scale**2)


def test_domain_limits():
    C = cp.compressors.make("natural")
    top = torch.tensor([[2.0**127, -(2.0**127)]], dtype=torch.float32)
    assert torch.equal(C.apply(top, seed=0)[0], top)  # the largest power of two is sent exactly
    for dtype in (torch.float32, torch.float64):
        with pytest.raises(InputError, match="2\\^127"):
            C.apply(torch.tensor([[1.0, 2.0**127 * 1.5]], dtype=dtype), seed=0)


def test_bits_d1_zero_and_payload_checks():
    C = cp.compressors.make("natural")
    X = torch.tensor([[0.0, 0.0, 0.0], [1.5, -2.0, 0.25]], dtype=torch.float64)
    X_hat, bits = C.apply(X, seed=0)
    assert bits.tolist() == [32, 32]  # 27 bits -> 4 bytes
    assert torch.equal(X_hat[0], torch.zeros(3, dtype=torch.float64))
    assert torch.equal(C.apply(torch.tensor([[-0.5]]), seed=0)[0], torch.tensor([[-0.5]]))
    # exponent field 255 (inf/NaN in float32) is rejected
    bad = bytes([0b00011111, 0b11111111, 0b00000000, 0b00000000])  # signs 000, then exponent 255
    with pytest.raises(PayloadError, match="255"):
        C.decode([bad], seed=0, d=3)
