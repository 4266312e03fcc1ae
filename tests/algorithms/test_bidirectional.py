"""Bidirectional compression: EF21-P, EF21-P + DIANA, EF21-P + MARINA, MARINA-P, EF21-BC.

Convergence to scipy's optimum on a strongly convex quadratic (relative gap <= 1e-6) and stationarity
on a nonconvex logistic regression (||grad f||^2 down by 1e3), each with a negative control (the
model-shift / downlink estimator never updated: the same check must fail); the reductions
(C^P = I: GD, DIANA, MARINA; MARINA-P with p = 1 or Q_i = I: GD; EF21-BC with C_M = I: EF21) iterate for
iterate; both bit directions against the payload sizes; theory constants and ConfigErrors; a
Monte-Carlo check of MARINA-P's θ.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress import theory
from commpress.algorithms.ef21_bc import EF21BC
from commpress.algorithms.ef21_p import _PrimalEF
from commpress.algorithms.marina_p import MARINAP
from commpress.errors import ConfigError
from commpress.network import LocalNetwork
from commpress.simulate import simulate

from tests.algorithms._toy import toy

EXACT = dict(name="identity", float_bits=64)  # an exact wire
TOP2 = dict(name="topk", k=2)
RAND5 = dict(name="randk", k=5)


def _exact():
    return cp.compressors.make("identity", float_bits=64)


# ----------------------------------------------------------------------------- strongly convex
@pytest.fixture(scope="module")
def quad():
    problem = cp.problems.make("quadratic", n_clients=4, dim=10, noise_scale=0.3, reg=0.3)

    def fun(z):
        x = torch.as_tensor(z, dtype=torch.float64)
        return problem.loss(x), problem.grad(x).numpy()

    res = scipy.optimize.minimize(fun, np.zeros(problem.d), jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 10_000})
    assert float(problem.grad(torch.as_tensor(res.x)).norm()) < 1e-7  # f - f* < 1e-13
    return problem, float(res.fun)


#: name, keywords, stepsize multiplier (2^j times the theoretical stepsize, as the papers tune), rounds
STRONGLY_CONVEX = [
    ("ef21_p", dict(downlink_compressor=TOP2), 1, 700),
    ("ef21_p_diana", dict(compressor=RAND5, downlink_compressor=TOP2), 4, 700),
    ("ef21_p_marina", dict(compressor=RAND5, downlink_compressor=TOP2), 1, 700),
    ("marina_p", dict(downlink_compressor="permk"), 1, 150),
    ("ef21_bc", dict(compressor=TOP2, downlink_compressor=TOP2, regime="pl"), 1, 500),
]


def _rel_gap(problem, f_star, alg, rounds):
    state = alg.init()
    f0 = problem.loss(alg.output(state)) - f_star
    for _ in range(rounds):
        state = alg.step(state)
    return float((problem.loss(alg.output(state)) - f_star) / f0)


def _break(monkeypatch, name):
    """The negative control: the workers' model / the broadcast estimator is never updated."""
    if name.startswith("ef21_p"):
        monkeypatch.setattr(_PrimalEF, "_model_step", lambda self, x, w, t: w)
    elif name == "marina_p":
        monkeypatch.setattr(MARINAP, "coin", lambda self, t: False)
        monkeypatch.setattr(LocalNetwork, "downlink_rows", lambda self, X, *a, **k: torch.zeros_like(X))
    else:
        monkeypatch.setattr(EF21BC, "_down", lambda self, x, t, *more, compressor=None: torch.zeros_like(x))


@pytest.mark.parametrize("name,kw,mult,rounds", STRONGLY_CONVEX, ids=[c[0] for c in STRONGLY_CONVEX])
def test_converges_to_the_scipy_optimum_on_a_strongly_convex_quadratic(quad, monkeypatch, name, kw, mult, rounds):
    problem, f_star = quad
    alg = cp.algorithms.make(name, problem, **kw)
    alg = alg.with_gamma(mult * alg.theory_stepsize())
    gap = _rel_gap(problem, f_star, alg, rounds)
    assert gap <= 1e-6, gap
    # negative control: without the model-shift / downlink-estimator update the same run does not get there
    _break(monkeypatch, name)
    broken = cp.algorithms.make(name, problem, **kw)
    broken = broken.with_gamma(mult * broken.theory_stepsize())
    assert not _rel_gap(problem, f_star, broken, rounds) <= 1e-6


# ----------------------------------------------------------------------------- nonconvex
@pytest.fixture(scope="module")
def nonconvex():
    problem = cp.problems.make("nonconvex_logreg", n_clients=10, dim=20, samples_per_client=50)
    return problem, float(problem.grad(problem.x0()).pow(2).sum())


