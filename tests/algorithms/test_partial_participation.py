"""Partial participation: MARINA-PP, EF21-PP, DIANA-PP, DASHA-PP.

- reductions: with every client (``full``, ``nice:n``) each method is its parent iterate for iterate,
  ledger included;
- bits: in every round exactly the sampled clients are charged (uplink; downlink per method), with a
  network that ignores the participants as negative control;
- convergence: strongly convex least squares to scipy's optimum (relative gap <= 1e-6, theoretical
  stepsizes), nonconvex logistic regression (||grad f||^2 reduced 10^3), with a broken DIANA-PP (server
  shift moved by the reweighted mean) as negative control;
- plumbing: ``cp.simulate(participation=...)``, TOML configs, the run's params.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

import commpress as cp
from commpress._rng import derive_seed
from commpress.algorithms.diana import DIANAState
from commpress.algorithms.diana_pp import DIANAPP
from commpress.errors import ConfigError
from commpress.network import LocalNetwork
from commpress.network.sampling import make_sampler

RANDK = {"name": "randk", "k": 4}
TOPK = {"name": "topk", "k": 4}


@pytest.fixture(scope="module")
def lsq():
    return cp.problems.make("least_squares", n_clients=6, dim=12, samples_per_client=20, l2=1.0, seed=1)


@pytest.fixture(scope="module")
def f_star(lsq):
    """The optimum by scipy (L-BFGS-B to machine precision), checked against the problem's own."""
    res = scipy.optimize.minimize(lambda z: lsq.loss(torch.tensor(z)), np.zeros(lsq.d),
                                  jac=lambda z: lsq.grad(torch.tensor(z)).numpy(), method="L-BFGS-B",
                                  options={"gtol": 1e-14, "ftol": 1e-16, "maxiter": 10_000})
    assert abs(res.fun - lsq.optimum()[0]) <= 1e-12 * abs(res.fun)
    return float(res.fun)


@pytest.fixture(scope="module")
def ncvx():
    return cp.problems.make("nonconvex_logreg", n_clients=6, dim=12, samples_per_client=20, seed=1)


def _run(problem, name, T, seed=3, **kw):
    net = LocalNetwork(problem.n, keep_rounds=True)
    algo = cp.algorithms.make(name, problem, net, seed=seed, **kw)
    state = algo.init()
    xs = [state.x]
    for _ in range(T):
        state = algo.step(state)
        xs.append(state.x)
    return algo, torch.stack(xs), net.ledger


def _same_ledgers(a, b) -> bool:
    return all(a.by_round(k)[0] == b.by_round(k)[0] and torch.equal(a.by_round(k)[1], b.by_round(k)[1])
               for k in ("up", "down"))


# ------------------------------------------------------------------------------------------ reductions
REDUCTIONS = [
    ("marina_pp", "marina", dict(compressor=RANDK, p=0.3), {}),
    ("ef21_pp", "ef21", dict(compressor=TOPK), {}),
    ("diana_pp", "diana", dict(compressor=RANDK, h0="grad"), {}),
    ("dasha_pp", "dasha", dict(compressor=RANDK), {"g0": "grad"}),
]


