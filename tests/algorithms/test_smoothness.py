"""Smoothness matrices, DCGD+, DIANA+ and the smoothness-aware compressors (Safaryan, Hanzely, Richtárik
2021; Wang, Safaryan, Richtárik 2022).

Every stochastic property is a seeded Monte-Carlo z-test with a tolerance from the sample variance,
and each check has a negative control (a broken variant it must reject).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import commpress as cp
from commpress.algorithms.dcgd_plus import SmoothnessSetup
from commpress.compressors.smoothness_aware import SmoothnessAware, SmoothnessSparsifier, VaryingStepQuantizer
from commpress.errors import ConfigError
from commpress.problems import QuadraticProblem
from commpress.testing import EXACT_PROPERTIES, check_compressor
from commpress.theory import smoothness as th

Z = 5.0


def _problems():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(3, 6, 6, generator=g, dtype=torch.float64)
    A = M @ M.transpose(1, 2) / 6
    A[0] -= 0.3 * torch.eye(6, dtype=torch.float64)  # one indefinite client: L_0 = A_0^+
    return {
        "logreg": cp.problems.make("logreg", dim=6, samples_per_client=15, n_clients=3, l2=1e-2),
        "nonconvex_logreg": cp.problems.make("nonconvex_logreg", dim=6, samples_per_client=15, n_clients=3, reg=0.1),
        "least_squares": cp.problems.make("least_squares", dim=6, samples_per_client=15, n_clients=3, l2=1e-2),
        "quadratic": cp.problems.make("quadratic", dim=6, n_clients=3, noise_scale=0.5),
        "quadratic_matrix": QuadraticProblem(A, torch.randn(3, 6, generator=g, dtype=torch.float64)),
    }


PROBLEMS = _problems()


def _bregman_excess(P, L, x, y):
    """f_i(y) - f_i(x) - <∇f_i(x), y-x> - 1/2 ||y-x||^2_{L_i} for every client (<= 0 iff the bound holds)."""
    h = y - x
    lhs = P.client_losses(y) - P.client_losses(x) - P.client_grads(x) @ h
    return lhs - 0.5 * torch.einsum("j,ijk,k->i", h, L, h)


def _worst_excess(P, L, trials=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    worst = -math.inf
    for _ in range(trials):
        x = 2 * torch.randn(P.d, generator=g, dtype=torch.float64)
        y = x + torch.randn(P.d, generator=g, dtype=torch.float64) * float(torch.rand((), generator=g)) ** 2
        worst = max(worst, float(_bregman_excess(P, L, x, y).max()))
    # the tight direction: x = 0 (the GLMs' Hessian there equals L_i), y along each client's top eigenvector
    evecs = torch.linalg.eigh(L)[1][:, :, -1]
    for i in range(P.n):
        x = torch.zeros(P.d, dtype=torch.float64)
        worst = max(worst, float(_bregman_excess(P, L, x, 1e-3 * evecs[i])[i]) / 1e-6)
    return worst


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_smoothness_matrices_bound_every_client_and_are_tight(name):
    P = PROBLEMS[name]
    L = P.smoothness_matrices()
    assert L.shape == (P.n, P.d, P.d) and L.dtype == torch.float64
    assert torch.allclose(L, L.transpose(1, 2)) and float(torch.linalg.eigvalsh(L).min()) > -1e-12
    assert _worst_excess(P, L) <= 1e-9
    # negative control: L_i scaled down by 10% violates the bound (the matrices are tight)
    assert _worst_excess(P, 0.9 * L) > 1e-4
    # the spectral norm is the scalar constant (up to the indefinite client's |lambda_min|)
    if name != "quadratic_matrix":
        assert torch.allclose(torch.linalg.eigvalsh(L)[:, -1], P.smoothness().L_i.to(torch.float64), rtol=1e-10)


def test_problems_without_matrices_say_so():
    class Plain(cp.problems.Problem):
        n, d = 2, 3

        def client_grads(self, x, *, clients=None):
            return x.expand(2, 3).clone()

    with pytest.raises(NotImplementedError):
        Plain().smoothness_matrices()
    with pytest.raises(ConfigError, match="smoothness_matrices"):
        cp.algorithms.make("dcgd_plus", Plain(), gamma=0.1)


# ----------------------------------------------------------------------------- sampling rules
L_LOG = PROBLEMS["logreg"].smoothness_matrices()


def _scaled_glm(n=4, d=12, m=20, seed=0, l2=0.05):
    """Logistic regression whose feature j is scaled by 1/(j+1): strongly non-uniform diag(L_i)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n * m, d, generator=g, dtype=torch.float64) / torch.arange(1, d + 1, dtype=torch.float64)
    b = torch.where(torch.rand(n * m, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    b = torch.where(A[:, 0] + 0.3 * torch.randn(n * m, generator=g, dtype=torch.float64) > 0, 1.0, -1.0)
    return cp.problems.make("logreg", data=(A, b), n_clients=n, l2=l2)


SCALED = _scaled_glm()
L_SC = SCALED.smoothness_matrices()


@pytest.mark.parametrize("rule", th.SAMPLING_RULES)
def test_every_rule_spends_the_budget(rule):
    p = th.sampling_probabilities(L_SC, 3.0, rule)
    assert p.shape == (4, 12) and bool(((p >= 0) & (p <= 1)).all())
    assert torch.allclose(p.sum(-1), torch.full((4,), 3.0, dtype=torch.float64), atol=1e-6)


def test_rules_beat_uniform_on_their_objective():
    uni = th.uniform_probabilities(4, 12, 3.0)
    trace = th.trace_probabilities(L_SC, 3.0)
    exact = th.exact_probabilities(L_SC, 3.0, iterations=100)
    eq = th.equalising_probabilities(L_SC, 3.0)
    surrogate = lambda p: ((1 / p - 1) * torch.diagonal(L_SC, dim1=1, dim2=2)).sum(-1)  # noqa: E731
    assert bool((surrogate(trace) <= surrogate(uni) + 1e-12).all())
    assert bool((th.sparsification_nu(L_SC, exact) <= th.sparsification_nu(L_SC, uni) + 1e-12).all())
    assert bool((th.sparsification_nu(L_SC, exact) <= th.sparsification_nu(L_SC, trace) + 1e-12).all())
    assert bool((th.transformed_sparsification_nu(L_SC, eq) <= th.transformed_sparsification_nu(L_SC, uni) + 1e-12).all())
    # equalising makes (1/p_j - 1) L_jj one constant per client
    c = (1 / eq - 1) * torch.diagonal(L_SC, dim1=1, dim2=2)
    assert torch.allclose(c, c[:, :1].expand_as(c), rtol=1e-6)
    # the strongly non-uniform diagonal makes the smoothness-aware nu much smaller than uniform's
    assert float(th.sparsification_nu(L_SC, trace).max()) < 0.5 * float(th.sparsification_nu(L_SC, uni).max())


def test_on_identity_matrices_every_rule_is_uniform():
    L = 2.5 * torch.eye(8, dtype=torch.float64).expand(3, 8, 8).clone()
    for rule in ("trace", "equalise", "exact"):
        assert torch.allclose(th.sampling_probabilities(L, 2.0, rule), torch.full((3, 8), 0.25, dtype=torch.float64),
                              atol=1e-6)
    # and nu equals omega * L_max, the DCGD/DIANA constant
    assert torch.allclose(th.sparsification_nu(L, th.uniform_probabilities(3, 8, 2.0)),
                          torch.full((3,), 3.0 * 2.5, dtype=torch.float64))


# ----------------------------------------------------------------------------- compressors
def _compressors():
    L = L_LOG
    return {
        "sparsifier": SmoothnessSparsifier.from_matrices(L, 2.0),
        "saq_randk": SmoothnessAware("randk", L),
        "saq_dithering": SmoothnessAware("dithering", L),
        "varying_steps": VaryingStepQuantizer.from_matrices(L, 2),
        "saq_varying_steps": SmoothnessAware(VaryingStepQuantizer.from_matrices(L, 2), L),
    }


@pytest.mark.parametrize("key", list(_compressors()))
def test_compressors_keep_the_exact_contract(key):
    C = _compressors()[key]
    check_compressor(C, n=3, d=6, shapes=[(3, 6)], properties=EXACT_PROPERTIES)
    with pytest.raises(ConfigError, match="built for n=3"):
        C.apply(torch.randn(4, 6, dtype=torch.float64), 0)


def _mc(C, X, trials, seed0=0):
    """Samples of C(X) over ``trials`` seeds: ``(trials, n, d)``."""
    return torch.stack([C.apply(X, seed0 + s)[0] for s in range(trials)])


def _z_unbiased(S, X):
    """Largest |z| of the per-coordinate sample means against X."""
    se = S.std(0) / math.sqrt(S.shape[0])
    dev = (S.mean(0) - X).abs()
    return float(torch.where(se > 0, dev / se.clamp_min(1e-300), dev * 1e300).max())


def test_sparsifier_is_unbiased_with_the_exact_weighted_variance():
    C = SmoothnessSparsifier.from_matrices(L_SC, 3.0)
    X = SCALED.client_grads(torch.randn(12, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    S = _mc(C, X, 1000)
    assert _z_unbiased(S, X) < Z
    # E||C(v)-v||^2_M = sum_j (1/p_j - 1) M_jj v_j^2 for M = L_i: z-test of the mean
    err = torch.einsum("tij,ijk,tik->ti", S - X, L_SC, S - X)
    expected = ((1 / C.p - 1) * torch.diagonal(L_SC, dim1=1, dim2=2) * X * X).sum(-1)
    z = (err.mean(0) - expected).abs() / (err.std(0) / math.sqrt(err.shape[0]))
    assert float(z.max()) < Z
    # and the Euclidean error is below nu_i ||y||^2 for v = L^{1/2} y (nu of the trace rule)
    root = th_root(L_SC)
    Y = torch.randn(4, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    V = torch.einsum("ijk,ik->ij", root, Y)
    S2 = _mc(C, V, 1000, seed0=10_000)
    e2 = (S2 - V).pow(2).sum(-1)
    bound = th.sparsification_nu(L_SC, C.p) * Y.pow(2).sum(-1)
    assert bool((e2.mean(0) <= bound + Z * e2.std(0) / math.sqrt(1000)).all())


def th_root(L):
    from commpress.compressors.smoothness_aware import matrix_roots

    return matrix_roots(L)[0]


def test_negative_control_a_mis_scaled_sparsifier_is_caught():
    C = SmoothnessSparsifier.from_matrices(L_SC, 3.0)
    X = SCALED.client_grads(torch.zeros(12, dtype=torch.float64))
    broken = SmoothnessSparsifier(C.p.clone())
    original = broken._encode

    def encode(X, ctx):
        msg = original(X, ctx)
        msg["values"] = msg["values"] * 0.9  # a biased decoder
        return msg

    broken._encode = encode
    assert _z_unbiased(_mc(broken, X, 1000), X) > Z


@pytest.mark.parametrize("key", ["saq_randk", "saq_dithering", "saq_varying_steps"])
def test_smoothness_aware_compressors_are_unbiased_and_within_nu(key):
    C = _compressors()[key]
    P = PROBLEMS["logreg"]
    X = P.client_grads(torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(3)))
    T = 500 if key == "saq_varying_steps" else 1000
    S = _mc(C, X, T)
    assert _z_unbiased(S, X) < Z
    # E||C(v)-v||^2 <= nu_i ||y||^2, y = L^{+1/2} v, nu as the algorithms compute it
    setup = SmoothnessSetup("t", P, C, tau=None, ratio=None, sampling="trace", levels=1)
    Y = torch.einsum("ijk,ik->ij", C.pinv_root, X)
    e = (S - X).pow(2).sum(-1)
    assert bool((e.mean(0) <= setup.nu * Y.pow(2).sum(-1) + Z * e.std(0) / math.sqrt(T)).all())


def test_varying_steps_quantizer_variance_is_below_the_quarter_step_squared():
    C = VaryingStepQuantizer.from_matrices(L_SC, 2)
    X = torch.randn(4, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    S = _mc(C, X, 1000)
    assert _z_unbiased(S, X) < Z
    h = C.t * X.norm(dim=1, keepdim=True)
    var = (S - X).pow(2).mean(0)
    assert bool((var <= h * h / 4 * (1 + 1e-6) + Z * (S - X).pow(2).std(0) / math.sqrt(1000)).all())
    # varying steps beat uniform steps on the weighted constant at about the same bits
    U = VaryingStepQuantizer.from_matrices(L_SC, 2, uniform=True)
    assert float(th.varying_steps_nu(L_SC, C.t).max()) < float(th.varying_steps_nu(L_SC, U.t).max())
    assert C.theory(4, 12).bits <= 1.1 * U.theory(4, 12).bits


# ----------------------------------------------------------------------------- algorithms
def _run(alg, steps):
    s = alg.init()
    for _ in range(steps):
        s = alg.step(s)
    return alg.output(s)


def _scipy_opt(P):
    from scipy.optimize import minimize

    f = lambda x: (P.loss(torch.from_numpy(x)), P.grad(torch.from_numpy(x)).numpy())  # noqa: E731
    r = minimize(f, np.zeros(P.d), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000})
    return float(r.fun)


F_STAR = _scipy_opt(SCALED)


def _rel_gap(P, x, f_star):
    f0 = P.loss(P.x0())
    return (P.loss(x) - f_star) / (f0 - f_star)


@pytest.mark.parametrize("kw", [{}, {"sampling": "exact"}, {"compressor": "randk"}, {"compressor": "varying_steps", "levels": 2}],
                         ids=["trace", "exact", "saq-randk", "saq-varying"])
def test_diana_plus_converges_linearly_to_the_optimum(kw):
    alg = cp.algorithms.make("diana_plus", SCALED, tau=3, **kw) if "compressor" not in kw else \
        cp.algorithms.make("diana_plus", SCALED, **kw)
    x = _run(alg.with_gamma(4 * alg.gamma), 300)
    assert _rel_gap(SCALED, x, F_STAR) <= 1e-6


def test_negative_control_diana_plus_without_shift_learning_stalls():
    alg = cp.algorithms.make("diana_plus", SCALED, tau=3, alpha=1e-9)
    x = _run(alg.with_gamma(4 * alg.gamma), 300)
    assert _rel_gap(SCALED, x, F_STAR) > 1e-4


def test_diana_plus_nonconvex_drives_the_gradient_to_zero():
    P = cp.problems.make("nonconvex_logreg", dim=12, samples_per_client=20, n_clients=4, reg=0.1)
    alg = cp.algorithms.make("diana_plus", P, tau=3, regime="nonconvex")
    assert alg.gamma == pytest.approx(cp.theory.diana.diana_stepsize(P.smoothness().L_max, alg.setup.omega, 4,
                                                                     regime="nonconvex"))
    x = _run(alg.with_gamma(0.5 / P.smoothness().L_minus), 400)
    g0 = float(P.grad(P.x0()).pow(2).sum())
    assert float(P.grad(x).pow(2).sum()) <= 1e-8 * g0


def test_dcgd_plus_converges_on_an_interpolation_problem_and_stalls_otherwise():
    g = torch.Generator().manual_seed(5)
    M = torch.randn(4, 10, 10, generator=g, dtype=torch.float64) * torch.logspace(0, -1, 10, dtype=torch.float64)
    A = M.transpose(1, 2) @ M / 10 + 0.1 * torch.eye(10, dtype=torch.float64)
    x_star = torch.randn(10, generator=g, dtype=torch.float64)
    P = QuadraticProblem(A, torch.einsum("ijk,k->ij", A, x_star))  # every client minimised at x*
    alg = cp.algorithms.make("dcgd_plus", P, tau=3)
    x = _run(alg, 600)
    assert float((x - x_star).norm()) <= 1e-6 * float(x_star.norm())
    # negative control: heterogeneous minimisers leave DCGD+ at a neighbourhood (no variance reduction)
    P2 = QuadraticProblem(A, torch.randn(4, 10, generator=g, dtype=torch.float64))
    alg2 = cp.algorithms.make("dcgd_plus", P2, tau=3)
    x2 = _run(alg2, 600)
    assert float((x2 - P2.optimum()[1]).norm()) > 1e-4


def test_reduction_full_budget_dcgd_plus_is_dcgd_uncompressed():
    P = PROBLEMS["logreg"]
    a = cp.algorithms.make("dcgd_plus", P, tau=6, gamma=0.3)
    b = cp.algorithms.make("dcgd", P, compressor="identity", gamma=0.3)
    assert torch.equal(_run(a, 20), _run(b, 20))


def test_reduction_identity_matrices_saq_diana_plus_is_diana():
    g = torch.Generator().manual_seed(6)
    A = torch.eye(8, dtype=torch.float64).expand(3, 8, 8).clone()
    P = QuadraticProblem(A, torch.randn(3, 8, generator=g, dtype=torch.float64))
    a = cp.algorithms.make("diana_plus", P, compressor="randk", gamma=0.2)
    b = cp.algorithms.make("diana", P, compressor="randk", gamma=0.2)
    assert a.alpha == b.alpha
    assert torch.equal(_run(a, 25), _run(b, 25))
    # uplink bits per round are equal too; DIANA+ also sent L^{1/2} once (round -1)
    assert a.network.ledger.round_bits("up", 3).tolist() == b.network.ledger.round_bits("up", 3).tolist()
    assert int(a.network.ledger.round_bits("up", -1)[0]) == 32 * 8 * 9 // 2


def test_theoretical_parameters_follow_the_formulas():
    alg = cp.algorithms.make("dcgd_plus", SCALED, tau=3)
    sm = SCALED.smoothness()
    nu = float(th.sparsification_nu(L_SC, alg.compressor.p).max())
    assert alg.gamma == pytest.approx(1 / (2 * (sm.L_minus + 2 * nu / 4)))
    alg = cp.algorithms.make("diana_plus", SCALED, tau=3)
    assert alg.gamma == pytest.approx(1 / (sm.L_max + 6 * nu / 4))
    assert alg.alpha == pytest.approx(1 / (th.sparsification_omega(alg.compressor.p) + 1))
    rep = cp.theory.stepsize_report("diana_plus", sm, alg.compressor, 4, 12, nu_max=nu)
    assert "Safaryan" in rep["constants"]["source"]
    # without nu_max the theory takes the bound nu_i <= omega_i L_i (DCGD's constant): a smaller stepsize
    omega = th.sparsification_omega(alg.compressor.p)
    assert cp.theory.default_stepsize("dcgd_plus", sm, alg.compressor, 4, 12) == pytest.approx(
        1 / (2 * (sm.L_minus + 2 * omega * sm.L_max / 4)))
    assert nu <= omega * sm.L_max
    with pytest.raises(ConfigError, match="nu_max"):
        cp.theory.default_stepsize("dcgd_plus", sm, alg.compressor, 4, 12, nu_max=math.inf)
    with pytest.raises(ConfigError, match="tau"):
        cp.algorithms.make("dcgd_plus", SCALED, tau=3, compressor="randk")


def test_bits_are_the_payloads():
    alg = cp.algorithms.make("dcgd_plus", SCALED, tau=3, gamma=0.1)
    s = alg.init()
    for _ in range(200):
        s = alg.step(s)
    up = alg.network.ledger.total("up").to(torch.float64) / 200
    # count (32) + expected 3 float32 values + index sets (<= 3 * 4 bits), byte-padded
    assert bool((up > 32 + 32 * 2).all()) and bool((up < 8 * math.ceil((32 + 32 * 4.5 + 12 * 1.5) / 8) + 16).all())