NONCONVEX = [
    ("ef21_p", dict(downlink_compressor=TOP2), 1),
    ("ef21_p_marina", dict(compressor=RAND5, downlink_compressor=TOP2), 1),
    ("marina_p", dict(downlink_compressor="permk"), 1),
    ("ef21_bc", dict(compressor=TOP2, downlink_compressor=TOP2), 4),
]


@pytest.mark.parametrize("name,kw,mult", NONCONVEX, ids=[c[0] for c in NONCONVEX])
def test_reduces_the_gradient_norm_on_nonconvex_logreg(nonconvex, monkeypatch, name, kw, mult):
    problem, g0 = nonconvex
    h = simulate(problem, name, iterations=800, target=1e-3 * g0, stepsize_multiplier=mult, record_every=10, **kw)
    assert h.status == "target_reached", (h.status, float(h.grad_norm_sq[-1] / g0))
    assert h.params["stepsize_source"] == "theory"
    _break(monkeypatch, name)
    h = simulate(problem, name, iterations=800, target=1e-3 * g0, stepsize_multiplier=mult, record_every=10, **kw)
    assert h.status != "target_reached"


# ----------------------------------------------------------------------------- reductions
def _run(alg, k):
    state = alg.init()
    xs = [alg.output(state)]
    for _ in range(k):
        state = alg.step(state)
        xs.append(alg.output(state))
    return torch.stack(xs)


def _close(a, b):
    return torch.allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def problem():
    return toy(n=4, d=10, hetero=1.5)


def _g(problem, c=0.3):
    return c / problem.smoothness().L_minus


def test_ef21_p_with_identity_is_gd(problem):
    gd = _run(cp.algorithms.make("gd", problem, gamma=_g(problem), downlink_compressor=_exact()), 20)
    assert _close(gd, _run(cp.algorithms.make("ef21_p", problem, gamma=_g(problem), downlink_compressor=EXACT), 20))
    assert not _close(gd, _run(cp.algorithms.make("ef21_p", problem, gamma=_g(problem), downlink_compressor=TOP2), 20))


def test_ef21_p_diana_with_identity_is_diana(problem):
    kw = dict(compressor=RAND5, gamma=_g(problem), alpha=0.5, seed=7)
    diana = _run(cp.algorithms.make("diana", problem, h0="grad", downlink_compressor=_exact(), **kw), 20)
    assert _close(diana, _run(cp.algorithms.make("ef21_p_diana", problem, downlink_compressor=EXACT, **kw), 20))
    assert not _close(diana, _run(cp.algorithms.make("ef21_p_diana", problem, downlink_compressor=TOP2, **kw), 20))


def test_ef21_p_marina_with_identity_is_marina(problem):
    kw = dict(compressor=RAND5, gamma=_g(problem), p=0.3, seed=5)
    marina = _run(cp.algorithms.make("marina", problem, downlink_compressor=_exact(), **kw), 25)
    assert _close(marina, _run(cp.algorithms.make("ef21_p_marina", problem, downlink_compressor=EXACT, **kw), 25))
    assert not _close(marina, _run(cp.algorithms.make("ef21_p_marina", problem, downlink_compressor=TOP2, **kw), 25))


def test_marina_p_with_p_one_or_identity_is_gd(problem):
    gd = _run(cp.algorithms.make("gd", problem, gamma=_g(problem), downlink_compressor=_exact()), 20)
    dense = cp.algorithms.make("marina_p", problem, gamma=_g(problem), p=1.0, model_float_bits=64)
    assert torch.equal(gd, _run(dense, 20))
    exact = cp.algorithms.make("marina_p", problem, gamma=_g(problem), p=1e-12, downlink_compressor=EXACT)
    assert _close(gd, _run(exact, 20))
    # negative controls: PermK messages (workers' models differ), or the float32 model broadcast
    assert not _close(gd, _run(cp.algorithms.make("marina_p", problem, gamma=_g(problem), p=1e-12), 20))
    assert not _close(gd, _run(cp.algorithms.make("marina_p", problem, gamma=_g(problem), p=1.0), 20))


def test_ef21_bc_with_identity_downlink_is_ef21(problem):
    kw = dict(compressor=TOP2, gamma=_g(problem))
    ef21 = _run(cp.algorithms.make("ef21", problem, downlink_compressor=_exact(), **kw), 20)
    bc = cp.algorithms.make("ef21_bc", problem, downlink_compressor=EXACT, g0_broadcast="compressed", **kw)
    assert _close(ef21, _run(bc, 20))
    assert not _close(ef21, _run(cp.algorithms.make("ef21_bc", problem, downlink_compressor=TOP2, **kw), 20))


