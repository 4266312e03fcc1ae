"""Partial-participation formulas: reductions to the full-participation constants, validity ranges, and the
consistency of PP-MARINA's AB-form stepsize with the MARINA paper's recalled constant."""

from __future__ import annotations

import math

import pytest

import commpress as cp
from commpress.errors import ConfigError
from commpress.theory import ef21, marina
from commpress.theory import partial_participation as pp


def test_ef21_pp_reduces_to_ef21_and_shrinks_with_p():
    assert pp.ef21_pp_theta_beta(0.3, 1.0, 1.0) == ef21.ef21_theta_beta(0.3)
    assert pp.ef21_pp_stepsize(1.0, 2.0, 0.3, 1.0, 1.0) == ef21.ef21_stepsize(1.0, 2.0, 0.3)
    gammas = [pp.ef21_pp_stepsize(1.0, 2.0, 0.3, p, p) for p in (1.0, 0.5, 0.25, 0.1)]
    assert all(a > b for a, b in zip(gammas, gammas[1:]))
    theta, _ = ef21.ef21_theta_beta(0.3)
    theta_p, beta_p = pp.ef21_pp_theta_beta(0.3, 0.5, 0.5)
    rho = pp.ef21_pp_rho(0.3, 0.5)
    assert rho == pytest.approx(0.5 * theta / (2 * 0.5))
    assert theta_p == pytest.approx(0.5 * theta - 0.5 * rho) and theta_p > 0
    with pytest.raises(ConfigError, match="rho in"):
        pp.ef21_pp_theta_beta(0.3, 0.5, 0.5, rho=theta)  # rho >= p theta / (1 - p): theta_p <= 0


def test_nice_constants():
    assert pp.nice_B(7, 7) == 0.0 and pp.nice_B(7, 1) == 1.0 and pp.nice_B(1, 1) == 0.0
    assert pp.sampled_ab({"name": "nice", "tau": 5}, 5, 2.0) == pytest.approx((2.0 / 5, 0.0))  # = full: (omega/n, 0)
    assert pp.sampled_ab("full", 5, 2.0) == (2.0 / 5, 0.0)
    with pytest.raises(ConfigError, match="tau <= n"):
        pp.sampled_ab({"name": "nice", "tau": 6}, 5)


@pytest.mark.parametrize("tau", [1, 2, 4, 8])
def test_pp_marina_ab_stepsize_is_at_least_the_papers_constant(tau):
    # nice's A = omega/tau + B_tau <= (1 + omega)/tau (with replacement): with L_pm <= L_plus <= L the AB-form
    # stepsize is at least the paper's 1/(L (1 + sqrt((1-p)(1+omega)/(p r)))) at r = tau (the consistency check).
    n, w, p, L = 8, 3.0, 0.1, 2.0
    A, B = pp.nice_ab(n, tau, w)
    assert A <= (1 + w) / tau + 1e-15
    g_ab = marina.marina_stepsize(L, L, L, A, B, p)
    assert g_ab >= pp.marina_pp_stepsize_paper(L, w, p, tau) * (1 - 1e-12)


def test_builders_reduce_and_depend_on_the_sampling():
    problem = cp.problems.make("quadratic", n_clients=6, dim=12)
    sm, comp = problem.smoothness(), cp.compressors.make("randk", k=3)
    for name, parent in (("marina_pp", "marina"), ("diana_pp", "diana"), ("ef21_pp", "ef21")):
        full = cp.theory.default_params(name, sm, comp, 6, 12, sampling={"name": "full"}, p=0.2)  \
            if "marina" in name else cp.theory.default_params(name, sm, comp, 6, 12, sampling={"name": "full"},
                                                              **({"delta": 0.25} if name == "ef21_pp" else {}))
        ref = cp.theory.default_params(parent, sm, comp, 6, 12, **({"p": 0.2} if "marina" in name else
                                                                   {"delta": 0.25} if name == "ef21_pp" else {}))
        assert full == ref, name
        kw = {"p": 0.2} if "marina" in name else {"delta": 0.25} if name == "ef21_pp" else {}
        half = cp.theory.default_params(name, sm, comp, 6, 12, sampling={"name": "nice", "tau": 3}, **kw)
        assert half["gamma"] < full["gamma"], name
    a, b = (cp.theory.default_params("dasha_pp", sm, comp, 6, 12, sampling={"name": "nice", "tau": t}) for t in (6, 3))
    assert b["gamma"] < a["gamma"] and b["b"] == pytest.approx(0.5 / 1.5) and math.isclose(b["a"], 0.5 * a["a"])
    with pytest.raises(ConfigError, match="one participation probability"):
        cp.theory.default_params("dasha_pp", sm, comp, 2, 12, sampling={"name": "independent", "p": [0.5, 1.0]})
