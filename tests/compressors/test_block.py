"""Block quantization (spec compressors.md §6): per-block norms, exact error, omega, bits."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError

from ._dither_exact import block_error, dithering_error, header_norm
from ._stats import assert_mean

T = 40_000
G = torch.Generator().manual_seed(7)
# 21 coordinates, B = 8: blocks of 8, 8 and 5; the middle block is zero, the blocks differ in scale.
X_TEST = torch.cat([torch.randn(8, generator=G, dtype=torch.float64), torch.zeros(8, dtype=torch.float64),
                    100 * torch.randn(5, generator=G, dtype=torch.float64)])


def _samples(x, seed, **params):
    X_hat, _ = cp.compressors.make("block", **params).apply(x.expand(T, x.numel()).contiguous(), seed=seed)
    return X_hat


def test_unbiased_with_the_exact_blockwise_error():
    X_hat = _samples(X_TEST, 1, block_size=8)
    assert_mean(X_hat, X_TEST)
    err = (X_hat - X_TEST).pow(2).sum(1)
    exact = block_error(X_TEST, 8)
    # spec §6 form: sum_b ||v_b|| ||v_b||_1 - ||v_b||^2 (with the float32 headers)
    form = sum(header_norm(v, 2) * v.abs().sum().item() - v.pow(2).sum().item() for v in X_TEST.split(8))
    assert exact == pytest.approx(form, rel=1e-9)
    assert_mean(err, exact)
    with pytest.raises(AssertionError):  # negative control: one norm for the whole vector is worse
        assert_mean(err, dithering_error(X_TEST, 2, 1))


def test_blocks_use_their_own_norms():
    X_hat = _samples(X_TEST, 2, block_size=8)
    assert torch.all(X_hat[:, 8:16] == 0)  # the zero block decodes to zero
    for lo, hi in ((0, 8), (16, 21)):
        values = X_hat[:, lo:hi].abs().unique().tolist()
        assert values == pytest.approx([0.0, header_norm(X_TEST[lo:hi], 2)])


def test_general_p_and_s():
    x = X_TEST.float().double()  # p = inf: each block's max is then sent exactly (and stays exact)
    X_hat = _samples(x, 3, block_size=5, p="inf", s=3)
    assert_mean(X_hat, x)
    assert_mean((X_hat - x).pow(2).sum(1), block_error(x, 5, "inf", 3))


def test_theory_omega_bits():
    n = 4
    for B, d in [(512, 1000), (512, 100), (8, 21), (3, 1)]:
        t = cp.compressors.make("block", block_size=B).theory(n, d)
        largest = min(B, d)
        assert t.omega == pytest.approx(math.sqrt(largest) - 1)
        assert t.extras["omega_paper"] == pytest.approx(math.sqrt(largest) + 1)
        assert t.A == pytest.approx(t.omega / n) and t.B == 0 and t.kind == "unbiased"
        blocks = math.ceil(d / B)
        assert t.extras["blocks"] == blocks and t.bits == 8 * math.ceil((32 * blocks + 2 * d) / 8)
        X = torch.randn(2, d, dtype=torch.float64)
        assert cp.compressors.make("block", block_size=B).apply(X, seed=0)[1].tolist() == [t.bits] * 2
    # omega is attained by a constant largest block
    x = torch.ones(8, dtype=torch.float64)
    assert block_error(x, 8) == pytest.approx((math.sqrt(8) - 1) * 8, rel=1e-6)


def test_default_block_size_and_edges():
    C = cp.compressors.make("block")
    assert C.params() == {"block_size": 512, "p": 2, "s": 1}
    X = torch.tensor([[0.75], [0.0], [-2.0]], dtype=torch.float32)
    assert torch.equal(C.apply(X, seed=0)[0], X)
    X = torch.randn(3, 1100, dtype=torch.float64)
    X[:, 512:1024] = 0.0
    X_hat, bits = C.apply(X, seed=1)
    assert torch.all(X_hat[:, 512:1024] == 0) and bits.tolist() == [8 * math.ceil((32 * 3 + 2 * 1100) / 8)] * 3


@pytest.mark.parametrize("params", [{"block_size": 0}, {"block_size": 2.5}, {"s": 0}, {"p": 0}, {"elias": True}])
def test_rejects_bad_parameters(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("block", **params)