# ----------------------------------------------------------------------------- bits, both directions
def _bits(spec, rows, d):
    comp = cp.compressors.make(spec["name"], **{k: v for k, v in spec.items() if k != "name"}) \
        if isinstance(spec, dict) else cp.compressors.make(spec)
    _, bits = comp.apply(torch.randn(rows, d, dtype=torch.float64), 0)
    return bits


def test_both_directions_are_charged_their_payloads(problem):
    n, d, T = problem.n, problem.d, 9
    dense = 32 * d
    top2 = int(_bits(TOP2, 1, d)[0])            # 2 values + 2 indices, byte-padded
    rand5 = int(_bits(RAND5, 1, d)[0])
    expected = {
        "ef21_p": (dict(downlink_compressor=TOP2), T * dense, T * top2),
        "ef21_p_diana": (dict(compressor=RAND5, downlink_compressor=TOP2), dense + T * rand5, T * top2),
        "ef21_bc": (dict(compressor=TOP2, downlink_compressor=TOP2), dense + T * top2, dense + T * top2),
        "ef21_bc/c": (dict(compressor=TOP2, downlink_compressor=TOP2, g0_broadcast="compressed"),
                      dense + T * top2, (T + 1) * top2),
    }
    for case, (kw, up, down) in expected.items():
        net = LocalNetwork(n)
        alg = cp.algorithms.make(case.split("/")[0], problem, net, gamma=1e-3, **kw)
        state = alg.init()
        for _ in range(T):
            state = alg.step(state)
        assert torch.equal(net.ledger.total("up"), torch.full((n,), up)), case
        assert torch.equal(net.ledger.total("down"), torch.full((n,), down)), case
    # MARINA coins: dense uplink on coin rounds, RandK otherwise; the downlink is always C^P
    net = LocalNetwork(n)
    alg = cp.algorithms.make("ef21_p_marina", problem, net, gamma=1e-3, p=0.4, compressor=RAND5,
                             downlink_compressor=TOP2)
    state = alg.init()
    for _ in range(T):
        state = alg.step(state)
    coins = [alg.coin(t) for t in range(T)]
    assert 0 < sum(coins) < T
    assert torch.equal(net.ledger.total("up"), torch.full((n,), dense + sum(dense if c else rand5 for c in coins)))
    assert torch.equal(net.ledger.total("down"), torch.full((n,), T * top2))


def test_marina_p_charges_each_worker_its_own_message():
    # d = 10 over n = 4 workers: PermK blocks of 3, 3, 2, 2 coordinates, so the workers' bits differ
    problem = toy(n=4, d=10)
    net = LocalNetwork(4)
    alg = cp.algorithms.make("marina_p", problem, net, gamma=1e-3, p=0.3, seed=2)
    state = alg.init()
    T = 12
    for _ in range(T):
        state = alg.step(state)
    coins = [alg.coin(t) for t in range(T)]
    assert 0 < sum(coins) < T
    rounds, table = net.ledger.by_round("down")
    assert rounds == list(range(T))
    for t, c in enumerate(coins):
        row = table[t]
        if c:
            assert torch.all(row == 32 * 10)
        else:  # each worker its own PermK block: the payloads of the compressor's per-client messages
            V = torch.ones(4, 10, dtype=torch.float64)
            _, bits = alg.downlink_compressor.apply(V, alg._seed(t, "downlink"))
            assert torch.equal(row, bits) and sorted(bits.tolist()) == [64, 64, 96, 96]
    assert torch.all(net.ledger.total("up") == (T + 1) * 32 * 10)
    # "same" messages: one RandK draw, the same bits for everyone
    net = LocalNetwork(4)
    alg = cp.algorithms.make("marina_p", problem, net, gamma=1e-3, p=1e-9, messages="same",
                             downlink_compressor=RAND5)
    state = alg.step(alg.init())
    assert torch.all(net.ledger.round_bits("down", 0) == _bits(RAND5, 1, 10)[0])


# ----------------------------------------------------------------------------- MARINA-P's theta (Monte-Carlo)
@pytest.mark.parametrize("spec,messages,theta", [("permk", "individual", 0.0), (RAND5, "individual", 1.0 / 4),
                                                 (RAND5, "same", 1.0)])
