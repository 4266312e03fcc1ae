"""Basis Learn (BL1 core): the data basis represents the Hessians exactly, full-budget BL1 is Newton's method,
and with equal Top-K budgets the data basis converges where the standard basis (FedNL) may not."""

from __future__ import annotations

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError


def _problem():
    # m = 6 samples per client in d = 10: rank r_i <= 6 < d, the case where the basis matters
    return cp.problems.make("logreg", dim=10, samples_per_client=6, n_clients=4, l2=1e-2, heterogeneity=0.5)


P = _problem()
F_STAR, X_STAR = P.optimum()


def _run(alg, steps, x0=None):
    s = alg.init(x0)
    for _ in range(steps):
        s = alg.step(s)
    return s


def test_the_data_basis_represents_every_client_hessian():
    alg = cp.algorithms.make("basis_learn", P)
    assert alg.r_max == 6 and alg.ranks.tolist() == [6, 6, 6, 6]
    x = torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Lam = alg._sym(alg._coefficients(x))
    H = torch.bmm(torch.bmm(alg.V, Lam), alg.V.transpose(1, 2)) + P.l2 * torch.eye(10, dtype=torch.float64)
    z = P.margins(x)
    s = torch.sigmoid(z) * (1 - torch.sigmoid(z)) * P._weights
    ref = torch.einsum("nmd,nm,nme->nde", P.data.features, s, P.data.features) + P.l2 * torch.eye(10, dtype=torch.float64)
    assert torch.allclose(H, ref, atol=1e-12)


def test_full_budget_is_newton_in_either_basis_and_converges_quadratically():
    for basis, k in (("data", 21), ("standard", 55)):
        alg = cp.algorithms.make("basis_learn", P, basis=basis, compressor={"name": "topk", "k": k})
        s = _run(alg, 12)
        assert P.loss(s.x) - F_STAR <= 1e-12 * max(1.0, abs(F_STAR))


def test_compressed_data_basis_converges_and_bits_are_counted():
    alg = cp.algorithms.make("basis_learn", P, compressor={"name": "topk", "k": 6})
    s = _run(alg, 30)
    assert P.loss(s.x) - F_STAR <= 1e-10
    led = alg.network.ledger
    # one-time basis (32 d r_max) and Lambda(x0) (32 r(r+1)/2), bytes padded
    assert int(led.round_bits("up", -1)[0]) == 32 * 10 * 6 + 32 * 21
    # per round: a dense gradient (32 d) and Top-6 of 21 coefficients (values and indices)
    per_round = led.round_bits("up", 3)
    assert bool((per_round > 32 * 10 + 32 * 6).all())


def test_negative_control_a_wrong_basis_breaks_convergence(monkeypatch):
    alg = cp.algorithms.make("basis_learn", P, compressor={"name": "topk", "k": 21})
    alg.V = torch.flip(alg.V, dims=[0])  # every client uses another client's basis: Hessians are wrong
    alg.B = torch.bmm(P.data.features.to(torch.float64), alg.V)
    s = _run(alg, 12)
    assert P.loss(s.x) - F_STAR > 1e-10


def test_bad_settings():
    with pytest.raises(ConfigError, match="basis"):
        cp.algorithms.make("basis_learn", P, basis="eigen")
    with pytest.raises(ConfigError, match="basis='standard'"):
        cp.algorithms.make("basis_learn", cp.problems.make("quadratic", dim=4, n_clients=2))


def test_standard_basis_runs_on_any_problem_with_hessians():
    Q = cp.problems.make("quadratic", dim=5, n_clients=3, reg=0.5)
    if not hasattr(Q, "hessians"):
        pytest.skip("this problem has no hessians(x)")
    alg = cp.algorithms.make("basis_learn", Q, basis="standard", compressor={"name": "topk", "k": 15})
    s = _run(alg, 3)
    assert float((s.x - Q.optimum()[1]).norm()) <= 1e-6 * max(1.0, float(Q.optimum()[1].norm()))  # float32 wire
