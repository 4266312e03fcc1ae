"""FedNL family and Newton-3PC: convergence to 1e-10 on LibSVM logistic regression, bits, conditioning.

Problem: a9a, l2 = 1e-3 (Islamov et al. 2023), shuffled, the first N = n m rows split into n = 16
clients of m = 100 (the a1a-sized split of the FedNL / Newton-3PC code; the spec's rule "first
N = nm points"). x* by exact Newton (the problem's optimum; scipy's trust-region Newton agrees to 5e-16). Starts x* + 0.1 * 1 (local methods)
and x* + 2 * 1 (globalised methods), as the reference notebook.
"""

from __future__ import annotations


import pytest
import torch

import commpress as cp
from commpress.algorithms.base import INIT_ROUND
from commpress.network import LocalNetwork
from commpress.reproductions._second_order import split_problem

TARGET = 1e-10


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # batched eigh with several threads on a loaded 2-core machine is ~100x slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def a9a():
    return {l2: split_problem("a9a", 16, 100, l2=l2) for l2 in (1e-3, 1e-4)}


def run(problem, name, x0, rounds, target=TARGET, **kw):
    """Rounds until ||x - x*||^2 <= target (None if not reached), the errors, network and final state."""
    xs = problem.optimum()[1]
    net = LocalNetwork(problem.n)
    alg = cp.algorithms.make(name, problem, net, **kw)
    state = alg.init(x0)
    errs = []
    for k in range(rounds):
        state = alg.step(state)
        errs.append(float(((alg.output(state) - xs) ** 2).sum()))
        if errs[-1] <= target:
            return k + 1, errs, net, state
        if not errs[-1] < 1e8:
            break
    return None, errs, net, state


def total_bits(net) -> float:
    return net.ledger.mean_total("up") + net.ledger.mean_total("down")


def first_order_reaches(problem, name, budget, x0, **kw) -> bool:
    """Whether a first-order method reaches TARGET within ``budget`` bits per client (up + down)."""
    xs = problem.optimum()[1]
    net = LocalNetwork(problem.n)
    alg = cp.algorithms.make(name, problem, net, **kw)
    state = alg.init(x0)
    while total_bits(net) <= budget:
        if float(((alg.output(state) - xs) ** 2).sum()) <= TARGET:
            return True
        state = alg.step(state)
    return False


@pytest.mark.parametrize("compressor,option", [("rank", 1), ("topk", 2)], ids=["rank1-option1", "topd-option2"])
def test_fednl_reaches_1e_10_with_fewer_bits_than_gd_and_diana(a9a, compressor, option):
    p = a9a[1e-3]
    xs = p.optimum()[1]
    x0 = xs + 0.1
    k, errs, net, _ = run(p, "fednl", x0, 60, compressor=compressor, option=option)
    assert k is not None, f"FedNL {compressor} stalled at {errs[-1]:.3g}"
    budget = total_bits(net)  # includes the one-time dense H_i^0 (32 d(d+1)/2 bits)
    # GD (1/L) and DIANA (random dithering s = sqrt(d), theory stepsize) with the same bits per client
    # stay above the target: they need more bits (negative control of the bit comparison: FedNL's own
    # budget is enough for FedNL).
    assert not first_order_reaches(p, "gd", budget, x0)
    assert not first_order_reaches(p, "diana", budget, x0, compressor={"name": "dithering", "s": 11})


def test_rates_do_not_depend_on_the_condition_number_and_newton_zero_does(a9a):
    rounds, gd_rounds = {}, {}
    for l2, p in a9a.items():
        xs = p.optimum()[1]
        k, errs, _, _ = run(p, "fednl", xs + 0.03, 40, compressor="rank", option=1)
        assert k is not None
        rounds[l2] = k
        sm = p.smoothness()
        gd_rounds[l2] = sm.L_minus / sm.mu  # GD's rounds scale with the condition number
        # the local theory: ||x^k - x*||^2 <= 2^-k ||x^0 - x*||^2 (N3PC Thm. 1), every round
        e0 = float((0.03**2) * p.d)
        assert all(e <= e0 * 0.5 ** (j + 1) for j, e in enumerate(errs))
    assert gd_rounds[1e-4] / gd_rounds[1e-3] > 9
    assert rounds[1e-4] <= rounds[1e-3] + 3
    # negative control (Newton Zero: Hessian frozen at x^0, alpha ~ 0): its rounds grow with the
    # conditioning, so the same budget that suffices for FedNL at l2=1e-4 does not suffice for it
    p = a9a[1e-4]
    k0, _, _, _ = run(p, "fednl", p.optimum()[1] + 0.03, rounds[1e-4], compressor="rank", alpha=1e-12)
    assert k0 is None


