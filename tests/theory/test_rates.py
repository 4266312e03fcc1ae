"""NEOLITHIC lower bounds and transient complexities; DIANA / VR-DIANA; EF21."""

from __future__ import annotations

import math

import numpy as np
import pytest

import commpress.theory as T
from commpress.errors import ConfigError


@pytest.mark.parametrize("n", [2, 16, 100])
def test_transient_complexities_of_the_talk(n):
    omega, delta = 3.0, 0.2
    assert T.transient_complexity("lower_unbiased", n=n, omega=omega) == pytest.approx(n * (1 + omega) ** 2)
    assert T.transient_complexity("neolithic_unbiased", n=n, omega=omega) == pytest.approx(n * (1 + omega) ** 2)
    assert T.transient_complexity("lower_contractive", n=n, delta=delta) == pytest.approx(n / delta**2)
    assert T.transient_complexity("neolithic_contractive", n=n, delta=delta) == pytest.approx(n / delta**2)
    assert T.transient_complexity("mem_sgd", n=n, delta=delta) == pytest.approx(n**3 / delta**4)
    assert T.transient_complexity("cser", n=n, delta=delta) == pytest.approx(n**3 / delta**4)
    assert T.transient_complexity("double_squeeze", n=n, delta=delta) == pytest.approx(n**3 / delta**8)
    assert T.transient_complexity("qsgd", n=n, omega=omega) == math.inf
    assert T.transient_complexity("ef21_sgd", n=n, delta=delta) == math.inf
    assert T.transient_complexity("psgd", n=n) == pytest.approx(n)


def test_transient_general_constants_and_crossing():
    n, delta, G, sigma = 8, 0.3, 2.0, 0.7
    Tt = T.transient_complexity("mem_sgd", n=n, delta=delta, G=G, sigma=sigma)
    assert Tt == pytest.approx(G**4 * n**3 / (delta**4 * sigma**6))
    # at the transient the G-term equals the linear-speed-up term, after it the latter dominates
    terms, _ = T.rate_terms("mem_sgd", n=n, delta=delta, G=G, sigma=sigma)
    lead, mid = terms[0], terms[1]
    assert lead[0] * Tt**-0.5 == pytest.approx(mid[0] * Tt ** (-2 / 3))
    later = 10 * Tt
    assert lead[0] * later**-0.5 > mid[0] * later ** (-2 / 3)


def test_qsgd_without_compression_has_linear_speedup():
    assert T.transient_complexity("qsgd", n=10, omega=0.0) == 0.0   # only the sigma/sqrt(nT) term
    assert T.transient_complexity("ef21_sgd", n=1, delta=1.0) == pytest.approx(1.0)


def test_rate_vectorised_and_lower_bound_regime():
    Ts = np.array([10.0, 100.0, 1000.0])
    r = T.rate("lower_contractive", Ts, n=4, delta=0.5, sigma=1.0)
    np.testing.assert_allclose(r, np.sqrt(1 / (4 * Ts)) + 2 / Ts)
    assert T.rate("psgd", 100.0, n=1) == pytest.approx(0.1 + 0.01)
    assert T.lower_bound_valid_from("unbiased", n=2, omega=3.0) == 16.0
    assert T.lower_bound_valid_from("contractive", n=2, delta=0.5) == 4.0
    with pytest.raises(ConfigError, match="n >= 2"):
        T.lower_bound_valid_from("unbiased", n=1, omega=1.0)
    with pytest.raises(ConfigError, match="omega"):
        T.rate_terms("lower_unbiased", n=4)
    with pytest.raises(ConfigError, match="sigma > 0"):
        T.transient_complexity("mem_sgd", n=4, delta=0.5, sigma=0.0)


