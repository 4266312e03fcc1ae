"""Scaled and plain sign (spec compressors.md §5): the exact deterministic error, delta = 1/d."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError

X_TEST = torch.tensor([[0.3, -1.25, 0.0, 0.8, -0.05, 0.6, 1.0, -0.9, 0.125]], dtype=torch.float64)


def _scale(x: torch.Tensor) -> float:
    return torch.tensor(x.abs().sum().item() / x.numel()).float().double().item()  # float32 header


def test_output_is_scale_times_sign_with_sign0_positive():
    X_hat, _ = cp.compressors.make("sign").apply(X_TEST, seed=0)
    c = _scale(X_TEST[0])
    expected = torch.where(X_TEST < 0, -c, c)
    assert torch.equal(X_hat, expected)
    assert X_hat[0, 2] == c  # sign(0) = +1


@pytest.mark.parametrize("d", [1, 2, 9, 100])
def test_exact_error_is_norm2_minus_norm1_squared_over_d(d):
    g = torch.Generator().manual_seed(d)
    X = torch.randn(20, d, generator=g, dtype=torch.float64)
    X[0, : d // 2] = 0.0
    X_hat, _ = cp.compressors.make("sign").apply(X, seed=0)
    err = (X_hat - X).pow(2).sum(1)
    for i in range(20):
        x = X[i]
        c = _scale(x)
        with_header = x.pow(2).sum() - 2 * c * x.abs().sum() + c * c * d  # exact for the header sent
        assert err[i].item() == pytest.approx(with_header.item(), rel=1e-12, abs=1e-12)
        ideal = x.pow(2).sum() - x.abs().sum() ** 2 / d  # spec §5, exact scale
        assert err[i].item() == pytest.approx(ideal.item(), rel=1e-6, abs=1e-9)
        # contractive with delta(x) = ||x||_1^2 / (d ||x||^2) >= 1/d (up to the float32 header)
        assert err[i].item() <= (1 - 1 / d) * x.pow(2).sum().item() + 1e-6 * x.pow(2).sum().item()


def test_delta_is_attained_by_a_basis_vector_and_negative_control():
    d = 8
    e = torch.zeros(1, d, dtype=torch.float64)
    e[0, 3] = 2.0
    X_hat, _ = cp.compressors.make("sign").apply(e, seed=0)
    delta = cp.compressors.make("sign").theory(1, d).delta
    assert delta == 1 / d
    assert (X_hat - e).pow(2).sum().item() == pytest.approx((1 - delta) * 4.0, rel=1e-12)
    # negative control: plain sign is not contractive for small vectors
    small = 1e-3 * e
    P_hat, _ = cp.compressors.make("sign", scaled=False).apply(small, seed=0)
    assert (P_hat - small).pow(2).sum() > small.pow(2).sum()


def test_plain_sign_values_bits_theory():
    C = cp.compressors.make("sign", scaled=False)
    X_hat, bits = C.apply(X_TEST.float(), seed=0)
    assert X_hat.dtype == torch.float32
    assert torch.equal(X_hat, torch.where(X_TEST < 0, -1.0, 1.0).float())
    assert bits.tolist() == [16]  # 9 bits -> 2 bytes
    t = C.theory(3, 9)
    assert t.kind == "biased" and t.omega is None and t.delta is None and t.A is None and t.bits == 16
    t = cp.compressors.make("sign").theory(3, 9)
    assert t.kind == "contractive" and t.delta == pytest.approx(1 / 9) and t.bits == 8 * math.ceil(41 / 8)


def test_zero_d1_and_parameters():
    C = cp.compressors.make("sign")
    assert torch.equal(C.apply(torch.zeros(2, 5), seed=0)[0], torch.zeros(2, 5))
    X = torch.tensor([[-0.375], [2.0]], dtype=torch.float64)
    assert torch.equal(C.apply(X, seed=0)[0], X)
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError):
            cp.compressors.make("sign", scaled=bad)


def test_block_scaled_sign_sends_one_scale_per_block():
    X = torch.randn(3, 10, dtype=torch.float64)
    C = cp.compressors.make("sign", block_size=4)
    X_hat, bits = C.apply(X, seed=0)
    blocks = [slice(0, 4), slice(4, 8), slice(8, 10)]  # the last block is shorter
    ref = torch.cat([X[:, b].abs().mean(dim=1, keepdim=True) * torch.where(X[:, b] < 0, -1.0, 1.0) for b in blocks],
                    dim=1)
    torch.testing.assert_close(X_hat, ref, rtol=1e-6, atol=0)  # scales travel as float32
    assert bits.tolist() == [8 * ((32 * 3 + 10 + 7) // 8)] * 3
    assert C.theory(1, 10).delta == 0.25 and cp.compressors.make("sign", block_size=64).theory(1, 10).delta == 0.1


def test_block_scales_contract_a_layered_gradient_far_better_than_one_scale():
    """A gradient whose layers differ in magnitude by 10^3 (as a network's do): one scale leaves
    most of it as error, one scale per block (aligned with the layers) almost none of it."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(256, generator=g, dtype=torch.float64) * s for s in (1e-3, 1.0, 1e-2, 1e-1)])[None]
    one = cp.compressors.make("sign").apply(x, seed=0)[0]
    per_block = cp.compressors.make("sign", block_size=256).apply(x, seed=0)[0]
    err = lambda y: float(((y - x) ** 2).sum() / (x**2).sum())  # noqa: E731
    assert err(per_block) < 0.4 < 0.7 < err(one), (err(per_block), err(one))  # Gaussian blocks: 1 - 2/pi = 0.36


def test_block_size_is_checked():
    with pytest.raises(ConfigError, match="block_size"):
        cp.compressors.make("sign", block_size=0)
    with pytest.raises(ConfigError, match="plain sign has no scale"):
        cp.compressors.make("sign", scaled=False, block_size=8)
