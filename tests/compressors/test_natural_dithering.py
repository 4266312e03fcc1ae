"""Natural dithering (spec compressors.md §3.1): power-of-two levels, unbiased, exact error, omega."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.compressors import _pow2
from commpress.errors import ConfigError

from ._dither_exact import dithering_error, header_norm, natural_dithering_error, natural_levels
from ._stats import assert_mean

T = 40_000
X_TEST = torch.tensor([0.875, -0.1, 0.4, 0.0, -0.7, 0.25, 0.05, -0.33, 0.012, 0.6], dtype=torch.float64)
CASES = [(2, 3), (2, 1), (2, 5), ("inf", 2), (1, 4)]


def _samples(x, seed, dtype=torch.float64, **params):
    C = cp.compressors.make("natural_dithering", **params)
    X_hat, _ = C.apply(x.to(dtype).expand(T, x.numel()).contiguous(), seed=seed)
    return X_hat.double()


@pytest.mark.parametrize("p, s", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_unbiased_with_the_exact_error(p, s, dtype):
    x = X_TEST.to(dtype).double()  # the vector actually compressed
    X_hat = _samples(x, 1, dtype=dtype, p=p, s=s)
    assert_mean(X_hat, x)
    assert_mean((X_hat - x).pow(2).sum(1), natural_dithering_error(x, p, s))


def test_outputs_are_the_two_neighbouring_levels():
    s = 3
    X_hat = _samples(X_TEST, 2, s=s)
    N = header_norm(X_TEST, 2)
    levels = natural_levels(s)
    y = X_TEST.abs() / N
    u = (torch.searchsorted(levels, y, right=True) - 1).clamp(max=s - 1)
    got = X_hat.abs() / N
    low, high = levels[u], levels[u + 1]
    assert torch.all(torch.isclose(got, low.expand_as(got)) | torch.isclose(got, high.expand_as(got)))
    assert torch.all(torch.sign(X_hat) * torch.sign(X_TEST) >= 0)


def test_negative_control_uniform_levels_give_another_error():
    s = 3
    X_hat = _samples(X_TEST, 3, s=s)
    err = (X_hat - X_TEST).pow(2).sum(1)
    with pytest.raises(AssertionError):
        assert_mean(err, dithering_error(X_TEST, 2, s))


def test_s1_equals_standard_dithering_in_distribution():
    # s = 1: levels {0, 1}, the same as random dithering with s = 1
    assert natural_dithering_error(X_TEST, 2, 1) == pytest.approx(dithering_error(X_TEST, 2, 1))


def test_theory_omega_is_the_source_value_and_bounds_the_error():
    n = 3
    for p, s, d in [(2, 3, 10), (2, 8, 10_000), (1, 2, 50), ("inf", 4, 64)]:
        t = cp.compressors.make("natural_dithering", p=p, s=s).theory(n, d)
        r = 2.0 if p == "inf" else min(p, 2.0)
        a = d ** (1 / r) * 2.0 ** (1 - s)
        assert t.omega == pytest.approx(0.125 + a * min(1.0, a))
        assert t.A == pytest.approx(t.omega / n) and t.B == 0 and t.kind == "unbiased"
        assert t.bits == 8 * math.ceil((32 + d * (1 + s.bit_length())) / 8)
    for p, s in CASES:
        omega = cp.compressors.make("natural_dithering", p=p, s=s).theory(1, X_TEST.numel()).omega
        assert natural_dithering_error(X_TEST, p, s) <= omega * X_TEST.pow(2).sum().item()


@pytest.mark.parametrize("s", [1, 3, 9])
def test_d1_exact_and_zero(s):
    C = cp.compressors.make("natural_dithering", s=s)
    X = torch.tensor([[-2.5], [0.0], [7.0]], dtype=torch.float32)
    assert torch.equal(C.apply(X, seed=0)[0], X)
    assert torch.equal(C.apply(torch.zeros(3, 5, dtype=torch.float64), seed=0)[0], torch.zeros(3, 5, dtype=torch.float64))


def test_pow2_split_at_the_bottom_and_subnormals():
    z = torch.tensor([0.0, 1e-40, 0.3, 1.0, 1.5, 3.0, 4.0], dtype=torch.float32)
    code, t = _pow2.split(z.clone(), 0)
    assert code.tolist() == [0, 0, 0, 1, 1, 2, 3]
    assert torch.equal(t[:3], z[:3])  # the bottom interval [0, 1]: t = z exactly, subnormals included
    assert t[3:].tolist() == [0.0, 0.5, 0.5, 0.0]
    value = _pow2.signed_pow2(torch.tensor([0, 1, 2, 3]), torch.tensor([True, False, True, False]), 0, torch.float64)
    assert value.tolist() == [0.0, 1.0, -2.0, 4.0]


@pytest.mark.parametrize("params", [{"s": 0}, {"s": 65}, {"p": 0.9}, {"s": "3"}])
def test_rejects_bad_parameters(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("natural_dithering", **params)
