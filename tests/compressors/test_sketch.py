"""Gaussian sketch: projection identities and exact expected errors (compressors.md §13, §18)."""

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError

from ._stats import assert_mean, zscore


def _x(d):
    return torch.linspace(-1.0, 2.0, d, dtype=torch.float64)


def test_each_realisation_is_an_orthogonal_projection():
    d, k, T = 20, 5, 50
    X = torch.randn(T, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    P, bits = cp.compressors.make("sketch", k=k, float_bits=64).apply(X, 3)
    resid = X - P
    torch.testing.assert_close((P * resid).sum(1), torch.zeros(T, dtype=torch.float64), rtol=0, atol=1e-10)
    # projecting again changes nothing: C(C(x)) = C(x) with the same S (same seed and client)
    PP, _ = cp.compressors.make("sketch", k=k, float_bits=64).apply(P, 3)
    torch.testing.assert_close(PP, P, rtol=1e-9, atol=1e-10)
    assert bits.tolist() == [64 * k] * T


@pytest.mark.parametrize("scaled", [False, True])
def test_expected_error_is_exact(scaled):
    d, k, T = 12, 3, 40_000
    x = _x(d)
    X_hat, _ = cp.compressors.make("sketch", k=k, scaled=scaled, float_bits=64).apply(x.expand(T, d).contiguous(), 1)
    err = (X_hat - x).pow(2).sum(1, keepdim=True)
    factor = d / k - 1 if scaled else 1 - k / d
    assert abs(zscore(err, factor * x.pow(2).sum().item()).item()) <= 5
    if scaled:
        assert_mean(X_hat, x)
    else:
        assert_mean(X_hat, (k / d) * x)  # E P_S = (k/d) I
        with pytest.raises(AssertionError):  # negative control: the unscaled sketch is biased
            assert_mean(X_hat, x)


def test_shared_sketch_is_linear_and_summable():
    d, k = 30, 6
    A = torch.randn(4, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    B = torch.randn(4, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    C = cp.compressors.make("sketch", k=k, shared=True, float_bits=64)
    assert C.summable and not cp.compressors.make("sketch").summable
    torch.testing.assert_close(C.apply(A + B, 5)[0], C.apply(A, 5)[0] + C.apply(B, 5)[0], rtol=1e-10, atol=1e-10)
    same = A[:1].expand(4, d).contiguous()
    shared, _ = C.apply(same, 5)
    private, _ = cp.compressors.make("sketch", k=k, float_bits=64).apply(same, 5)
    torch.testing.assert_close(shared, shared[:1].expand_as(shared), rtol=0, atol=1e-12)
    assert not torch.allclose(private[0], private[1])


def test_k_equal_d_is_exact_and_defaults():
    X = torch.randn(3, 7, dtype=torch.float64)
    torch.testing.assert_close(cp.compressors.make("sketch", k=7, float_bits=64).apply(X, 0)[0], X, rtol=1e-9, atol=1e-10)
    C = cp.compressors.make("sketch")
    assert [C.k_for(d) for d in (1, 5, 10, 11, 30, 31)] == [1, 1, 1, 2, 3, 4]  # max(1, ceil(d/10))
    assert torch.equal(C.apply(torch.zeros(2, 9), 0)[0], torch.zeros(2, 9))


def test_theory():
    t = cp.compressors.make("sketch", k=8).theory(10, 40)
    assert t.kind == "contractive" and t.delta == pytest.approx(0.2) and t.bits == 256
    u = cp.compressors.make("sketch", k=8, scaled=True).theory(10, 40)
    assert u.kind == "unbiased" and u.omega == pytest.approx(4.0) and u.A == pytest.approx(0.4) and u.B == 0
    assert cp.compressors.make("sketch", k=8, scaled=True, shared=True).theory(10, 40).A == pytest.approx(4.0)


def test_memory_guard_and_k_checks_at_call_time():
    with pytest.raises(ConfigError, match="O\\(n d k\\)"):
        cp.compressors.make("sketch").apply(torch.zeros(16, 1 << 14), 0)
    with pytest.raises(ConfigError, match="1 <= k <= d"):
        cp.compressors.make("sketch", k=5).apply(torch.zeros(2, 4), 0)


@pytest.mark.parametrize(
    "params", [{"k": 0}, {"ratio": 2.0}, {"k": 1, "ratio": 0.5}, {"kind": "srht"}, {"shared": "no"}, {"scaled": None}]
)
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("sketch", **params)
