import pytest
import torch

import commpress as cp
from commpress.compressors.base import f32_up
from commpress.errors import ConfigError, PayloadError

from . import _range_cases as RC
from ._stats import assert_mean


def _x(d):
    return torch.linspace(-1.0, 0.7, d, dtype=torch.float64)


@pytest.mark.parametrize("levels", [1, 3])
def test_iq_is_unbiased(levels):
    d, T = 16, 40_000
    x = _x(d)
    X_hat, _ = cp.compressors.make("iq", levels=levels).apply(x.expand(T, d).contiguous(), seed=1)
    assert_mean(X_hat, x)


def test_iq_error_is_exactly_d_minus_1_times_norm_for_one_bit():
    d, T = 16, 40_000
    x = _x(d)
    rho = f32_up(x.norm().reshape(1)).double().item()
    exact = d * rho**2 - x.pow(2).sum().item()  # = (d-1)||x||^2 up to the float32 header
    X_hat, _ = cp.compressors.make("iq").apply(x.expand(T, d).contiguous(), seed=2)
    err = (X_hat - x).pow(2).sum(dim=1)
    assert_mean(err, exact)
    assert abs(exact / x.pow(2).sum().item() - (d - 1)) < 1e-5


def test_iq_multilevel_error_matches_phi_formula():
    d, s, T = 12, 3, 40_000
    x = _x(d)
    rho = f32_up(x.norm().reshape(1)).double().item()
    u = (x + rho) / (2 * rho) * s
    phi = (u - u.floor()) * (1 - (u - u.floor()))
    exact = ((2 * rho / s) ** 2 * phi).sum().item()
    X_hat, _ = cp.compressors.make("iq", levels=s).apply(x.expand(T, d).contiguous(), seed=3)
    assert_mean((X_hat - x).pow(2).sum(dim=1), exact)


def test_negative_control_mean_test_detects_a_bias():
    d, T = 16, 40_000
    x = _x(d)
    X_hat, _ = cp.compressors.make("iq").apply(x.expand(T, d).contiguous(), seed=1)
    with pytest.raises(AssertionError):
        assert_mean(X_hat, x + 0.05)


def test_iq_minmax_and_fixed_ranges():
    X = torch.randn(5, 9, dtype=torch.float64)
    for C in (cp.compressors.make("iq", range="minmax"), cp.compressors.make("iq", range="fixed", low=-5, high=5)):
        X_hat, bits = C.apply(X, 0)
        assert torch.isfinite(X_hat).all()
        assert bits.tolist() == [8 * len(p) for p in C.encode(X, 0)]


# ---------------------------------------------------------------------- range="minmax" / "fixed"
@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("range_", RC.RANGES)
def test_iq_values_on_the_grid_of_the_range_are_sent_exactly(range_, levels):
    # a decoder that swaps lo and hi fails here
    RC.check_grid_values_sent_exactly(RC.make("iq", range_, levels))


@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("range_", RC.RANGES)
def test_iq_is_unbiased_with_the_exact_variance_on_minmax_and_fixed_ranges(range_, levels):
    RC.check_unbiased_with_exact_variance(RC.make("iq", range_, levels), 3, assert_mean)


def test_negative_control_iq_unbiasedness_on_a_range_detects_a_swapped_decoder(monkeypatch):
    # the same check against a decoder that maps level -> hi - (hi - lo) level / s fails
    from commpress.compressors._range_quantizer import RangeQuantizer

    decode = RangeQuantizer._decode

    def swapped(self, message, ctx):
        lo, hi = self._bounds(message, ctx)
        return lo + hi - decode(self, message, ctx)

    monkeypatch.setattr(RangeQuantizer, "_decode", swapped)
    C = RC.make("iq", "minmax", 3)
    out, mean, var = RC.per_client_samples(C, n=3, R=2000, seed=5)
    with pytest.raises(AssertionError):
        assert_mean(out[:, var > 0], mean[var > 0])  # the random entries alone already fail


@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("range_", RC.RANGES)
def test_iq_output_lies_on_the_grid_of_its_range(range_, levels):
    RC.check_output_on_the_grid(RC.make("iq", range_, levels), levels)


@pytest.mark.parametrize("case", range(4), ids=["minmax-1bit", "minmax-s3", "fixed-1bit", "fixed-s3"])
def test_iq_decodes_a_hand_built_payload(case):
    RC.check_hand_built_payload("iq", case, PayloadError)


@pytest.mark.parametrize("params", [{"levels": 0}, {"levels": 1.5}, {"range": "l3"}, {"range": "fixed", "low": 1, "high": 0}])
def test_iq_rejects_bad_parameters(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("iq", **params)


def test_iq_theory():
    t = cp.compressors.make("iq").theory(10, 100)
    assert t.kind == "unbiased" and t.omega == 99 and t.A == pytest.approx(9.9) and t.B == 0
    assert t.bits == 136  # 32 + 100 information bits, padded to 17 bytes
