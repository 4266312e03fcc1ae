"""EDEN: Lloyd-Max codebook, per-realisation identities, limits D_b/(1-D_b) (compressors.md §11.3, §18)."""

import math

import pytest
import torch

import commpress as cp
from commpress.compressors._lloyd_max import centroids, distortion, lloyd_residual
from commpress.errors import ConfigError

from ._rotation_ref import rotated as _rotated
from ._stats import assert_mean, zscore

# spec §11.3 (positive centroids, D_b, unbiased limits); the b = 4 outer centroids of the spec are
# off by up to 8e-7 from the fixed point (an under-converged Lloyd run): compared at 1e-6
SPEC_CENTROIDS = {
    1: [0.7978846],
    2: [0.4527800, 1.5104176],
    3: [0.2450942, 0.7560052, 1.3439093, 2.1519457],
    4: [0.1283950, 0.3880482, 0.6567590, 0.9423403, 1.2562309, 1.6180461, 2.0690167, 2.7325888],
}
SPEC_D = {1: 0.363380, 2: 0.117482, 3: 0.034548, 4: 0.009501}
SPEC_LIMIT = {1: 0.570796, 2: 0.133121, 3: 0.035784, 4: 0.009592}


@pytest.mark.parametrize("b", [1, 2, 3, 4])
def test_lloyd_max_centroids_match_the_spec(b):
    c = centroids(b)
    assert c.numel() == 2**b and torch.equal(c, -c.flip(0)) and (c[1:] > c[:-1]).all()
    pos = c[2 ** (b - 1):]
    torch.testing.assert_close(pos, torch.tensor(SPEC_CENTROIDS[b], dtype=torch.float64), rtol=0, atol=1e-6)
    D = distortion(b)
    assert D == pytest.approx(SPEC_D[b], abs=1e-6)
    assert D / (1 - D) == pytest.approx(SPEC_LIMIT[b], abs=1e-6)


@pytest.mark.parametrize("b", range(1, 9))
def test_lloyd_max_is_a_fixed_point_with_mc_distortion(b):
    assert lloyd_residual(b) < 1e-12
    assert centroids(1)[1].item() == pytest.approx(math.sqrt(2 / math.pi), rel=1e-14)
    z = torch.randn(200_000, generator=torch.Generator().manual_seed(b), dtype=torch.float64)
    c = centroids(b)
    q = c[(z.unsqueeze(1) - c).abs().argmin(dim=1)]
    assert abs(zscore((z - q).pow(2).unsqueeze(1), distortion(b)).item()) <= 5
    assert abs(zscore((z * q - q * q).unsqueeze(1), 0.0).item()) <= 5  # centroid condition E[z c] = E[c^2]


@pytest.mark.parametrize("rotation", ["hadamard", "haar"])
@pytest.mark.parametrize("scale", ["unbiased", "biased"])
@pytest.mark.parametrize("b", [1, 2, 3, 6])  # b = 6 takes the bucketize path
def test_error_of_every_realisation_is_the_spec_identity(rotation, scale, b):
    d, T, seed = 32, 100, 6
    X = torch.randn(T, d, generator=torch.Generator().manual_seed(b), dtype=torch.float64)
    X_hat, bits = cp.compressors.make("eden", bits=b, rotation=rotation, scale=scale).apply(X, seed)
    z = math.sqrt(d) * _rotated(X, seed, "eden/rot", rotation) / X.norm(dim=1, keepdim=True)
    cb = centroids(b)
    c = cb[(z.unsqueeze(-1) - cb).abs().argmin(dim=-1)]  # nearest centroid, computed independently
    zc, cc = (z * c).sum(1), (c * c).sum(1)
    expected = d * cc / zc**2 - 1 if scale == "unbiased" else 1 - zc**2 / (d * cc)
    vnmse = (X_hat - X).pow(2).sum(1) / X.pow(2).sum(1)
    torch.testing.assert_close(vnmse, expected, rtol=1e-5, atol=1e-7)  # float32 scale rounding
    assert bits.tolist() == [8 * math.ceil((b * d + 32) / 8)] * T


@pytest.mark.parametrize("b", [1, 2, 3, 4])
def test_unbiased_vnmse_limit_is_D_over_1_minus_D(b):
    # Gaussian rows rotate to Gaussian vectors; at d = 2^16 the O(1/d) bias of the mean vNMSE is far
    # below the Monte-Carlo error of 16 rows, so this tests the limit D_b / (1 - D_b) itself
    d, T = 1 << 16, 16
    X = torch.randn(T, d, generator=torch.Generator().manual_seed(b), dtype=torch.float64)
    X_hat, _ = cp.compressors.make("eden", bits=b).apply(X, 2)
    v = (X_hat - X).pow(2).sum(1) / X.pow(2).sum(1)
    D = distortion(b)
    assert abs(zscore(v, D / (1 - D)).item()) <= 5
    if b <= 3:  # negative control: the biased variant's limit (at b = 4 they differ by only 1%)
        assert abs(zscore(v, D).item()) > 5
    Xb, _ = cp.compressors.make("eden", bits=b, scale="biased").apply(X, 2)
    vb = (Xb - X).pow(2).sum(1) / X.pow(2).sum(1)
    assert abs(zscore(vb, D).item()) <= 5


@pytest.mark.parametrize("b", [2, 3])
def test_unbiased_with_haar_rotation(b):
    d = 6
    x = torch.linspace(-1.0, 1.5, d, dtype=torch.float64)
    X_hat, _ = cp.compressors.make("eden", bits=b, rotation="haar").apply(x.expand(40_000, d).contiguous(), 3)
    assert_mean(X_hat, x)
    Xb, _ = cp.compressors.make("eden", bits=b, rotation="haar", scale="biased").apply(x.expand(40_000, d).contiguous(), 3)
    with pytest.raises(AssertionError):  # negative control: the MSE-optimal scale shrinks
        assert_mean(Xb, x)


def test_edges_dtype_and_codes_on_the_wire():
    C = cp.compressors.make("eden", bits=3)
    one = torch.tensor([[2.0], [-0.5]], dtype=torch.float64)
    torch.testing.assert_close(C.apply(one, 0)[0], one, rtol=1e-6, atol=0)
    assert torch.equal(C.apply(torch.zeros(3, 9), 0)[0], torch.zeros(3, 9))
    X = torch.randn(4, 50)
    X_hat, bits = C.apply(X, 1)
    assert X_hat.dtype == torch.float32 and bits.tolist() == [8 * math.ceil((3 * 64 + 32) / 8)] * 4
    torch.testing.assert_close(C.decode(C.encode(X, 1), 1, 50), X_hat)


def test_theory():
    t = cp.compressors.make("eden").theory(8, 100)
    D = distortion(2)
    assert t.kind == "unbiased" and t.omega == pytest.approx(D / (1 - D)) and t.A == pytest.approx(t.omega / 8)
    assert t.bits == 8 * math.ceil((2 * 128 + 32) / 8) and t.extras["D_b"] == pytest.approx(D)
    tb = cp.compressors.make("eden", bits=3, scale="biased").theory(8, 100)
    assert tb.kind == "contractive" and tb.delta == pytest.approx(1 - distortion(3))


@pytest.mark.parametrize("params", [{"bits": 0}, {"bits": 9}, {"bits": 1.5}, {"rotation": "x"}, {"scale": 1}])
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("eden", **params)
