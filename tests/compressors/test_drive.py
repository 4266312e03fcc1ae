"""DRIVE against the spec's exact per-realisation identities and Haar means (compressors.md §11.2, §18)."""

import math

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError

from ._rotation_ref import rotated as _rotated
from ._stats import assert_mean, zscore


def _x(d, seed=0):
    return torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("rotation", ["hadamard", "haar"])
@pytest.mark.parametrize("scale", ["unbiased", "biased"])
def test_error_of_every_realisation_is_the_spec_identity(rotation, scale):
    d, T, seed = 16, 200, 3  # d = d': the identities are exact
    X = torch.randn(T, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    C = cp.compressors.make("drive", rotation=rotation, scale=scale)
    X_hat, bits = C.apply(X, seed)
    Y = _rotated(X, seed, "drive/rot", rotation)
    l1, sq = Y.abs().sum(1), X.pow(2).sum(1)
    # any S: ||x_hat - x||^2 = ||x||^2 - 2 S ||R x||_1 + S^2 d'  (S as sent: float32)
    S = (sq / l1 if scale == "unbiased" else l1 / d).float().double()
    err = (X_hat - X).pow(2).sum(1)
    torch.testing.assert_close(err, sq - 2 * S * l1 + S * S * d, rtol=1e-9, atol=1e-12)
    vnmse = d * sq / l1**2 - 1 if scale == "unbiased" else 1 - l1**2 / (d * sq)
    torch.testing.assert_close(err / sq, vnmse, rtol=1e-5, atol=1e-7)  # float32 scale rounding
    # the decoder sends sign(R x') (bit 1 = negative) and S: x_hat = R^{-1}(S sign)
    assert bits.tolist() == [8 * math.ceil((d + 32) / 8)] * T


def test_padding_makes_the_identity_an_upper_bound():
    d, T, seed = 13, 400, 4  # d' = 16
    X = torch.randn(T, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    X_hat, bits = cp.compressors.make("drive").apply(X, seed)
    Y = _rotated(X, seed, "drive/rot", "hadamard")
    sq, l1 = X.pow(2).sum(1), Y.abs().sum(1)
    padded_error = (16 * sq / l1**2 - 1) * sq
    err = (X_hat - X).pow(2).sum(1)
    assert (err <= padded_error * (1 + 1e-5) + 1e-9).all()
    assert err.mean() < 0.95 * padded_error.mean()  # truncation drops the error on the padded coordinates
    assert bits[0].item() == 8 * math.ceil((16 + 32) / 8)


def _vnmse(C, x, T, seed):
    X_hat, _ = C.apply(x.expand(T, x.numel()).contiguous(), seed)
    return (X_hat - x).pow(2).sum(1) / x.pow(2).sum()


def test_haar_mean_vnmse_unbiased_at_d2_is_4_over_pi_minus_1():
    v = _vnmse(cp.compressors.make("drive", rotation="haar"), torch.tensor([0.3, -1.2], dtype=torch.float64), 40_000, 1)
    assert abs(zscore(v, 4 / math.pi - 1).item()) <= 5
    assert abs(zscore(v, math.pi / 2 - 1).item()) > 5  # negative control: the d -> infinity limit is far


@pytest.mark.parametrize("d", [2, 5, 16])
def test_haar_mean_vnmse_biased_is_exact(d):
    v = _vnmse(cp.compressors.make("drive", rotation="haar", scale="biased"), _x(d), 20_000, 2)
    exact = (1 - 2 / math.pi) * (1 - 1 / d)
    assert abs(zscore(v, exact).item()) <= 5
    t = cp.compressors.make("drive", rotation="haar", scale="biased").theory(4, d)
    assert t.kind == "contractive" and t.delta == pytest.approx(1 - exact)


def test_unbiased_vnmse_limit_is_pi_over_2_minus_1():
    # Gaussian rows rotate to exactly Gaussian vectors; at d = 2^16 the O(1/d) bias of the mean is
    # ~100x below the Monte-Carlo error of 16 rows, so the limit itself is tested
    d, T = 1 << 16, 16
    X = torch.randn(T, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    X_hat, _ = cp.compressors.make("drive").apply(X, 1)
    v = (X_hat - X).pow(2).sum(1) / X.pow(2).sum(1)
    assert abs(zscore(v, math.pi / 2 - 1).item()) <= 5
    assert abs(zscore(v, 1 - 2 / math.pi).item()) > 5  # negative control: the biased variant's limit


@pytest.mark.parametrize("d", [3, 6])
def test_unbiased_with_haar_rotation(d):
    x = _x(d, 3)
    X_hat, _ = cp.compressors.make("drive", rotation="haar").apply(x.expand(40_000, d).contiguous(), 7)
    assert_mean(X_hat, x)


def test_biased_scale_fails_the_unbiasedness_test():
    x = _x(6, 3)
    X_hat, _ = cp.compressors.make("drive", rotation="haar", scale="biased").apply(x.expand(40_000, 6).contiguous(), 7)
    with pytest.raises(AssertionError):
        assert_mean(X_hat, x)


def test_hadamard_is_only_approximately_unbiased():
    # a regression bound, not a theorem: the randomized Hadamard leaves a bias that shrinks with d
    # (measured: 2.4% of ||x|| at d = 64, 0.5% at d = 256, for a Gaussian x; Haar is exact above)
    T = 40_000
    for d, bound in [(64, 0.05), (256, 0.02)]:
        x = _x(d, 1)
        X_hat, _ = cp.compressors.make("drive").apply(x.expand(T, d).contiguous(), 5)
        bias = (X_hat.mean(0) - x).norm() / x.norm()
        assert bias <= bound


def test_easy_inputs_and_edges():
    C = cp.compressors.make("drive")
    e1 = torch.zeros(1, 8, dtype=torch.float64)
    e1[0, 3] = 2.5
    torch.testing.assert_close(C.apply(e1, 0)[0], e1, rtol=1e-6, atol=1e-7)  # |R e_j| is flat: vNMSE 0
    pair = torch.zeros(1, 8, dtype=torch.float64)
    pair[0, :2] = 1.0  # half of R x' vanishes for every rotation: vNMSE exactly 1 (omega is not a sup bound)
    err = (C.apply(pair, 3)[0] - pair).pow(2).sum().item()
    assert err == pytest.approx(2.0, rel=1e-6)
    one = torch.tensor([[-3.0]], dtype=torch.float64)
    torch.testing.assert_close(C.apply(one, 1)[0], one, rtol=1e-6, atol=0)  # d = 1: exact
    assert torch.equal(C.apply(torch.zeros(2, 5), 1)[0], torch.zeros(2, 5))


def test_private_and_shared_rotations():
    x = _x(32).expand(4, 32).contiguous()
    private, _ = cp.compressors.make("drive").apply(x, 3)
    shared, _ = cp.compressors.make("drive", shared_rotation=True).apply(x, 3)
    assert not torch.allclose(private[0], private[1])
    assert torch.equal(shared, shared[:1].expand_as(shared))


def test_eden_with_one_bit_is_drive():
    X = torch.randn(5, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    drive = cp.compressors.make("drive")
    eden = cp.compressors.make("eden", bits=1)
    eden.name = "drive"  # same rotation tag ("drive/rot") on this instance only
    try:
        torch.testing.assert_close(eden.apply(X, 4)[0], drive.apply(X, 4)[0], rtol=1e-6, atol=1e-9)
    finally:
        del eden.name


def test_float32_input_and_theory():
    X = torch.randn(3, 100)
    X_hat, bits = cp.compressors.make("drive").apply(X, 0)
    assert X_hat.dtype == torch.float32 and bits.tolist() == [8 * math.ceil((128 + 32) / 8)] * 3
    t = cp.compressors.make("drive").theory(10, 100)
    assert t.kind == "unbiased" and t.omega == pytest.approx(math.pi / 2 - 1) and t.A == pytest.approx(t.omega / 10)
    assert t.bits == 160 and t.B == 0
    assert cp.compressors.make("drive", shared_rotation=True).theory(10, 100).A == pytest.approx(math.pi / 2 - 1)


@pytest.mark.parametrize("params", [{"rotation": "dct"}, {"scale": "optimal"}, {"shared_rotation": 1}, {"bits": 2}])
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("drive", **params)
