"""Seeded Monte-Carlo checks of the methods' random pieces (tolerance: 5 standard errors).

Round randomness is derive_seed(seed, t, role), so repeating one step from a fixed state with
different round numbers t gives independent draws of that step's randomness.
"""

from __future__ import annotations

import dataclasses
import math

import torch

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress.algorithms._oracle import Oracle
from commpress.network import LocalNetwork

from tests.algorithms._stats import max_abs_z
from tests.algorithms._toy import toy

EXACT_DOWN = dict(downlink_compressor=cp.compressors.make("identity", float_bits=64))


def _estimates(alg, state, T):
    """(x - x')/gamma over T independent repetitions of one step from ``state``."""
    out = []
    for t in range(T):
        s = dataclasses.replace(state, t=1000 + t)
        out.append((state.x - alg.step(s).x) / alg.gamma)
    return torch.stack(out)


def test_gaussian_oracle_is_unbiased_with_variance_sigma2():
    problem = toy(n=3, d=5)
    net = LocalNetwork(3)
    sigma, T = 0.7, 3000
    orc = Oracle(problem, net, noise=sigma)
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    G = problem.client_grads(x)
    draws = torch.stack([orc(x, seed) for seed in range(T)])  # (T, n, d)
    assert max_abs_z(draws.reshape(T, -1), G.reshape(-1)) < 5
    sq = ((draws - G) ** 2).sum(-1)  # (T, n)
    assert max_abs_z(sq, sigma**2) < 5
    assert max_abs_z(sq, 1.3 * sigma**2) > 5  # negative control
    # clients are independent: the empirical correlation of client 0 and 1 noise is ~0
    e0, e1 = (draws[:, 0] - G[0]).reshape(-1), (draws[:, 1] - G[1]).reshape(-1)
    assert max_abs_z((e0 * e1)[:, None], 0.0) < 5


def test_sample_index_is_uniform_per_client():
    problem = toy(n=3, m=5)
    orc = Oracle(problem, LocalNetwork(3))
    T = 4000
    idx = torch.stack([orc.sample_index(s) for s in range(T)])  # (T, n)
    assert int(idx.min()) == 0 and int(idx.max()) == 4
    onehot = torch.nn.functional.one_hot(idx, 5).double().reshape(T, -1)
    assert max_abs_z(onehot, 0.2) < 5
    assert not torch.equal(idx[:, 0], idx[:, 1])  # private streams differ across clients


def test_diana_estimator_is_unbiased_for_any_shifts():
    problem = toy(n=4, d=6)
    alg = cp.algorithms.make("diana", problem, compressor="iq", gamma=0.1, alpha=0.5, **EXACT_DOWN)
    state = alg.init()
    g = torch.Generator().manual_seed(0)
    h_i = torch.randn(4, 6, generator=g, dtype=torch.float64) + 1.0  # arbitrary shifts
    state = dataclasses.replace(state, h_i=h_i, h=h_i.mean(0), x=state.x * 0.3)
    est = _estimates(alg, state, 2000)
    assert max_abs_z(est, problem.grad(state.x)) < 5
    # negative control: the same estimator without the server shift h is biased by -h
    assert max_abs_z(est - state.h, problem.grad(state.x)) > 5


def _vr_state(alg, problem):
    state = alg.init()
    x = state.x * 0.5
    g = torch.Generator().manual_seed(1)
    h_i = torch.randn(problem.n, problem.d, generator=g, dtype=torch.float64)
    if state.w is not None:  # L-SVRG: reference point w != x, mu = ∇f_i(w)
        return dataclasses.replace(state, x=x, h_i=h_i, h=h_i.mean(0))
    return dataclasses.replace(state, x=x, h_i=h_i, h=h_i.mean(0))  # SAGA: table at x^0 != x


def test_vr_diana_estimators_are_unbiased():
    problem = toy(n=4, d=6, m=5)
    for variant in ("lsvrg", "saga"):
        alg = cp.algorithms.make("vr_diana", problem, compressor="cq", gamma=0.1, variant=variant, **EXACT_DOWN)
        state = _vr_state(alg, problem)
        est = _estimates(alg, state, 1200)
        grad = problem.grad(state.x)
        assert max_abs_z(est, grad) < 5, variant
        # negative control: without the control variate (mu) the estimator is biased
        mu_bar = state.mu.mean(0)
        assert max_abs_z(est - mu_bar, grad) > 5, variant


def test_qsvrg_inner_estimator_is_unbiased():
    problem = toy(n=4, d=6, m=5)
    alg = cp.algorithms.make("qsvrg", problem, compressor="iq", gamma=0.1, epoch_length=50, **EXACT_DOWN)
    state = alg.step(alg.init())  # inside an epoch: anchor y and H = ∇f(y) set
    state = dataclasses.replace(state, x=state.x * 0.5)
    est = _estimates(alg, state, 1500)
    assert max_abs_z(est, problem.grad(state.x)) < 5
    assert max_abs_z(est, problem.grad(state.y)) > 5  # negative control


def test_weighted_marina_compressed_round_is_unbiased():
    # With p ~ 0 every round is compressed: E[g^{k+1} - g^k] = mean_i (∇f_i(x^{k+1}) - ∇f_i(x^k)).
    problem = toy(n=4, d=6)
    alg = cp.algorithms.make("weighted_marina", problem, compressor="iq", p=1e-12, gamma=0.1, **EXACT_DOWN)
    state = alg.step(alg.init())
    T = 2500
    diffs = []
    for t in range(T):
        new = alg.step(dataclasses.replace(state, t=1000 + t))
        diffs.append(new.g - state.g)
    diffs = torch.stack(diffs)
    x_next = state.x - alg.gamma * state.g
    expected = problem.grad(x_next) - state.grads.mean(0)
    assert max_abs_z(diffs, expected) < 5
    assert max_abs_z(diffs, problem.grad(x_next)) > 5  # negative control: not the plain gradient
