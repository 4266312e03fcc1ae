"""Local training: ProxSkip / Scaffnew, GradSkip, TAMUNA / CompressedScaffnew.

Convergence to scipy's optimum (strongly convex) and of ||grad f||^2 (nonconvex, explicit p and
gamma), negative controls (frozen control variates), the reductions iterate for iterate (ProxSkip
p = 1 == GD, GradSkip q = 1 == Scaffnew, TAMUNA c = s = n, eta = p == Scaffnew), the ledger (0 bits
on skipped iterations, the payload on communication rounds), the frequency of the shared coin and
GradSkip's gradient computations against their variance-derived tolerances, and the theory defaults.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.optimize
import torch

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress.errors import ConfigError
from commpress.theory import local_training as lt

METHODS = ["proxskip", "scaffnew", "gradskip", "tamuna", "compressed_scaffnew"]
EXTRA = {"tamuna": {"c": 3}}


@pytest.fixture(scope="module")
def logreg():
    """Strongly convex: l2-regularised logistic regression, 5 heterogeneous clients, d = 10; f* by scipy."""
    P = cp.problems.make("logreg", n_clients=5, dim=10, samples_per_client=40, heterogeneity=1.0, l2=0.05, seed=1)
    res = scipy.optimize.minimize(lambda z: P.loss(torch.tensor(z)), np.zeros(P.d),
                                  jac=lambda z: P.grad(torch.tensor(z)).numpy(), method="L-BFGS-B",
                                  options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 10_000})
    return P, float(res.fun)


@pytest.fixture(scope="module")
def nonconvex():
    return cp.problems.make("nonconvex_logreg", n_clients=5, dim=10, samples_per_client=40, heterogeneity=1.0,
                            reg=0.1, seed=1)


def _exact():
    return cp.compressors.make("identity", float_bits=64)


def _run(alg, T, *, every=None, freeze_h=False, measure=None):
    """T iterations; ``measure(x)`` at every ``every``-th iteration; ``freeze_h``: control variates kept at 0."""
    state, out = alg.init(), []
    for k in range(1, T + 1):
        state = alg.step(state)
        if freeze_h:
            state = dataclasses.replace(state, H=torch.zeros_like(state.H))
        if every and k % every == 0:
            out.append(measure(alg.output(state)))
    return state, out


def _gaps(P, f_star, alg, T, **kw):
    return _run(alg, T, every=100, measure=lambda x: (P.loss(x) - f_star) / abs(f_star), **kw)[1]


def _linear(gaps, target=1e-6, floor=1e-9):
    """Reaches ``target`` and falls by at least 2x every 100 iterations while above ``floor``."""
    return gaps[-1] <= target and all(b <= 0.5 * a for a, b in zip(gaps, gaps[1:]) if a > floor)


# ---------------------------------------------------------------------------- convergence
@pytest.mark.parametrize("name", METHODS)
def test_strongly_convex_linear_convergence_to_scipy_optimum_with_theory_defaults(logreg, name):
    P, f_star = logreg
    alg = cp.algorithms.make(name, P, **EXTRA.get(name, {}))  # gamma, p (q, eta) from theory
    T = 500 if name == "tamuna" else 400
    gaps = _gaps(P, f_star, alg, T)
    assert _linear(gaps), (name, gaps)


@pytest.mark.parametrize("name", ["scaffnew", "compressed_scaffnew"])
def test_negative_control_frozen_control_variates_stall(logreg, name):
    # Without the control variates the local steps drift to each client's own optimum: no 1e-6 gap.
    P, f_star = logreg
    alg = cp.algorithms.make(name, P)
    gaps = _gaps(P, f_star, alg, 400, freeze_h=True)
    assert not _linear(gaps) and gaps[-1] > 1e-5, gaps


def test_proxskip_with_l2_regulariser_solves_the_composite_problem(logreg):
    P, _ = logreg
    lam = 0.2
    res = scipy.optimize.minimize(lambda z: P.loss(torch.tensor(z)) + 0.5 * lam * float(np.dot(z, z)), np.zeros(P.d),
                                  jac=lambda z: P.grad(torch.tensor(z)).numpy() + lam * z, method="L-BFGS-B",
                                  options={"gtol": 1e-12, "ftol": 1e-16})
    alg = cp.algorithms.make("proxskip", P, reg="l2", lam=lam, p=0.2)
    state, _ = _run(alg, 300)
    assert torch.allclose(alg.output(state), torch.tensor(res.x), atol=1e-6)
    with pytest.raises(ConfigError, match="no parameter 'reg'"):
        cp.algorithms.make("scaffnew", P, reg="l2", lam=lam)


@pytest.mark.parametrize("name,kw,T", [
    ("proxskip", {"p": 0.2}, 200), ("gradskip", {"p": 0.2, "q": 0.5}, 200),
    ("tamuna", {"p": 0.3, "c": 3, "eta": 0.1}, 400), ("compressed_scaffnew", {"p": 0.3, "eta": 0.15}, 200),
])
def test_nonconvex_grad_norm_falls_1e3_with_explicit_p(nonconvex, name, kw, T):
    # No theory without strong convexity: the defaults refuse, explicit p and gamma run.
    with pytest.raises(ConfigError, match="mu > 0"):
        cp.algorithms.make(name, nonconvex)
    alg = cp.algorithms.make(name, nonconvex, gamma=1.0 / nonconvex.smoothness().L_max, **kw)
    g0 = float(nonconvex.grad(nonconvex.x0()).pow(2).sum())
    _, g = _run(alg, T, every=T, measure=lambda x: float(nonconvex.grad(x).pow(2).sum()))
    assert g[-1] <= 1e-3 * g0, (g0, g)


# ---------------------------------------------------------------------------- reductions
def _iterates(alg, T):
    state, xs = alg.init(), []
    for _ in range(T):
        state = alg.step(state)
        xs.append(alg.output(state))
    return torch.stack(xs)


def test_proxskip_with_p_one_is_gd_iterate_for_iterate(logreg):
    P, _ = logreg
    gamma = 1.0 / P.smoothness().L_max
    # Exact 64-bit wires: ProxSkip(p = 1) and exact GD agree to round-off.
    ps = cp.algorithms.make("proxskip", P, float_bits=64, p=1.0, gamma=gamma)
    gd = cp.algorithms.make("dcgd", P, compressor=_exact(), downlink_compressor=_exact(), gamma=gamma)
    a, b = _iterates(ps, 30), _iterates(gd, 30)
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), (a - b).abs().max()
    # Default float32 wires: ProxSkip rounds models, GD rounds gradients; they agree to float32 rounding.
    ps32 = cp.algorithms.make("proxskip", P, p=1.0, gamma=gamma)
    gd32 = cp.algorithms.make("gd", P, gamma=gamma)
    assert torch.allclose(_iterates(ps32, 30), _iterates(gd32, 30), rtol=0, atol=1e-6)
    # Negative control: p < 1 is not GD.
    ps9 = cp.algorithms.make("proxskip", P, float_bits=64, p=0.9, gamma=gamma)
    assert not torch.allclose(_iterates(ps9, 30), b, rtol=1e-6, atol=1e-6)


def test_gradskip_with_q_one_is_scaffnew_iterate_for_iterate(logreg):
    P, _ = logreg
    kw = dict(p=0.3, gamma=0.2, seed=5)
    sc = cp.algorithms.make("scaffnew", P, **kw)
    gs = cp.algorithms.make("gradskip", P, q=1.0, **kw)
    s1, s2 = sc.init(), gs.init()
    for _ in range(40):
        s1, s2 = sc.step(s1), gs.step(s2)
        assert torch.equal(s1.X, s2.X) and torch.equal(s1.H, s2.H) and torch.equal(s1.x, s2.x)
    assert torch.equal(s1.grads, s2.grads) and s1.comms == s2.comms
    # Negative control: q < 1 changes the iterates (and saves gradients).
    gq = cp.algorithms.make("gradskip", P, q=0.5, **kw)
    s3 = gq.init()
    for _ in range(40):
        s3 = gq.step(s3)
    assert not torch.equal(s3.X, s1.X) and int(s3.grads.sum()) < int(s1.grads.sum())


def test_gradskip_default_q_is_one_when_every_client_has_the_same_kappa(logreg):
    P, _ = logreg
    q = lt.gradskip_q(torch.full((4,), 7.0), 0.5)
    assert torch.equal(q, torch.ones(4))
    alg = cp.algorithms.make("gradskip", P)
    L = P.smoothness().L_i
    assert int(alg.q.argmax()) == int(L.argmax()) and float(alg.q.max()) == 1.0 and float(alg.q.min()) < 1.0


def test_tamuna_with_c_equal_s_equal_n_and_eta_p_is_scaffnew(logreg):
    P, _ = logreg
    n = P.n
    kw = dict(p=0.3, gamma=0.2, seed=7, float_bits=64)
    sc = cp.algorithms.make("scaffnew", P, **kw)
    tm = cp.algorithms.make("tamuna", P, c=n, s=n, eta=0.3, **kw)
    a, b = _iterates(sc, 60), _iterates(tm, 60)
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), (a - b).abs().max()
    # Negative control: eta = p / 2 is another method.
    tm2 = cp.algorithms.make("tamuna", P, c=n, s=n, eta=0.15, **kw)
    assert not torch.allclose(_iterates(tm2, 60), a, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------- ledger and coins
@pytest.mark.parametrize("name", ["proxskip", "gradskip", "compressed_scaffnew", "tamuna"])
def test_bits_are_zero_on_skipped_iterations_and_the_payload_on_communications(logreg, name):
    P, _ = logreg
    alg = cp.algorithms.make(name, P, p=0.3, gamma=0.2, **({"c": 3} if name == "tamuna" else {}))
    T = 40
    state, _ = _run(alg, T)
    ledger, d = alg.network.ledger, P.d
    coins = [alg.coin(t) for t in range(T)]
    if name == "tamuna":  # some communication round leaves a client out of both cohorts: 0 bits down
        assert any(int((ledger.round_bits("down", t) == 0).sum()) > 0 for t in range(T) if coins[t])
    assert sum(coins) == state.comms > 0 and not all(coins)
    for t, c in enumerate(coins):
        up, down = ledger.round_bits("up", t), ledger.round_bits("down", t)
        if not c:
            assert int(up.abs().sum()) == 0 and int(down.abs().sum()) == 0, t
            continue
        if name == "tamuna":  # the model goes to this round's and the next round's cohorts only
            assert set(down.tolist()) <= {0, 32 * d} and bool((down[up > 0] == 32 * d).all())
        else:
            assert torch.equal(down, torch.full((P.n,), 32 * d, dtype=torch.int64))
        if name in ("proxskip", "gradskip"):
            assert torch.equal(up, torch.full((P.n,), 32 * d, dtype=torch.int64))
        else:  # each kept coordinate is one float32; s = 2 holders per coordinate; others send nothing
            assert int(up.sum()) == 32 * 2 * d
            sent = up > 0
            assert int(sent.sum()) == alg.c
            kept = up[sent] // 32
            assert int(kept.max()) - int(kept.min()) <= 1  # balanced columns: floor or ceil of s d / c


def test_expected_communications_are_p_T_within_the_binomial_tolerance(logreg):
    P, _ = logreg
    T, p = 5_000, 0.1

    def count(alg):
        return sum(alg.coin(t) for t in range(T))

    tol = 4.0 * math.sqrt(T * p * (1 - p))  # 4 standard deviations of Binomial(T, p)
    for seed in (0, 1):
        alg = cp.algorithms.make("scaffnew", P, p=p, gamma=0.2, seed=seed)
        assert abs(count(alg) - p * T) <= tol
    # Negative control: a coin with probability 1.5 p is rejected by the same tolerance.
    wrong = cp.algorithms.make("scaffnew", P, p=1.5 * p, gamma=0.2, seed=0)
    assert abs(count(wrong) - p * T) > tol


def test_gradskip_gradients_per_round_match_one_over_one_minus_q_one_minus_p(logreg):
    # Per round N ~ Geometric(1 - q(1-p)): mean 1/(1-q(1-p)), variance q(1-p)/(1-q(1-p))^2.
    P, _ = logreg
    # A small stepsize keeps every iterate moving (a client at a floating-point fixed point computes nothing).
    p, q = 0.25, [1.0, 0.8, 0.5, 0.2, 0.0]
    alg = cp.algorithms.make("gradskip", P, p=p, q=q, gamma=1e-3, seed=2)
    state, _ = _run(alg, 1500)
    R = state.comms
    qt = torch.tensor(q, dtype=torch.float64)
    mean = lt.expected_gradients_per_round(p, qt)
    var = qt * (1 - p) * mean**2
    # grads counts the computations of R complete rounds, plus the initial one, plus the current round's.
    per_round = (state.grads.to(torch.float64) - 1) / R
    tol = 5.0 * (var / R).sqrt() + 3.0 * mean / R
    assert bool(((per_round - mean).abs() <= tol).all()), (per_round, mean, tol)
    # Negative control: ProxSkip's count (1/p for every client) is rejected for q < 1.
    assert not bool(((per_round - 1.0 / p).abs() <= tol)[1:].any())


# ---------------------------------------------------------------------------- theory
def test_theory_defaults_and_errors(logreg, nonconvex):
    P, _ = logreg
    sm = P.smoothness()
    ps = cp.theory.default_params("proxskip", sm, None, P.n, P.d)
    assert ps["gamma"] == pytest.approx(1.0 / sm.L_max) and ps["p"] == pytest.approx(math.sqrt(sm.mu / sm.L_max))
    assert cp.theory.default_stepsize("scaffnew", sm, None, P.n, P.d) == pytest.approx(1.0 / sm.L_max)
    gs = cp.theory.default_params("gradskip", sm, None, P.n, P.d)
    kappa = sm.L_i / sm.mu
    expect = (1 - 1 / kappa) / (1 - 1 / kappa.max())
    assert np.allclose(gs["q"], expect.numpy())
    tm = cp.theory.default_params("tamuna", sm, None, P.n, P.d, c=4)
    assert tm["s"] == 2 and tm["eta"] == pytest.approx(tm["p"] * 4 * 1 / (2 * 3))
    assert tm["p"] == pytest.approx(min(1.0, math.sqrt(sm.mu / sm.L_max * 3)))
    lo, hi = lt.tamuna_eta_range(0.3, 10, 4)
    assert lo == pytest.approx(0.15) and hi == pytest.approx(0.3 * 10 * 3 / (4 * 9))  # Flower: 0.246 at p = 1/3
    assert lo <= 0.246 <= hi  # the Flower baseline's default eta at p = 1/3, c = 10, s = 4
    assert lt.proxskip_rate(0.1, 1.0, 0.2) == pytest.approx(0.04)
    assert float(lt.expected_gradients_per_round(0.25, 1.0)) == pytest.approx(4.0)
    with pytest.raises(ConfigError, match="mu > 0"):
        cp.theory.default_params("proxskip", nonconvex.smoothness(), None, nonconvex.n, nonconvex.d)
    with pytest.raises(ConfigError, match="mu > 0"):
        lt.gradskip_q([1.0, 2.0], 0.0)
    with pytest.raises(ConfigError, match="2 <= s <= c"):
        cp.theory.default_params("tamuna", sm, None, P.n, P.d, c=3, s=4)
    # p given: gamma needs no mu.
    assert cp.theory.default_params("proxskip", nonconvex.smoothness(), None, 5, 10, p=0.3)["p"] == 0.3


@pytest.mark.parametrize("name,kw,fragment", [
    ("proxskip", {"compressor": "randk"}, "takes no compressor"),
    ("proxskip", {"float_bits": 16}, "float_bits"),
    ("proxskip", {"p": 0.0}, "p in (0, 1]"),
    ("gradskip", {"p": 0.5, "q": [0.5, 2.0, 1, 1, 1]}, "probabilities in [0, 1]"),
    ("gradskip", {"p": 0.5, "q": [0.5, 0.5]}, "probabilities in [0, 1]"),
    ("tamuna", {"p": 0.5, "c": 6}, "2 <= s <= c <= n"),
    ("tamuna", {"p": 0.5, "s": 1}, "s >= 2"),
    ("tamuna", {"p": 0.5, "eta": 0.0}, "eta"),
    ("compressed_scaffnew", {"p": 0.5, "compressor": "cq"}, "takes no compressor"),
])
def test_bad_settings_raise_clear_errors(logreg, name, kw, fragment):
    P, _ = logreg
    with pytest.raises(ConfigError) as info:
        cp.algorithms.make(name, P, gamma=0.1, **kw)
    assert fragment in str(info.value)