def test_exact_bits_per_client(a9a):
    p = a9a[1e-3]
    d, N = p.d, p.d * (p.d + 1) // 2
    R = 3
    k, errs, net, _ = run(p, "fednl", p.optimum()[1] + 0.1, R, target=0.0, compressor="rank", option=2)
    up, down = net.ledger.total("up"), net.ledger.total("down")
    per_round_up = 32 * d + 32 * (d + 1) + 32  # gradient, Rank-1 (eigenvalue + vector), l_i
    assert up.tolist() == [32 * N + R * per_round_up] * p.n
    assert down.tolist() == [R * 32 * d] * p.n
    assert net.ledger.round_bits("up", INIT_ROUND).tolist() == [32 * N] * p.n
    # Newton-CBAG: the Hessian message only in coin rounds
    net = LocalNetwork(p.n)
    alg = cp.algorithms.make("newton_3pc", p, net, mechanism="cbag", p=0.5, compressor={"name": "topk", "k": d})
    s = alg.init(p.optimum()[1] + 0.1)
    topk_bits = alg.hess_compressor.theory(p.n, N).bits
    coins = []
    for t in range(6):
        coins.append(alg.coin(t))
        s = alg.step(s)
        assert net.ledger.round_bits("up", t).tolist() == [32 * d + coins[-1] * topk_bits] * p.n
    assert 0 < sum(coins) < 6 and s.hessians == 1 + sum(coins)  # Hessians computed only on coin rounds


def test_exact_bits_of_newton_3pcv1_and_3pcv5():
    p = small_logreg()
    d, N = p.d, p.d * (p.d + 1) // 2
    comp = {"name": "topk", "k": d}
    # 3PCv1: Y + C(X - Y); the server lacks Y, so the full triangle (32 N) travels every round besides C(X - Y)
    net = LocalNetwork(p.n)
    alg = cp.algorithms.make("newton_3pc", p, net, mechanism="3pcv1", compressor=comp)
    topk_bits = alg.hess_compressor.theory(p.n, N).bits
    s = alg.init(p.optimum()[1] + 0.1)
    assert net.ledger.round_bits("up", INIT_ROUND).tolist() == [32 * N] * p.n
    for t in range(3):
        s = alg.step(s)
        assert net.ledger.round_bits("up", t).tolist() == [32 * d + 32 * N + topk_bits] * p.n
    # 3PCv5: the full X (32 N) on coin rounds, C(X - Y) otherwise
    net = LocalNetwork(p.n)
    alg = cp.algorithms.make("newton_3pc", p, net, mechanism="3pcv5", p=0.5, compressor=comp)
    s = alg.init(p.optimum()[1] + 0.1)
    coins = []
    for t in range(8):
        coins.append(alg.coin(t))
        s = alg.step(s)
        assert net.ledger.round_bits("up", t).tolist() == [32 * d + (32 * N if coins[-1] else topk_bits)] * p.n
    assert 0 < sum(coins) < 8 and s.hessians == 1 + 8  # a Hessian every round


def test_line_search_converges_from_far_where_fednl_does_not(a9a):
    p = a9a[1e-3]
    x0 = p.optimum()[1] + 2.0
    k, errs, _, state = run(p, "fednl_ls", x0, 60)
    assert k is not None and state.trials > 0
    k_plain, errs_plain, _, _ = run(p, "fednl", x0, 60)
    assert k_plain is None  # negative control: plain FedNL from x* + 2 does not converge here


def small_logreg(**kw):
    return cp.problems.make("logreg", dim=8, n_clients=4, samples_per_client=40, l2=1e-2, **kw)


def test_cubic_regularisation_descends_globally_and_solves_its_subproblem():
    from commpress.algorithms.fednl_cr import cubic_step

    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 6, generator=g, dtype=torch.float64)
    A = A + A.T  # indefinite
    v = torch.randn(6, generator=g, dtype=torch.float64)
    h = cubic_step(A, v, 2.0)
    # first-order optimality of the cubic model: v + A h + (M/2)||h|| h = 0
    assert float((v + A @ h + h.norm() * h).norm()) < 1e-9
    p = small_logreg()
    xs = p.optimum()[1]
    net = LocalNetwork(p.n)
    alg = cp.algorithms.make("fednl_cr", p, net, compressor="rank")
    state = alg.init(xs + 2.0)
    losses = [p.loss(state.x)]
    for _ in range(60):
        state = alg.step(state)
        losses.append(p.loss(state.x))
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))  # monotone (cubic upper model)
    assert float(((state.x - xs) ** 2).sum()) <= TARGET


def test_partial_participation_converges_and_charges_only_the_sampled_clients():
    p = small_logreg()
    xs = p.optimum()[1]
    k, errs, net, state = run(p, "fednl_pp", xs + 0.1, 200, compressor="rank", tau=2)
    assert k is not None
    alg = cp.algorithms.make("fednl_pp", p, LocalNetwork(p.n), compressor="rank", tau=2)
    for t in range(k):
        sampled = alg.sample(t)
        assert int(sampled.sum()) == 2
        up = net.ledger.round_bits("up", t)
        assert bool((up[~sampled] == 0).all()) and bool((up[sampled] > 0).all())
        assert torch.equal(net.ledger.round_bits("down", t) > 0, sampled)


