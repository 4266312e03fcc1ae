"""Newton-3PC-BC and Newton-3PC-BC-PP: reductions, convergence to 1e-10, exact ledger bits.

Problems: a9a (l2 = 1e-3) split into 8 clients of 50 rows (the split of test_fednl, smaller) and a
small synthetic logistic regression; x* from the problem's optimum, x^0 = x* + 0.1 (local methods).
"""

from __future__ import annotations

import pytest
import torch

import commpress as cp
from commpress.algorithms.base import INIT_ROUND
from commpress.network import LocalNetwork
from commpress.reproductions._second_order import split_problem

I64 = {"name": "identity", "float_bits": 64}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def a9a():
    return split_problem("a9a", 8, 50, l2=1e-3)


def small_logreg():
    return cp.problems.make("logreg", dim=8, n_clients=4, samples_per_client=40, l2=1e-2)


def iterates(problem, name, rounds, **kw):
    net = LocalNetwork(problem.n)
    alg = cp.algorithms.make(name, problem, net, **kw)
    s = alg.init(problem.optimum()[1] + 0.1)
    out = []
    for _ in range(rounds):
        s = alg.step(s)
        out.append(alg.output(s))
    return out, net, alg, s


def reached(problem, xs_list, target=1e-10):
    xs = problem.optimum()[1]
    errs = [float(((x - xs) ** 2).sum()) for x in xs_list]
    return next((k + 1 for k, e in enumerate(errs) if e <= target), None), errs


@pytest.mark.parametrize("mechanism", ["ef21", "cbag", "clag"])
def test_bc_with_identity_model_and_p1_is_newton_3pc(a9a, mechanism):
    a, *_ = iterates(a9a, "newton_3pc", 8, mechanism=mechanism, p=0.5, compressor="rank", downlink_compressor=I64)
    b, *_ = iterates(a9a, "newton_3pc_bc", 8, mechanism=mechanism, p_hess=0.5, compressor="rank",
                     model_compressor=I64, p=1.0)
    assert all(torch.allclose(u, v, rtol=0, atol=1e-12) for u, v in zip(a, b))
    # negative control: gradient skipping (p < 1) changes the iterates
    c, *_ = iterates(a9a, "newton_3pc_bc", 8, mechanism=mechanism, p_hess=0.5, compressor="rank",
                     model_compressor=I64, p=0.5)
    assert max(float((u - v).abs().max()) for u, v in zip(a, c)) > 1e-6


@pytest.mark.parametrize("kw", [dict(), dict(model_mechanism="cbag", p_model=0.5),
                                dict(model_mechanism="3pcv4", model_compressor={"name": "topk", "ratio": 0.25})])
def test_bc_converges_with_compressed_models_and_skipped_gradients(a9a, kw):
    xs_list, net, alg, s = iterates(a9a, "newton_3pc_bc", 60, compressor="rank", mechanism="ef21", p=0.5, **kw)
    k, errs = reached(a9a, xs_list)
    assert k is not None, errs[-1]


def test_bc_exact_bits(a9a):
    p = a9a
    d, N, R = p.d, p.d * (p.d + 1) // 2, 6
    _, net, alg, s = iterates(p, "newton_3pc_bc", R, compressor="rank", mechanism="cbag", p_hess=0.5, p=0.5,
                              model_compressor={"name": "topk", "k": 10})
    model_bits = alg.model_compressor.theory(1, d).bits
    assert net.ledger.round_bits("up", INIT_ROUND).tolist() == [32 * N] * p.n
    rank_bits = 32 * (d + 1)
    for t in range(R):
        grad = t == 0 or alg.grad_coin(t)
        up = rank_bits * alg.coin(t) + 32 * d * grad
        assert net.ledger.round_bits("up", t).tolist() == [up] * p.n
        assert net.ledger.round_bits("down", t).tolist() == [model_bits] * p.n
    coins = [alg.coin(t) for t in range(R)]
    assert 0 < sum(coins) < R and s.hessians == 1 + sum(coins)


