"""CQ against its closed forms (spec compressors.md §8.4) and against IQ."""

import pytest
import torch

import commpress as cp
from commpress.compressors.base import f32_up

from ._stats import assert_mean, zscore


def _phi(t):
    f = t - t.floor()
    return f * (1 - f)


def _mean_errors(C, X, T):
    """||mean_i X_hat_i - mean_i X_i||^2 over T seeds."""
    xbar = X.mean(0)
    return torch.stack([(C.apply(X, s)[0].mean(0) - xbar).pow(2).sum() for s in range(T)])


def _c_n(a, b, n):
    """Cov(1{U_i<a}, 1{U_k<b}) for i != k under CQ's stratified thresholds (spec §8.4)."""
    G = torch.zeros_like(a)
    for p in range(n):
        G = G + (n * a - p).clamp(0, 1) * (n * b - p).clamp(0, 1)
    return (n * a * b - G) / (n * (n - 1))


def exact_cq_mse(X):
    """Exact one-bit CQ mean-squared error for arbitrary inputs (spec §8.4)."""
    n, d = X.shape
    rho = f32_up(X.norm(dim=1, keepdim=True)).double()
    w = 2 * rho  # (n, 1)
    u = torch.where(w > 0, (X + rho) / torch.where(w > 0, w, 1), torch.zeros_like(X))
    total = (w**2 * u * (1 - u)).sum()
    for i in range(n):
        for k in range(n):
            if i != k:
                total = total + (w[i] * w[k] * _c_n(u[i], u[k], n)).sum()
    return (total / n**2).item()


def test_cq_rows_are_individually_unbiased():
    n, d, T = 5, 8, 6000
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    C = cp.compressors.make("cq")
    samples = torch.stack([C.apply(X, s)[0] for s in range(T)])  # (T, n, d)
    assert_mean(samples.reshape(T, -1), X.reshape(-1))


def test_cq_homogeneous_mse_matches_theorem_1_closed_form():
    n, d, T = 6, 10, 6000
    x = torch.linspace(-0.3, 1.0, d, dtype=torch.float64)
    X = x.expand(n, d).contiguous()
    rho = f32_up(x.norm().reshape(1)).double().item()
    exact = (4 * rho**2 / n**2) * _phi(n * (x + rho) / (2 * rho)).sum().item()
    errs = _mean_errors(cp.compressors.make("cq"), X, T)
    assert abs(zscore(errs, exact).item()) <= 5
    assert exact <= d * x.pow(2).sum().item() / n**2


def test_cq_worked_example_from_the_spec():
    # n = 2, d = 4, x_i = (1/2, 1/2, 1/2, 1/2): CQ MSE = 1, IQ MSE = 1.5 (spec §18)
    X = torch.full((2, 4), 0.5, dtype=torch.float64)
    assert exact_cq_mse(X) == pytest.approx(1.0)
    T = 8000
    assert abs(zscore(_mean_errors(cp.compressors.make("cq"), X, T), 1.0).item()) <= 5
    assert abs(zscore(_mean_errors(cp.compressors.make("iq"), X, T), 1.5).item()) <= 5


def test_cq_heterogeneous_mse_matches_pairwise_covariance_formula():
    n, d, T = 4, 6, 8000
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    X[2] *= 3.0
    errs = _mean_errors(cp.compressors.make("cq"), X, T)
    assert abs(zscore(errs, exact_cq_mse(X)).item()) <= 5


def test_cq_is_about_n_times_better_than_iq_on_identical_vectors():
    n, d, T = 8, 32, 3000
    x = torch.randn(d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    X = x.expand(n, d).contiguous()
    cq = _mean_errors(cp.compressors.make("cq"), X, T).mean().item()
    iq = _mean_errors(cp.compressors.make("iq"), X, T).mean().item()
    rho = f32_up(x.norm().reshape(1)).double().item()
    iq_exact = (d * rho**2 - x.pow(2).sum().item()) / n
    assert iq == pytest.approx(iq_exact, rel=0.1)
    assert iq / cq > n / 2  # Thm. 1 vs Prop. 3: a factor of about n
    # the correlation never hurts: CQ's MSE <= IQ's on every input (Chebyshev sum inequality)
    assert exact_cq_mse(X) <= iq_exact


def test_cq_n1_equals_iq_distribution_and_d1_is_exact():
    x = torch.tensor([[0.3]], dtype=torch.float64)
    X_hat, _ = cp.compressors.make("cq").apply(x, 0)
    assert torch.allclose(X_hat, x, rtol=1e-6)


def test_cq_theory_constants():
    t = cp.compressors.make("cq").theory(10, 100)
    assert t.kind == "correlated" and t.omega == 99 and t.A == pytest.approx(9.9)
    assert t.extras["A_homogeneous"] == pytest.approx(1.0) and t.extras["A_paper"] == pytest.approx(0.25)