def test_bidirectional_converges_and_sends_gradients_on_coin_rounds_only():
    p = small_logreg()
    xs = p.optimum()[1]
    k, errs, net, state = run(p, "fednl_bc", xs + 0.1, 200, compressor="rank", p=0.5,
                              model_compressor={"name": "topk", "ratio": 0.5})
    assert k is not None
    alg = cp.algorithms.make("fednl_bc", p, LocalNetwork(p.n), compressor="rank", p=0.5)
    d = p.d
    rank_bits = 32 * (d + 1)
    for t in range(k):
        expected = rank_bits + (32 * d if alg.coin(t) else 0)
        assert net.ledger.round_bits("up", t).tolist() == [expected] * p.n


@pytest.mark.parametrize("mechanism", ["ef21", "lag", "clag", "bag", "3pcv1", "3pcv2", "3pcv4", "3pcv5",
                                       "adaptive_topk", "rotation"])
def test_newton_3pc_mechanisms_converge(mechanism):
    p = small_logreg()
    xs = p.optimum()[1]
    kw = {} if mechanism in ("lag", "bag", "adaptive_topk") else {"compressor": {"name": "topk", "k": p.d}}
    k, errs, net, _ = run(p, "newton_3pc", xs + 0.1, 100, mechanism=mechanism, p=0.5, **kw)
    assert k is not None, f"{mechanism}: {errs[-1]:.3g}"


def test_bad_settings_are_rejected():
    p = small_logreg()
    with pytest.raises(cp.ConfigError, match="unknown matrix compressor"):
        cp.algorithms.make("fednl", p, compressor="cq")
    with pytest.raises(cp.ConfigError, match="option 1"):
        cp.algorithms.make("fednl", p, option=3)
    with pytest.raises(cp.ConfigError, match="alpha"):
        cp.algorithms.make("fednl", p, alpha=1.5)
    with pytest.raises(cp.ConfigError, match="tau"):
        cp.algorithms.make("fednl_pp", p, tau=9)
    with pytest.raises(cp.ConfigError, match="header"):
        cp.algorithms.make("fednl_pp", p, compressor="threshold")
    with pytest.raises(cp.ConfigError, match="mechanism"):
        cp.algorithms.make("newton_3pc", p, mechanism="3pcv9")
    with pytest.raises(cp.ConfigError, match="unbiased"):
        cp.algorithms.make("newton_3pc", p, mechanism="3pcv2", inner_compressor="topk")
    with pytest.raises(cp.ConfigError, match="contractive"):
        cp.algorithms.make("newton_3pc", p, mechanism="3pcv5", compressor="randk")


@pytest.mark.parametrize("inner", ["topk", "rank", "randk"])
def test_silent_clients_send_empty_payloads_and_decode_to_zero(inner):
    from commpress.algorithms._newton import Silent
    from commpress.compressors import matrix as mc

    g = torch.Generator().manual_seed(0)
    M = torch.randn(4, 6, 6, generator=g, dtype=torch.float64)
    V = mc.sym_to_tri(M + M.mT)
    comp = Silent(mc.make(inner), torch.tensor([True, False, True, False]))
    V_hat, bits = comp.apply(V, seed=3)
    payloads = comp.encode(V, seed=3)
    assert bits.tolist() == [8 * len(p) for p in payloads] and bits[1] == 0 and bits[0] > 0
    assert torch.equal(comp.decode(payloads, seed=3, d=V.shape[1], dtype=torch.float64), V_hat)
    assert float(V_hat[1].abs().sum()) == 0.0
    full, _ = mc.make(inner).apply(V, seed=3)
    assert torch.equal(V_hat[[0, 2]], full[[0, 2]])  # the senders' rows are the inner compressor's
    with pytest.raises(cp.errors.PayloadError):
        comp.decode([payloads[0], payloads[0], payloads[2], b""], seed=3, d=V.shape[1])


def test_the_optimum_is_the_one_scipy_finds(a9a):
    """x* (the problem's damped Newton, used as the target above) agrees with scipy's trust-region
    Newton to ||x - x*||^2 <= 1e-14, far below the 1e-10 the methods must reach."""
    import numpy as np
    import scipy.optimize

    p = a9a[1e-3]
    xs = p.optimum()[1].double()

    def hess(x):
        return p.hessians(torch.as_tensor(x, dtype=p.dtype)).double().mean(dim=0).numpy()

    res = scipy.optimize.minimize(lambda x: p.loss(torch.as_tensor(x, dtype=p.dtype)), np.zeros(p.d),
                                  jac=lambda x: p.grad(torch.as_tensor(x, dtype=p.dtype)).double().numpy(),
                                  hess=hess, method="trust-exact", options={"gtol": 1e-11})
    # (at gtol 1e-11 trust-exact may end on "a bad approximation": float64's limit near x*, not a failure)
    assert float(((torch.as_tensor(res.x) - xs) ** 2).sum()) <= 1e-14, (res.message, res.x)
