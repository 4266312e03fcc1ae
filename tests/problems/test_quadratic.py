"""Quadratic generators: closed-form constants, spec worked example, oracles, optimum."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.problems import QuadraticProblem
from commpress.problems._quadform import dense_constants, tridiag_eigenvalues, tridiag_eigenvectors
from tests.compressors._stats import zscore

make = cp.problems.make


def worked_example():
    return make("quadratic", n_clients=2, dim=5, reg=1e-6, scale=1.0, nu_s=[0.9, 1.1], nu_b=[0.1, -0.1])


def test_worked_example_of_the_spec():
    q = worked_example()
    s = q.smoothness()
    assert q.lambda_min0 == pytest.approx(0.0669872981, abs=1e-10)
    assert s.L_i.tolist() == pytest.approx([0.7727251336, 0.9593276740], abs=1e-10)
    assert s.L_minus == pytest.approx(0.8660264038, abs=1e-10)
    assert s.L_plus == pytest.approx(0.8710378058, abs=1e-10)
    assert s.L_qm == pytest.approx(0.8710378058, abs=1e-10)
    assert s.L_pm == pytest.approx(0.0933012702, abs=1e-10)
    assert s.exact
    assert q.loss(q.x0()) == pytest.approx(1.6471414190, abs=1e-9)
    f_star, _ = q.optimum()
    # f* ~ 1/lambda: a round-off of 1e-17 in lambda_min moves it by ~1e-10 relative
    assert f_star == pytest.approx(-2656.5932379, rel=1e-9)
    w = s.L_i / s.L_i.sum()
    L_pw, L_pmw = s.weighted(w)
    assert L_pw == pytest.approx(0.8660264038, abs=1e-10)
    assert L_pw == pytest.approx(s.L_am, abs=1e-12)
    assert L_pmw == pytest.approx(0.0067378386, abs=1e-10)


def test_worked_example_matrices_are_the_spec_algorithm():
    q = worked_example()
    T = torch.diag(torch.full((5,), 2.0, dtype=torch.float64)) - torch.diag(torch.ones(4, dtype=torch.float64), 1) \
        - torch.diag(torch.ones(4, dtype=torch.float64), -1)
    nu = torch.tensor([0.9, 1.1], dtype=torch.float64)
    A0 = nu[:, None, None] / 4 * T
    lam_min = torch.linalg.eigvalsh(A0.mean(0))[0]
    A = A0 + (1e-6 - lam_min) * torch.eye(5, dtype=torch.float64)
    assert torch.allclose(q.matrices(), A, atol=1e-15)
    b1 = nu / 4 * (-1 + torch.tensor([0.1, -0.1], dtype=torch.float64))
    assert torch.allclose(q.b[:, 0], b1) and bool((q.b[:, 1:] == 0).all())
    assert q.x0().tolist() == pytest.approx([math.sqrt(5), 0, 0, 0, 0])


@pytest.mark.parametrize("name,s", [("quadratic", 0.1), ("quadratic", 0.7), ("quadratic_spread", 1.5)])
def test_closed_forms_equal_matrix_formulas(name, s):
    q = make(name, n_clients=7, dim=13, noise_scale=s, reg=1e-3, scale=2.0, seed=3)
    A = q.matrices()
    closed, dense = q.smoothness(), dense_constants(A)
    # L_i = ||A_i||_2 (spectral norm, absolute eigenvalues)
    assert torch.allclose(closed.L_i, torch.linalg.matrix_norm(A, ord=2), rtol=1e-12)
    assert torch.allclose(closed.L_i, dense["L_i"], rtol=1e-12)
    for key in ("L_minus", "L_plus", "L_pm"):
        assert getattr(closed, key) == pytest.approx(dense[key], rel=1e-10, abs=1e-12), key
    w = torch.rand(7, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.1
    w = w / w.sum()
    assert closed.weighted(w) == pytest.approx(dense["weighted_fn"](w), rel=1e-10)
    assert closed.weighted(torch.full((7,), 1 / 7)) == pytest.approx((closed.L_plus, closed.L_pm), rel=1e-12)
    # orderings of spec §1.1
    assert closed.L_minus <= closed.L_plus + 1e-12 <= closed.L_qm + 2e-12 <= closed.L_max + 3e-12
    assert closed.L_plus**2 - closed.L_minus**2 <= closed.L_pm**2 + 1e-12 <= closed.L_plus**2 + 2e-12


def test_algorithm5_lambda_min_and_L_pm_formula():
    d, s, L = 50, 0.2, 3.0
    q = make("quadratic", n_clients=9, dim=d, noise_scale=s, reg=1e-3, scale=L, seed=5)
    eig = torch.linalg.eigvalsh(q.matrices().mean(0))
    assert float(eig[0]) == pytest.approx(1e-3, abs=1e-12)
    xi_s = (q.nu_s - 1) / s
    sd_n = float(xi_s.std(unbiased=False))
    assert q.smoothness().L_pm == pytest.approx(L * math.cos(math.pi / (2 * (d + 1))) ** 2 * s * sd_n, rel=1e-10)
    t = tridiag_eigenvalues(d)
    assert q.smoothness().L_minus == pytest.approx(L * float(q.nu_s.mean()) * float(t[-1] - t[0]) / 4 + 1e-3, rel=1e-12)


def test_homogeneous_has_zero_hessian_variance():
    q = make("quadratic", n_clients=6, dim=20, noise_scale=0.0, seed=1)
    s = q.smoothness()
    assert s.L_pm == 0.0
    assert torch.equal(q.matrices()[0].expand(6, 20, 20), q.matrices())
    assert s.L_minus == pytest.approx(s.L_plus) and s.L_plus == pytest.approx(s.L_max)
    # negative control: any noise makes it positive
    assert make("quadratic", n_clients=6, dim=20, noise_scale=0.01, seed=1).smoothness().L_pm > 1e-4


def test_constants_are_the_smallest_ones():
    """The sup of the defining ratios is attained (eigenvectors v_1, v_d) and never exceeded."""
    q = make("quadratic", n_clients=5, dim=30, noise_scale=0.3, reg=1e-2, seed=2)
    s = q.smoothness()
    V = tridiag_eigenvectors(30)
    H = q.matrices()

    def ratios(h):  # per-client, mean-square, Hessian-variance ratios for direction h
        D = H @ h  # (n, d): grad_i(x+h) - grad_i(x)
        ms = D.pow(2).sum(1).mean()
        return D.norm(dim=1) / h.norm(), (ms / h.pow(2).sum()).sqrt(), ((ms - D.mean(0).pow(2).sum()) / h.pow(2).sum()).sqrt()

    attained = [ratios(V[:, k]) for k in (0, 29)]
    assert max(float(r[1]) for r in attained) == pytest.approx(s.L_plus, rel=1e-12)
    assert max(float(r[2]) for r in attained) == pytest.approx(s.L_pm, rel=1e-10)
    assert torch.allclose(torch.maximum(attained[0][0], attained[1][0]), s.L_i, rtol=1e-12)
    h = torch.randn(30, 200, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for k in range(200):
        r_i, r_plus, r_pm = ratios(h[:, k])
        assert bool((r_i <= s.L_i * (1 + 1e-12)).all()) and r_plus <= s.L_plus * (1 + 1e-12) and r_pm <= s.L_pm * (1 + 1e-12)


def test_spread_generator_spreads_L_i_and_weighted_bound():
    q0 = make("quadratic_spread", n_clients=50, dim=40, noise_scale=0.0, seed=0).smoothness()
    q2 = make("quadratic_spread", n_clients=50, dim=40, noise_scale=3.0, seed=0).smoothness()
    assert q0.L_qm / q0.L_am == pytest.approx(1.0, abs=1e-12)
    assert q2.L_qm / q2.L_am > 1.1
    w = q2.L_i / q2.L_i.sum()
    L_pw, L_pmw = q2.weighted(w)
    assert L_pmw <= L_pw <= q2.L_am * (1 + 1e-12)
    assert bool((torch.linalg.eigvalsh(make("quadratic_spread", n_clients=5, dim=8, noise_scale=3.0).matrices())[:, 0] > 0).all())


@pytest.mark.parametrize("name", ["quadratic", "quadratic_spread"])
def test_gradients_match_autograd_and_batched_forms(name):
    q = make(name, n_clients=4, dim=9, noise_scale=0.3, seed=7)
    A, b = q.matrices(), q.b
    X = torch.randn(4, 9, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = X[0]
    for i in range(4):
        xi = x.clone().requires_grad_(True)
        loss = 0.5 * xi @ A[i] @ xi - b[i] @ xi
        (g,) = torch.autograd.grad(loss, xi)
        assert torch.allclose(q.client_grads(x)[i], g, atol=1e-12)
        assert float(q.client_losses(x)[i]) == pytest.approx(float(loss.detach()), abs=1e-12)
        assert torch.allclose(q.client_grads(X)[i], A[i] @ X[i] - b[i], atol=1e-12)  # per-client points
    assert torch.allclose(q.grad(x), q.client_grads(x).mean(0), atol=0)
    rows = torch.tensor([3, 1])
    assert torch.allclose(q.client_grads(x, clients=rows), q.client_grads(x)[rows])
    assert torch.allclose(q.client_grads(X[rows], clients=rows), q.client_grads(X)[rows])


@pytest.mark.parametrize("dense", [False, True])
def test_client_subsets_are_bit_identical(dense):
    q = make("quadratic", n_clients=6, dim=33, noise_scale=0.2, seed=9)
    if dense:
        q = QuadraticProblem(q.matrices(), q.b, q.x0())
    X = torch.randn(6, 33, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for rows in (torch.tensor([5]), torch.tensor([4, 0, 2]), torch.arange(6).flip(0)):
        assert torch.equal(q.client_grads(X[0], clients=rows), q.client_grads(X[0])[rows])
        assert torch.equal(q.client_grads(X[rows], clients=rows), q.client_grads(X)[rows])
        assert torch.equal(q.client_losses(X[rows], clients=rows), q.client_losses(X)[rows])


def test_optimum_matches_an_independent_solve():
    q = make("quadratic", n_clients=6, dim=40, noise_scale=0.2, reg=1e-4, seed=4)
    f_star, x_star = q.optimum()
    A_bar, b_bar = q.matrices().mean(0), q.b.mean(0)
    x_ref = torch.linalg.solve(A_bar, b_bar)
    assert torch.allclose(x_star, x_ref, rtol=1e-9)
    assert q.grad(x_star).norm() <= 1e-9 * b_bar.norm()
    assert f_star == pytest.approx(q.loss(x_star), rel=1e-10)
    assert q.loss(x_ref + 1e-3) > f_star  # a minimum, not a saddle
    dense = QuadraticProblem(q.matrices(), q.b, q.x0())
    assert dense.optimum()[0] == pytest.approx(f_star, rel=1e-10)
    assert dense.loss(q.x0()) == pytest.approx(q.loss(q.x0()), rel=1e-14)


def test_seeds():
    a = make("quadratic", n_clients=5, dim=10, noise_scale=0.1, seed=1)
    b = make("quadratic", n_clients=5, dim=10, noise_scale=0.1, seed=1)
    c = make("quadratic", n_clients=5, dim=10, noise_scale=0.1, seed=2)
    assert torch.equal(a.matrices(), b.matrices()) and torch.equal(a.b, b.b)
    assert not torch.equal(a.matrices(), c.matrices())


def test_gaussian_oracle_is_unbiased_with_variance_sigma2_over_b():
    q = make("quadratic", n_clients=3, dim=4, noise_scale=0.1, grad_noise=0.5, seed=0)
    x = q.x0()
    g = torch.Generator().manual_seed(0)
    T, b = 4000, 4
    S = torch.stack([q.minibatch_grads(x, g, b) for _ in range(T)])
    z = zscore(S, q.client_grads(x))
    assert z.abs().max() <= 5
    var = S.var(0)  # chi^2 with T-1 dof per coordinate: sd of the estimate is var*sqrt(2/(T-1))
    assert ((var - 0.25 / b).abs() <= 5 * (0.25 / b) * math.sqrt(2 / (T - 1))).all()
    # negative control: a biased oracle fails the same test
    assert zscore(S + 0.05, q.client_grads(x)).abs().max() > 5
    # exact oracle when grad_noise = 0
    q0 = make("quadratic", n_clients=3, dim=4, seed=0)
    assert torch.equal(q0.minibatch_grads(x, g, 1), q0.client_grads(x))


def test_dense_problem_rejects_bad_matrices():
    with pytest.raises(cp.InputError, match="symmetric"):
        QuadraticProblem(torch.randn(2, 3, 3, dtype=torch.float64), torch.zeros(2, 3))
    with pytest.raises(cp.InputError, match="shape|A \\(n, d, d\\)"):
        QuadraticProblem(torch.eye(3)[None].double(), torch.zeros(2, 3))
