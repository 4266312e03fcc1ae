"""Wangni et al. sparsification: KKT probabilities, exact errors, count header (compressors.md §12.3, §18)."""

import math

import pytest
import torch

import commpress as cp
from commpress.compressors.wangni import kkt_probabilities, kkt_probabilities_sorted
from commpress.errors import ConfigError, PayloadError

from ._stats import assert_mean, zscore


def _magnitudes(rows, d, seed):
    a = torch.randn(rows, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).abs() ** 3
    a[0] = 0.0  # a zero row
    a[1, : d // 2] = 0.0  # half zeros
    if d >= 4:
        a[2, :4] = a[2, 4 % d]  # ties
    return a


MODES = [{"kappa": 1.0}, {"kappa": 0.1}, {"kappa": 0.5}, {"epsilon": 0.5}, {"epsilon": 3.0}]


@pytest.mark.parametrize("d", [1, 2, 5, 50, 1000])
@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"{list(m)[0]}={list(m.values())[0]}")
def test_fixed_point_equals_the_sorted_rule_and_meets_the_constraint(d, mode):
    a = _magnitudes(30, d, d)
    kw = {"kappa": max(1.0, mode["kappa"] * d)} if "kappa" in mode else mode
    p = kkt_probabilities(a, **kw)
    torch.testing.assert_close(p, kkt_probabilities_sorted(a, **kw), rtol=1e-12, atol=1e-12)
    assert ((p >= 0) & (p <= 1)).all() and torch.equal(p > 0, a > 0)
    nnz = (a > 0).sum(1).double()
    if "kappa" in kw:
        expected = torch.minimum(nnz, torch.full_like(nnz, kw["kappa"]))
        torch.testing.assert_close(p.sum(1), expected, rtol=1e-12, atol=1e-12)
    else:
        live = nnz > 0
        ratio = torch.where(p > 0, a * a / p.clamp_min(1e-300), torch.zeros_like(a)).sum(1)[live] / (a * a).sum(1)[live]
        torch.testing.assert_close(ratio, torch.full_like(ratio, 1 + kw["epsilon"]), rtol=1e-12, atol=0)


def test_probabilities_minimise_the_variance_among_feasible_ones():
    # density constraint sum p = kappa, 0 < p <= 1: the KKT point beats every feasible perturbation
    d, kappa = 40, 8.0
    a = torch.rand(1, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64) ** 2 + 0.01
    a[0, :3] *= 30  # a few saturate
    p = kkt_probabilities(a, kappa=kappa)[0]
    best = (a[0] ** 2 / p).sum()
    g = torch.Generator().manual_seed(4)
    for _ in range(500):
        step = torch.randn(d, generator=g, dtype=torch.float64) * 0.02
        step -= step.mean()
        q = p + step
        if (q <= 0).any() or (q > 1).any():
            continue
        assert (a[0] ** 2 / q).sum() >= best - 1e-12


def _apply(C, x, T, seed):
    return C.apply(x.expand(T, x.numel()).contiguous(), seed)


@pytest.mark.parametrize("params", [{}, {"rho": 0.3}, {"epsilon": 0.5}])
def test_unbiased_with_exact_error(params):
    d, T = 24, 40_000
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(d // 2)
    x = torch.linspace(0.2, 2.0, d, dtype=torch.float64) ** 2 * signs  # every p_j >= 1% (no empty z-test)
    C = cp.compressors.make("wangni", float_bits=64, **params)
    X_hat, bits = _apply(C, x, T, 2)
    assert_mean(X_hat, x)
    p = C.probabilities(x[None])[0]
    exact = (x * x * torch.where(p > 0, 1 / p - 1, torch.zeros_like(p))).sum().item()
    err = (X_hat - x).pow(2).sum(1)
    assert abs(zscore(err.unsqueeze(1), exact).item()) <= 5
    if "epsilon" in params:  # variance mode: omega = epsilon exactly
        assert exact == pytest.approx(params["epsilon"] * x.pow(2).sum().item(), rel=1e-12)
    else:  # density mode: expected count kappa, omega <= d/kappa - 1
        kappa = max(1.0, params.get("rho", 0.1) * d)
        assert abs(zscore((X_hat != 0).sum(1, keepdim=True).double(), kappa).item()) <= 5
        assert exact <= (d / kappa - 1) * x.pow(2).sum().item()
    # bits: 32-bit count + values + the shorter index set, per row
    c = (X_hat != 0).sum(1)
    width = math.ceil(math.log2(d))
    info = 32 + 64 * c + torch.minimum(c * width, torch.full_like(c, d))
    assert torch.equal(bits, 8 * ((info + 7) // 8))


def test_negative_control_biased_estimator_fails():
    d, T = 24, 40_000
    x = torch.linspace(-1.0, 2.0, d, dtype=torch.float64)
    X_hat, _ = _apply(cp.compressors.make("wangni"), x, T, 2)
    C = cp.compressors.make("wangni")
    p = C.probabilities(x[None])[0]
    with pytest.raises(AssertionError):  # forgetting the 1/p rescaling
        assert_mean(X_hat * p, x)


def test_wire_round_trip_with_different_counts_per_row():
    X = torch.randn(12, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    X[3] = 0.0
    X[5, :60] = 0.0  # 4 nonzeros: all kept
    C = cp.compressors.make("wangni", rho=0.2)
    X_hat, bits = C.apply(X, 9)
    payloads = C.encode(X, 9)
    assert bits.tolist() == [8 * len(p) for p in payloads]
    assert len({len(p) for p in payloads}) > 1  # data-dependent sizes
    assert torch.equal(C.decode(payloads, 9, 64, dtype=X.dtype), X_hat)
    assert len(payloads[3]) == 4 and torch.equal(X_hat[3], torch.zeros(64, dtype=X.dtype))
    torch.testing.assert_close(X_hat[5], X[5].float().double(), rtol=0, atol=0)
    dense = cp.compressors.make("wangni", rho=0.9)  # many nonzeros: the bitmap is shorter
    Xd, bd = dense.apply(X, 1)
    assert torch.equal(dense.decode(dense.encode(X, 1), 1, 64, dtype=X.dtype), Xd)


def test_count_header_is_validated_before_the_layout():
    C = cp.compressors.make("wangni")
    X = torch.randn(2, 16, dtype=torch.float64)
    payloads = C.encode(X, 0)
    bad = (17).to_bytes(4, "little") + payloads[0][4:]
    with pytest.raises(PayloadError, match="exceeds d=16"):
        C.decode([bad, payloads[1]], 0, 16)
    huge = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(PayloadError):
        C.decode([huge, payloads[1]], 0, 16)


def test_edges():
    C = cp.compressors.make("wangni")
    one = torch.tensor([[1.5], [0.0]], dtype=torch.float64)
    X_hat, bits = cp.compressors.make("wangni", float_bits=64).apply(one, 0)
    assert torch.equal(X_hat, one) and bits.tolist() == [8 * (4 + 8), 32]
    assert C.theory(4, 100).omega == pytest.approx(100 / 10 - 1)
    assert cp.compressors.make("wangni", epsilon=0.25).theory(4, 100).omega == 0.25


@pytest.mark.parametrize(
    "params", [{"rho": 0.0}, {"rho": 1.5}, {"epsilon": 0.0}, {"epsilon": -1}, {"epsilon": float("inf")},
               {"rho": 0.1, "epsilon": 0.1}, {"float_bits": 33}]
)
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("wangni", **params)
