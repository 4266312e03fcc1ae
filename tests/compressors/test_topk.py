"""TopK: deterministic error, ties, contraction, payload (compressors.md §12.2, §18)."""

import math

import pytest
import torch

import commpress as cp
from commpress.compressors._sparse import scatter_kept
from commpress.compressors.topk import topk_mask
from commpress.errors import ConfigError, PayloadError

from ._stats import assert_mean


@pytest.mark.parametrize("d,k", [(1, 1), (10, 3), (64, 8), (1000, 100), (1000, 999)])
def test_error_is_the_sum_of_the_d_minus_k_smallest_squares(d, k):
    X = torch.randn(6, d, generator=torch.Generator().manual_seed(d + k), dtype=torch.float64)
    X_hat, bits = cp.compressors.make("topk", k=k, float_bits=64).apply(X, 0)
    err = (X_hat - X).pow(2).sum(1)
    exact = X.pow(2).sort(dim=1).values[:, : d - k].sum(1)
    torch.testing.assert_close(err, exact, rtol=1e-12, atol=0)
    kept = X_hat != 0
    assert torch.equal(X_hat[kept], X[kept]) and (kept.sum(1) == k).all()
    assert (err <= (1 - k / d) * X.pow(2).sum(1) + 1e-12).all()  # contractive with delta = k/d
    width = (d - 1).bit_length()
    assert bits.tolist() == [8 * math.ceil((64 * k + min(k * width, d)) / 8)] * 6


def test_delta_is_attained_by_equal_magnitudes_and_ties_go_to_the_lower_index():
    x = torch.tensor([[1.0, -1.0, 1.0, 1.0, -1.0]], dtype=torch.float64)
    X_hat, _ = cp.compressors.make("topk", k=2, float_bits=64).apply(x, 0)
    assert X_hat.tolist() == [[1.0, -1.0, 0.0, 0.0, 0.0]]
    assert (X_hat - x).pow(2).sum().item() == pytest.approx((1 - 2 / 5) * 5)
    y = torch.tensor([[0.5, 3.0, -2.0, 2.0, 0.0, 2.0, -3.0]])
    assert topk_mask(y, 3).nonzero()[:, 1].tolist() == [1, 2, 6]  # |3|, |3|, then the first |2|
    assert topk_mask(y, 4).nonzero()[:, 1].tolist() == [1, 2, 3, 6]
    z = torch.zeros(2, 10)
    z[0, 7] = 1.0
    assert topk_mask(z, 3).nonzero().tolist() == [[0, 0], [0, 1], [0, 7], [1, 0], [1, 1], [1, 2]]


def test_deterministic_and_float32_values_on_the_wire():
    X = torch.randn(4, 300, dtype=torch.float64)
    C = cp.compressors.make("topk", ratio=0.05)
    a, bits = C.apply(X, 1)
    b, _ = C.apply(X, 999)
    assert torch.equal(a, b)  # no randomness
    kept = a != 0
    torch.testing.assert_close(a[kept], X[kept].float().double(), rtol=0, atol=0)
    assert torch.equal(C.decode(C.encode(X, 1), 1, 300, dtype=X.dtype), a)
    assert C.theory(4, 300).bits == bits[0].item()


def test_corrupted_index_lists_are_rejected():
    out = torch.zeros(1, 64)
    values = torch.ones(1, 3)
    for bad, match in [([[1, 5, 5]], "ascending"), ([[9, 5, 7]], "ascending"), ([[1, 5, 64]], ">= d")]:
        with pytest.raises(PayloadError, match=match):
            scatter_kept(out.clone(), {"index": torch.tensor(bad)}, 3, values, "topk")
    good = scatter_kept(out.clone(), {"index": torch.tensor([[1, 5, 63]])}, 3, values, "topk")
    assert good.nonzero()[:, 1].tolist() == [1, 5, 63]


def test_negative_control_unbiasedness_check_fails():
    d = 32
    x = torch.linspace(-1.0, 1.0, d, dtype=torch.float64)
    X_hat, _ = cp.compressors.make("topk", k=4).apply(x.expand(1000, d).contiguous(), 0)
    with pytest.raises(AssertionError):
        assert_mean(X_hat, x)


def test_theory_and_defaults():
    t = cp.compressors.make("topk").theory(5, 100)
    assert t.kind == "contractive" and t.delta == pytest.approx(0.1) and t.omega is None
    assert t.bits == 8 * math.ceil((32 * 10 + min(10 * 7, 100)) / 8)
    assert cp.compressors.make("topk").k_for(25) == 3


@pytest.mark.parametrize("params", [{"k": 0}, {"k": 2.5}, {"ratio": -0.1}, {"k": 3, "ratio": 0.5}, {"float_bits": 8}])
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("topk", **params)


def test_k_larger_than_d_is_rejected_at_call_time():
    with pytest.raises(ConfigError, match="k=7 with d=4"):
        cp.compressors.make("topk", k=7).apply(torch.zeros(1, 4), 0)