def test_bc_pp_with_every_client_is_bc_and_fednl_pp(a9a):
    a, *_ = iterates(a9a, "newton_3pc_bc", 10, mechanism="ef21", option=2, compressor="rank", model_compressor=I64, p=1.0)
    b, *_ = iterates(a9a, "newton_3pc_bc_pp", 10, compressor="rank", model_compressor=I64, p=1.0, tau=a9a.n)
    c, *_ = iterates(a9a, "fednl_pp", 10, compressor="rank", tau=a9a.n)
    # equal up to float32 wire rounding (the methods round different quantities to float32)
    assert max(float((u - v).abs().max()) for u, v in zip(a, b)) < 1e-5
    assert max(float((u - v).abs().max()) for u, v in zip(c, b)) < 1e-5
    # negative control: a proper sample moves the iterates far more
    e, *_ = iterates(a9a, "newton_3pc_bc_pp", 10, compressor="rank", model_compressor=I64, p=1.0, tau=2)
    assert max(float((u - v).abs().max()) for u, v in zip(a, e)) > 1e-3


def test_bc_pp_converges_and_charges_only_sampled_clients():
    p = small_logreg()
    xs_list, net, alg, s = iterates(p, "newton_3pc_bc_pp", 150, tau=2, p=0.5, compressor={"name": "topk", "k": 8},
                                    model_compressor={"name": "topk", "k": 4})
    k, errs = reached(p, xs_list)
    assert k is not None, errs[-1]
    d = p.d
    hess_bits = alg.hess_compressor.theory(p.n, alg.N).bits
    model_bits = alg.model_compressor.theory(1, d).bits
    for t in range(10):
        sampled = torch.zeros(p.n, dtype=torch.bool)
        sampled[alg.participants(t)] = True
        xi = alg.coins(t) & sampled
        up = sampled.to(torch.int64) * (hess_bits + 32) + xi.to(torch.int64) * 32 * d
        assert net.ledger.round_bits("up", t).tolist() == up.tolist()
        assert net.ledger.round_bits("down", t).tolist() == (sampled.to(torch.int64) * model_bits).tolist()
    assert int(sampled.sum()) == 2


def test_bl2_with_everything_sent_is_newton_in_either_basis(a9a):
    kw = dict(compressor="identity", model_compressor=I64, p=1.0, tau=a9a.n)
    a, _, alg, _ = iterates(a9a, "bl2", 6, basis="data", **kw)
    b, *_ = iterates(a9a, "bl2", 6, basis="standard", **kw)
    assert alg.r_max == 50 < a9a.d  # the data basis is smaller than the space
    assert max(float((u - v).abs().max()) for u, v in zip(a, b)) < 1e-5  # float32 wire rounding apart
    k, errs = reached(a9a, a)
    assert k is not None and k <= 6, errs  # quadratic: Newton's method
    # negative control: one coefficient per round (Top-1) is no longer Newton
    c, *_ = iterates(a9a, "bl2", 6, basis="data", **{**kw, "compressor": {"name": "topk", "k": 1}})
    assert reached(a9a, c)[0] is None


def test_bl2_converges_with_sampling_and_charges_only_sampled_clients(a9a):
    xs_list, net, alg, s = iterates(a9a, "bl2", 150, tau=4, p=0.5, model_compressor={"name": "topk", "ratio": 0.5})
    k, errs = reached(a9a, xs_list)
    assert k is not None, errs[-1]
    d = a9a.d
    for t in range(8):
        sampled = torch.zeros(a9a.n, dtype=torch.bool)
        sampled[alg.participants(t)] = True
        up = net.ledger.round_bits("up", t)
        assert torch.equal(up > 0, sampled) and torch.equal(net.ledger.round_bits("down", t) > 0, sampled)
        xi = alg.coins(t) & sampled
        hess = up - 32 - 32 * d * xi.to(up.dtype)  # what is left is the coefficient payload
        assert bool((hess[sampled] > 0).all())
