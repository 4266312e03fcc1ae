"""MARINA: stepsize limits, optimal p against brute force, improvement factors, bits accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest

import commpress.theory as T
from commpress.errors import ConfigError

LM, LP, LPM = 0.8660264038, 0.8710378058, 0.0933012702  # problems.md §2 worked example


def _brute(r, z, lo=1e-9, num=400_001):
    p = np.exp(np.linspace(math.log(lo), 0.0, num))
    f = (1.0 + r * np.sqrt((1.0 - p) / p)) * (p + (1.0 - p) * z)
    i = int(f.argmin())
    return f[i], p[i]


def test_p_one_is_gd():
    for A, B in [(0.0, 0.0), (2.5, 0.0), (1.0, 1.0), (3.0, 0.5)]:
        assert T.marina_stepsize(LM, LP, LPM, A, B, 1.0) == pytest.approx(1.0 / LM, rel=1e-15)
    assert T.marina_stepsize_original(LP, 7.0, 10, 1.0) == pytest.approx(1.0 / LP, rel=1e-15)


def test_stepsize_decreases_as_p_decreases_and_vanishes_at_zero():
    ps = np.linspace(1.0, 1e-6, 50)
    g = np.array([T.marina_stepsize(LM, LP, LPM, 2.0, 0.5, p) for p in ps])
    assert np.all(np.diff(g) < 0)
    assert g[-1] < 1e-2 * g[0]
    # zero variance term (identity / homogeneous PermK): M = L_- for every p
    assert T.marina_stepsize(LM, LP, 0.0, 1.0, 1.0, 1e-3) == pytest.approx(1.0 / LM)


def test_ab_formula_reduces_to_gorbunov_for_independent_compressors():
    L, omega, n = 1.7, 9.0, 12
    for p in (0.03, 0.4, 0.9):
        assert T.marina_stepsize(L, L, 0.0, omega / n, 0.0, p) == pytest.approx(
            T.marina_stepsize_original(L, omega, n, p), rel=1e-14)


def test_permk_special_case():
    # PermK (A = B = 1): M = L_- + L_pm sqrt((1-p)/p)   (algorithms.md §9)
    p = 0.1
    assert T.marina_M(LM, LP, LPM, 1.0, 1.0, p) == pytest.approx(LM + LPM * math.sqrt(9.0))


@pytest.mark.parametrize("r,z", [(0.5, 1 / 32), (0.01, 0.5), (1e-4, 0.03), (3.0, 0.1), (0.2, 0.004),
                                 (1.5, 0.01), (0.05, 0.9), (40.0, 1e-4), (0.0, 0.2), (0.7, 1.0), (0.3, 2.0)])
def test_optimal_p_matches_brute_force_grid(r, z):
    f_opt, p_opt = T.normalized_improvement_factor(r, z)
    f_b, p_b = _brute(r, z)
    assert float(f_opt) <= f_b * (1 + 1e-12)           # never worse than the grid
    assert float(f_opt) == pytest.approx(f_b, rel=1e-6)  # and the grid is fine enough to agree
    if r > 0 and z < 1 and p_b > 1e-8:
        assert float(p_opt) == pytest.approx(p_b, rel=2e-3)


def test_optimal_p_random_cases_vectorised():
    rng = np.random.default_rng(0)
    r = 10 ** rng.uniform(-3, 1.5, 60)
    z = 10 ** rng.uniform(-3.5, 0, 60)
    f_opt, p_opt = T.normalized_improvement_factor(r, z)
    for k in range(60):
        f_b, _ = _brute(r[k], z[k], num=100_001)
        assert f_opt[k] <= f_b * (1 + 1e-12)
        assert f_opt[k] == pytest.approx(f_b, rel=1e-5)
    # interior optima are stationary points of the quartic r z u^4 + r(3z-1) u^2 - 2(1-z) u + r
    inner = (p_opt < 1) & (p_opt > 1e-9)
    u = np.sqrt((1 - p_opt[inner]) / p_opt[inner])
    rr, zz = r[inner], z[inner]
    P = rr * zz * u**4 + rr * (3 * zz - 1) * u**2 - 2 * (1 - zz) * u + rr
    scale = rr * zz * u**4 + np.abs(rr * (3 * zz - 1)) * u**2 + 2 * (1 - zz) * u + rr
    assert inner.sum() > 10 and np.all(np.abs(P) <= 1e-9 * scale)


def test_negative_control_perturbed_p_is_worse():
    f_opt, p_opt = T.normalized_improvement_factor(0.5, 1 / 32)
    for factor in (0.7, 1.4):
        f_bad, _ = T.normalized_improvement_factor(0.5, 1 / 32, float(p_opt) * factor)
        assert float(f_bad) > float(f_opt) * (1 + 1e-4)


def test_marina_optimal_p_minimises_the_communication_objective():
    d, zeta = 1000, 1032.0
    A, B = 0.37, 0.1
    p_star = T.marina_optimal_p(LM, LP, LPM, A, B, d, zeta)
    obj = lambda p: T.marina_M(LM, LP, LPM, A, B, p) * (32 * d * p + (1 - p) * zeta)  # noqa: E731
    grid = np.exp(np.linspace(math.log(1e-6), 0, 20001))
    best = min(obj(p) for p in grid)
    assert obj(p_star) <= best * (1 + 1e-12)
    assert 0 < p_star < 1


def test_improvement_factor_of_identity_is_one():
    d = 100
    for p in (None, 1.0, 0.3, 0.01):
        assert T.marina_improvement_factor(LM, LP, LPM, 0.0, 0.0, d, 32.0 * d, p) == pytest.approx(1.0, abs=1e-14)
    assert T.marina_optimal_p(LM, LP, LPM, 0.0, 0.0, d, 32.0 * d) == 1.0  # ties go to GD


def test_compressor_that_saves_no_bits_gives_gd():
    assert T.marina_optimal_p(LM, LP, LPM, 0.5, 0.0, 10, 400.0) == 1.0  # zeta > 32 d


def test_zero_variance_infimum_at_p_min():
    f, p = T.normalized_improvement_factor(0.0, 0.1)
    assert float(p) == T.P_MIN and float(f) == pytest.approx(0.1, rel=1e-9)


def test_communication_exact_and_paper_forms():
    d, zeta, D0, eps = 200, 232.0, 3.0, 0.1
    c = T.marina_communication(LM, LP, LPM, 0.2, 0.0, d, zeta, D0, eps, p=0.05)
    M = T.marina_M(LM, LP, LPM, 0.2, 0.0, 0.05)
    b = 32 * d * 0.05 + 0.95 * zeta
    assert c.bits_per_round == pytest.approx(b)
    assert c.rounds == math.ceil(2 * D0 * M / eps**2)
    assert c.bits == pytest.approx(32 * d + c.rounds * b)
    assert c.bits_paper == pytest.approx(2 * D0 / eps**2 * M * b)
    assert c.gamma == pytest.approx(1 / M)
    gd = T.gd_communication(LM, d, D0, eps)
    assert gd.bits_paper == pytest.approx(2 * D0 * LM / eps**2 * 32 * d)
    assert c.bits_paper / gd.bits_paper == pytest.approx(
        T.marina_improvement_factor(LM, LP, LPM, 0.2, 0.0, d, zeta, 0.05), rel=1e-12)


def test_bits_ratio_p_and_rounds():
    assert T.marina_bits_ratio_p(100, 132) == pytest.approx(132 / 3200)
    assert T.marina_bits_ratio_p(1, 100) == 1.0
    assert T.marina_rounds(2.0, 1.0, 1.0) == 4


@pytest.mark.parametrize("call,match", [
    (lambda: T.marina_stepsize(LM, LP, LPM, 1.0, 2.0, 0.5), "A >= B"),
    (lambda: T.marina_stepsize(LM, LP, LPM, 1.0, 0.0, 0.0), "p"),
    (lambda: T.marina_stepsize(0.0, LP, LPM, 1.0, 0.0, 0.5), "L_minus"),
    (lambda: T.normalized_improvement_factor(0.5, 0.0), "zeta"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
