"""ISCC (Theorem 3, Corollary 4), weighted AB, PermK+CQ and AB-constant conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

import commpress.theory as T
from commpress.compressors.base import CompressorTheory
from commpress.errors import ConfigError


def test_iscc_stepsize_is_weighted_marina_with_lemma4_constants():
    L, Lam, omega, p, tau = 1.3, 2.0, 4.0, 0.1, 3
    A, B = T.iscc_wab_constants(omega, tau)
    assert (A, B) == (pytest.approx(5 / 3), pytest.approx(1 / 3))
    g = T.iscc_stepsize(L, Lam, omega, p, tau=tau)
    assert g == pytest.approx(1 / (L + Lam * math.sqrt((1 - p) * (omega + 1) / (p * tau))))
    assert g == pytest.approx(T.weighted_marina_stepsize(L, Lam, Lam, A, B, p))


def test_corollary4_bound_dominates_the_exact_paper_form():
    L, Lam, omega, d, zeta, n, D0, eps = 1.0, 1.5, 0.57, 1000, 1032.0, 50, 2.0, 0.05
    p = T.iscc_corollary4_p(zeta, d, n)
    assert p == pytest.approx(zeta / (32 * d * n))
    exact = T.iscc_communication(L, Lam, omega, d, zeta, n, D0, eps, p)
    bound = T.iscc_corollary4_bound(L, Lam, omega, d, zeta, n, D0, eps)
    assert 32 * d + exact.bits_paper <= bound
    assert bound < 2.5 * (32 * d + exact.bits_paper)  # and it is not vacuous
    # the optimal p is at least as good as the corollary's
    assert T.iscc_communication(L, Lam, omega, d, zeta, n, D0, eps).bits_paper <= exact.bits_paper * (1 + 1e-12)
    assert T.iscc_bits_per_round(p, d, zeta, n) == pytest.approx(32 * d * p + (1 - p) * zeta / n)


def test_marina_corollary4_bound_dominates_exact():
    L, Lp, omega, d, zeta, n, D0, eps = 1.0, 1.2, 3.0, 500, 532.0, 20, 1.0, 0.1
    p = zeta / (32 * d)
    exact = T.marina_communication(L, Lp, 0.0, omega / n, 0.0, d, zeta, D0, eps, p)
    assert 32 * d + exact.bits_paper <= T.marina_corollary4_bound(L, Lp, omega, d, zeta, n, D0, eps)


def test_iscc_gain_grows_like_sqrt_n_when_L_qm_exceeds_L_am():
    # one client with large L_i: L_QM ~ sqrt(n) L_AM; compare the L_+ / L_AM-dominated terms
    n = 400
    L_i = np.ones(n); L_i[0] = n
    Lam, Lqm = L_i.mean(), math.sqrt((L_i**2).mean())
    plain = T.marina_corollary4_bound(1e-9, Lqm, 1.0, 1000, 1032.0, n, 1.0, 1.0)
    isc = T.iscc_corollary4_bound(1e-9, Lam, 0.0, 1000, 1032.0, n, 1.0, 1.0)
    assert (plain - 32000) / (isc - 32000) > 0.5 * math.sqrt(n) / math.sqrt(2)


def test_permk_cq_constants_limits():
    n, d = 8, 64
    assert T.permk_cq_constants(n, d, 1) == pytest.approx({"A": (d - 1) / n, "B": 0.0, "bits": d + 32.0,
                                                            "mse_factor": d / n**2})
    c = T.permk_cq_constants(n, d, n)
    assert c["A"] == pytest.approx(d / n) and c["B"] == pytest.approx(1.0) and c["bits"] == d / n + 32
    with pytest.raises(ConfigError, match="divide"):
        T.permk_cq_constants(8, 60, 3)


def test_ab_constants_conventions_and_fallbacks():
    th = CompressorTheory("correlated", omega=99.0, delta=None, A=9.9, B=0.0, bits=136,
                          extras={"A_homogeneous": 1.0, "A_paper": 0.25})
    assert T.ab_constants(th) == (9.9, 0.0)
    assert T.ab_constants(th, convention="paper") == (0.25, 0.0)
    assert T.ab_constants(th, convention="homogeneous") == (1.0, 0.0)
    ind = CompressorTheory("unbiased", omega=6.0, delta=None, A=None, B=None, bits=10)
    assert T.ab_constants(ind, 3) == (2.0, 0.0)           # independent: omega / n
    assert T.ab_constants(ind, 3, convention="paper") == (2.0, 0.0)
    with pytest.raises(ConfigError, match="convention"):
        T.ab_constants(th, convention="loose")
    with pytest.raises(ConfigError, match="AB-inequality"):
        T.ab_constants(CompressorTheory("biased", None, None, None, None, 8))


def test_contraction_rules():
    con = CompressorTheory("contractive", omega=None, delta=0.1, A=None, B=None, bits=8)
    assert T.contraction(con, "x") == (0.1, 1.0)
    small = CompressorTheory("unbiased", omega=0.25, delta=None, A=None, B=None, bits=8)
    assert T.contraction(small, "x") == (0.75, 1.0)        # U(omega) with omega < 1 is B(1 - omega)
    big = CompressorTheory("unbiased", omega=3.0, delta=None, A=None, B=None, bits=8)
    assert T.contraction(big, "x", allow_rescale=True) == (0.25, 0.25)
    with pytest.raises(ConfigError, match="not contractive"):
        T.contraction(big, "x")


def test_ab_constants_from_real_compressors():
    import commpress.compressors as C

    n, d = 10, 100
    assert T.ab_constants(C.make("iq").theory(n, d), convention="paper")[0] == pytest.approx(d / (4 * n))
    assert T.ab_constants(C.make("cq").theory(n, d), convention="paper")[0] == pytest.approx(d / (4 * n * n))
    assert T.ab_constants(C.make("iq").theory(n, d))[0] == pytest.approx((d - 1) / n)