def test_fcc_and_neolithic_defaults():
    assert T.fcc_error_factor(0.25, 3) == pytest.approx(0.75**3)
    R = T.neolithic_R(0.25)
    assert T.fcc_error_factor(0.25, R) <= 0.25 and R == math.ceil(math.log(4) / 0.25)
    assert T.neolithic_R(0.25, T=1e6) == math.ceil(math.log(1e6) / 0.25)
    assert T.neolithic_R(1.0) == 1
    assert T.neolithic_stepsize(2.0, 8, 4) == 0.125
    assert T.neolithic_stepsize(2.0, 8, 4, delta0=1.0, K=10**6, sigma2=1.0) == pytest.approx(
        math.sqrt(8 * 4 / (2.0 * 10**6)))
    assert T.linear_speedup_iterations(4.0, 10, 0.1) == pytest.approx(40.0)


def test_diana_is_vr_diana_with_one_sample():
    for regime, vr in (("nonconvex", "nonconvex"), ("strongly_convex_vr", "strongly_convex")):
        assert T.diana_stepsize(1.5, 7.0, 9, regime=regime) == pytest.approx(
            T.vr_diana_stepsize(1.5, 7.0, 9, 1, regime=vr))
    assert T.diana_stepsize(1.5, 7.0, 9, regime="strongly_convex") == pytest.approx(1 / ((1 + 6 * 7 / 9) * 1.5))
    assert T.vr_diana_stepsize(2.0, 3.0, 4, 16, regime="convex") == pytest.approx(1 / (2 * 2 * 4 * (1 + 36 * 4 / 4)))
    assert T.diana_alpha(3.0) == 0.25
    assert T.diana_iterations(3.0, 4, 0.01) == pytest.approx(
        T.vr_diana_iterations(3.0, 4, 1, 0.01))  # m^(2/3) + omega = 1 + omega
    assert T.vr_diana_iterations(3.0, 4, 8, 0.1, regime="strongly_convex", kappa=10.0) == pytest.approx(
        (10 + 10 * 0.75 + 8 + 3) * math.log(10))
    assert T.diana_iterations(3.0, 4, 0.1, regime="strongly_convex", kappa=10.0) == pytest.approx(
        (3 + 10 * 1.75) * math.log(10))
    with pytest.raises(ConfigError, match="kappa"):
        T.diana_iterations(3.0, 4, 0.1, regime="strongly_convex")


def test_diana_stepsize_decreases_with_omega():
    g = [T.diana_stepsize(1.0, w, 10) for w in (0.0, 1.0, 10.0, 100.0)]
    assert all(a > b for a, b in zip(g, g[1:]))


def test_ef21_theta_beta_is_the_optimum_over_s():
    for delta in (0.01, 0.1, 0.5, 0.9):
        theta, beta = T.ef21_theta_beta(delta)
        s = np.exp(np.linspace(-12, 8, 400001))
        th_s = 1 - (1 - delta) * (1 + s)
        ok = th_s > 0
        ratio = ((1 - delta) * (1 + 1 / s[ok])) / th_s[ok]
        assert beta / theta == pytest.approx(ratio.min(), rel=1e-6)
        assert math.sqrt(beta / theta) <= 2 / delta - 1
    assert T.ef21_theta_beta(1.0) == (1.0, 0.0)
    assert T.ef21_stepsize(2.0, 3.0, 1.0) == 0.5  # delta = 1: GD


def test_ef21_rounds_and_bits():
    g = T.ef21_stepsize(1.0, 1.0, 0.5)
    theta, _ = T.ef21_theta_beta(0.5)
    assert T.ef21_rounds(g, 0.5, 2.0, 0.1, G0=1.0) == math.ceil((4 / g + 1 / theta) / 0.01)
    bits = T.ef21_communication(1.0, 1.0, 0.5, 100.0, 2.0, 0.1, init_bits=3200)
    assert bits == 3200 + 100 * T.ef21_rounds(g, 0.5, 2.0, 0.1)
    c = T.ef21_sgd_complexity(1.0, 1.0, 0.5, 0.1, 2.0)
    assert c["rounds"] == pytest.approx(200) and c["gradients"] == pytest.approx(200 + 2 / (0.125 * 1e-4))