@pytest.mark.parametrize("full", ["full", "nice:6", "independent:1"])
@pytest.mark.parametrize("pp_name, parent, kw, parent_kw", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_full_participation_is_the_parent_iterate_for_iterate(lsq, pp_name, parent, kw, parent_kw, full):
    a, xa, la = _run(lsq, pp_name, 30, participation=full, **kw)
    b, xb, lb = _run(lsq, parent, 30, **kw, **parent_kw)
    assert a.gamma == b.gamma  # the theoretical stepsize reduces too
    assert torch.equal(xa, xb)
    assert _same_ledgers(la, lb)


def test_reduction_check_has_power(lsq):
    # Negative control: another run seed of the same parent changes the iterates.
    _, xa, _ = _run(lsq, "marina_pp", 30, participation="full", compressor=RANDK, p=0.3)
    _, xb, _ = _run(lsq, "marina", 30, seed=4, compressor=RANDK, p=0.3)
    assert not torch.equal(xa, xb)


# ------------------------------------------------------------------------------------------ bits
def _senders(ledger, direction, t):
    return torch.nonzero(ledger.round_bits(direction, t)).reshape(-1).tolist()


def _charged_only_to_participants(problem, name, spec, T=25, seed=3, **kw) -> bool:
    algo, _, ledger = _run(problem, name, T, seed=seed, participation=spec, **kw)
    sampler = make_sampler(spec)
    every = list(range(problem.n))

    def S(t):
        return sampler.sample(problem.n, derive_seed(seed, t, "sample")).tolist()

    for t in range(T):
        if name == "marina_pp" and algo.coin(t):
            up, down = every, every
        elif name == "marina_pp":
            up, down = S(t), every
        elif name == "diana_pp":
            up, down = S(t), S(t + 1)  # the new point goes to the next round's participants
        else:
            up, down = S(t), S(t)
        if _senders(ledger, "up", t) != up or _senders(ledger, "down", t) != down:
            return False
    return True


BITS = [("marina_pp", dict(compressor=RANDK, p=0.3)), ("ef21_pp", dict(compressor=TOPK)),
        ("diana_pp", dict(compressor=RANDK)), ("dasha_pp", dict(compressor=RANDK))]


@pytest.mark.parametrize("spec", ["nice:2", "independent:0.3"])
@pytest.mark.parametrize("name, kw", BITS, ids=[b[0] for b in BITS])
def test_bits_are_charged_only_to_the_sampled_clients(lsq, name, kw, spec):
    assert _charged_only_to_participants(lsq, name, spec, **kw)


def test_bits_check_has_power(lsq, monkeypatch):
    # Negative control: a network that lets every client send (ignores the participants).
    original = LocalNetwork.uplink

    def everyone(self, X, compressor, seed, *, round, participants=None):
        return original(self, X, compressor, seed, round=round)

    monkeypatch.setattr(LocalNetwork, "uplink", everyone)
    assert not _charged_only_to_participants(lsq, "ef21_pp", "nice:2", compressor=TOPK)


def test_empty_rounds_cost_nothing_and_change_no_client_state(lsq):
    algo, xs, ledger = _run(lsq, "ef21_pp", 40, participation="independent:0.1", compressor=TOPK)
    empty = [t for t in range(40) if _senders(ledger, "up", t) == []]
    assert empty  # p = 0.1 with 6 clients: about half of the rounds are empty
    assert all(_senders(ledger, "down", t) == [] for t in empty)
    assert torch.isfinite(xs).all()


# ------------------------------------------------------------------------------------------ convergence
CONVEX = [("marina_pp", dict(compressor=RANDK), "nice:3", 200), ("ef21_pp", dict(compressor=TOPK), "nice:3", 900),
          ("diana_pp", dict(compressor=RANDK, h0="grad"), "nice:3", 700),
          ("dasha_pp", dict(compressor=RANDK), "nice:3", 800)]


def _reaches(problem, f_star, name, kw, spec, T, **more):
    def close(t, state, rec):
        return (rec["loss"] - f_star) <= 1e-6 * abs(f_star)

    h = cp.simulate(problem, name, iterations=T, participation=spec, record_every=20, callback=close, **kw, **more)
    return h.status == "stopped_by_callback", h


@pytest.mark.parametrize("name, kw, spec, T", CONVEX, ids=[f"{c[0]}-{c[2]}" for c in CONVEX])
def test_strongly_convex_reaches_scipys_optimum(lsq, f_star, name, kw, spec, T):
    ok, h = _reaches(lsq, f_star, name, kw, spec, T)
    assert ok, (h.status, float(h.loss[-1] - f_star))
    assert h.params["stepsize_source"] == "theory"


class _BrokenDIANAPP(DIANAPP):
    """DIANA-PP whose server shift moves by the reweighted mean: h drifts away from the mean of the h_i."""

    def step(self, state: DIANAState) -> DIANAState:
        new = super().step(state)
        return DIANAState(x=new.x, h_i=new.h_i, h=state.h + (new.h - state.h) / self._p_uniform, v=new.v, t=new.t)


def test_convergence_check_rejects_a_biased_method(lsq, f_star):
    algo = _BrokenDIANAPP(lsq, LocalNetwork(lsq.n), compressor=RANDK, h0="grad", participation="nice:3", seed=0)
    ok, h = _reaches(lsq, f_star, algo, {}, None, 300)
    assert not ok
    assert float(h.loss[-1] - f_star) > 1e-2 * abs(f_star)  # a biased fixed point, not a slow start


NONCONVEX = [("marina_pp", dict(compressor=RANDK), 1.0), ("ef21_pp", dict(compressor=TOPK), 1.0),
             ("diana_pp", dict(compressor=RANDK), 16.0), ("dasha_pp", dict(compressor=RANDK), 1.0)]


@pytest.mark.parametrize("name, kw, mult", NONCONVEX, ids=[c[0] for c in NONCONVEX])
def test_nonconvex_logreg_gradient_norm_reduced_a_thousandfold(ncvx, name, kw, mult):
    g0 = float(ncvx.grad(ncvx.x0()).pow(2).sum())
    h = cp.simulate(ncvx, name, iterations=1500, participation="nice:3", record_every=10, target=g0 / 1e3,
                    stepsize_multiplier=mult, **kw)
    assert h.status == "target_reached", (h.status, float(h.grad_norm_sq[-1]) / g0)


# ------------------------------------------------------------------------------------------ plumbing
def test_simulate_participation_argument(lsq):
    a = cp.simulate(lsq, "ef21_pp", compressor=TOPK, iterations=5, participation="nice:2")
    b = cp.simulate(lsq, "ef21_pp", compressor=TOPK, iterations=5, participation={"name": "nice", "tau": 2})
    assert torch.equal(a.x, b.x) and a.params["participation"] == {"name": "nice", "tau": 2}
    assert torch.equal(cp.simulate(lsq, "marina", compressor=RANDK, iterations=5, p=0.3, participation="full").x,
                       cp.simulate(lsq, "marina", compressor=RANDK, iterations=5, p=0.3).x)
    with pytest.raises(ConfigError, match="partial-participation method"):
        cp.simulate(lsq, "marina", compressor=RANDK, iterations=5, participation="nice:2")
    with pytest.raises(ConfigError, match="tau <= n=6"):
        cp.simulate(lsq, "marina_pp", compressor=RANDK, iterations=5, participation="nice:7")
    with pytest.raises(ConfigError, match="one participation probability"):
        cp.simulate(lsq, "dasha_pp", compressor=RANDK, iterations=5, participation={"name": "independent",
                                                                                      "p": [0.5] * 5 + [1.0]})


def test_toml_config_participation(tmp_path):
    from commpress.experiments.config import check, load_config, methods

    path = tmp_path / "pp.toml"
    path.write_text('[problem]\nname = "quadratic"\nn_clients = 4\ndim = 8\n\n[run]\n'
                    'algorithms = ["marina_pp", "gd"]\ncompressor = "randk"\nparticipation = "nice:2"\n'
                    'iterations = 3\n')
    with pytest.raises(ConfigError, match="'gd' takes every client"):
        load_config(path)
    path.write_text(path.read_text().replace('"marina_pp", "gd"', '"marina_pp", "ef21_pp"'))
    cfg = load_config(path)
    assert [m.params["participation"] for m in methods(cfg)] == ["nice:2", "nice:2"]
    check(cfg)
    bad = path.read_text().replace('"nice:2"', '{name = "nice", tau = 9}')
    path.write_text(bad)
    with pytest.raises(ConfigError, match="tau <= n=4"):
        check(load_config(path))
    path.write_text(bad.replace("tau = 9", "tua = 2"))
    with pytest.raises(ConfigError, match="'tau'"):
        load_config(path)