def test_marina_p_theta_matches_the_average_of_the_messages(spec, messages, theta):
    # E||mean_i Q_i(v) - v||^2 = theta ||v||^2 (n = 4, d = 10, RandK k = 5: omega = 1). 1000 draws;
    # tolerance 5 standard errors; negative control: the other mode's theta is rejected.
    n, d, N = 4, 10, 1000
    comp = cp.compressors.make(spec) if isinstance(spec, str) else cp.compressors.make("randk", k=5)
    th = comp.theory(n, d)
    assert theory.marina_p_theta(th.omega, th.A, th.B, messages) == pytest.approx(theta)
    v = torch.linspace(-1, 2, d, dtype=torch.float64)
    errs = []
    for s in range(N):
        if messages == "same":
            mean = comp.apply(v[None], s)[0][0]
        else:
            mean = comp.apply(v.expand(n, d), s)[0].mean(0)
        errs.append(float((mean - v).pow(2).sum()) / float(v.pow(2).sum()))
    errs = torch.tensor(errs)
    se = float(errs.std()) / math.sqrt(N) + 1e-12
    assert abs(float(errs.mean()) - theta) < 5 * se + 1e-12
    wrong = 1.0 if theta < 1 else 0.25
    assert abs(float(errs.mean()) - wrong) > 5 * se


# ----------------------------------------------------------------------------- theory
def test_theory_stepsizes_and_their_ordering():
    # MARINA-P on a low-heterogeneity quadratic: PermK > independent RandK > same RandK (theta 0 < w/n < w)
    problem = cp.problems.make("quadratic", n_clients=4, dim=12, noise_scale=0.02, reg=0.1)
    g = {}
    for label, kw in {"permk": dict(downlink_compressor="permk"),
                      "indep": dict(downlink_compressor=dict(name="randk", k=3)),
                      "same": dict(downlink_compressor=dict(name="randk", k=3), messages="same")}.items():
        g[label] = cp.algorithms.make("marina_p", problem, **kw).gamma
    assert g["permk"] > g["indep"] > g["same"]
    a, b = theory.marina_p_similarity(problem.hessians())
    value, LA, LB = theory.marina_p_variance(3.0, 0.75, a, b)
    assert value == pytest.approx(3.0 * LA**2 + 0.75 * LB**2)
    for s in (0.1, 1.0, 10.0):  # the best split is no worse than any other s
        assert value <= 3.0 * (1 + s) * a + 0.75 * (1 + 1 / s) * b + 1e-12
    # EF21-P family
    assert theory.ef21_p_stepsize(2.0, 1.0) == pytest.approx(1 / 10)
    assert theory.ef21_p_diana_stepsize(1.0, 2.0, 0.5, 3.0, 0.75, 0.1) == pytest.approx(min(0.5 / 16, 1 / 240, 1 / 0.8))
    assert theory.ef21_p_marina_stepsize(1.0, 1.0, 1.0, 0.5, 0.5) == pytest.approx(1 / (5 + math.sqrt(8 * 0.5)))
    # EF21-BC: the script's stepsize is EF21's with alpha_W; "product" is smaller
    assert theory.ef21_bc_stepsize(1.0, 1.5, 0.2) == pytest.approx(theory.ef21_stepsize(1.0, 1.5, 0.2))
    assert theory.ef21_bc_stepsize(1.0, 1.5, 0.2, 0.5, variant="product") < theory.ef21_bc_stepsize(1.0, 1.5, 0.2)
    # gamma=None takes these through theory.default_stepsize
    p = toy(n=4, d=10)
    alg = cp.algorithms.make("ef21_p_diana", p, compressor=RAND5, downlink_compressor=TOP2)
    sm = p.smoothness()
    assert alg.gamma == pytest.approx(theory.ef21_p_diana_stepsize(sm.L_minus, sm.L_max, 0.2, 1.0, 0.25, sm.mu))
    assert alg.alpha == pytest.approx(0.5)


@pytest.mark.parametrize("name,kw,words", [
    ("ef21_p_diana", dict(compressor="topk"), "unbiased uplink"),
    ("ef21_p_marina", dict(compressor="topk"), "unbiased uplink"),
    ("marina_p", dict(downlink_compressor="topk"), "unbiased downlink"),
    ("ef21_p", dict(downlink_compressor="randk", scale=None), "contractive downlink"),
    ("ef21_bc", dict(compressor="randk", scale=None), "contractive uplink"),
    ("marina_p", dict(downlink_compressor="permk", messages="same"), "one message per worker"),
])
def test_violated_assumptions_raise_a_config_error(name, kw, words):
    with pytest.raises(ConfigError, match=words):
        cp.algorithms.make(name, toy(n=4, d=10), **kw)
