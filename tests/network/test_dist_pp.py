"""Partial participation on 2 gloo processes: the simulator's iterates and ledger, and the same participants.

One launch (forked ranks on loopback) runs three jobs with uneven blocks (5 clients on 2 ranks):
EF21-PP with nice sampling (the scaled-uplink reduction), DIANA-PP with per-client independent
probabilities (reweighted rows: the dense reduction) and MARINA-PP given through the job's own
``participation`` field. Every rank draws the participants from the shared stream alone; the ledger
shows who sent, and it must be the sampler's set in every round, as in the simulator.
"""

from __future__ import annotations

import functools

import pytest
import torch

import commpress as cp
from commpress._rng import derive_seed
from commpress.distributed import Job, launch
from commpress.network import DIRECTIONS, LocalNetwork
from commpress.network.sampling import make_sampler

T = 20
ODD = {"name": "quadratic", "params": {"n_clients": 5, "dim": 16, "seed": 2}}
P = [0.9, 0.3, 0.6, 0.5, 0.8]
JOBS = {
    "ef21_pp nice": Job(problem=ODD, algorithm="ef21_pp", compressor={"name": "topk", "k": 4}, iterations=T, seed=7,
                        keep_rounds=True, params={"participation": "nice:2"}),
    "diana_pp independent": Job(problem=ODD, algorithm="diana_pp", compressor={"name": "randk", "k": 4},
                                iterations=T, seed=5, keep_rounds=True,
                                params={"participation": {"name": "independent", "p": P}}),
    "marina_pp job field": Job(problem=ODD, algorithm="marina_pp", compressor={"name": "randk", "k": 4}, iterations=T,
                               seed=3, keep_rounds=True, params={"p": 0.2}, participation="nice:3"),
}
SPECS = {"ef21_pp nice": "nice:2", "diana_pp independent": {"name": "independent", "p": P},
         "marina_pp job field": "nice:3"}


@pytest.fixture(scope="module")
def runs():
    out = launch(list(JOBS.values()), processes=2, start_method="fork", timeout=60)
    return dict(zip(JOBS, out))


@functools.lru_cache(maxsize=None)
def simulated(key: str):
    job = JOBS[key]
    problem = cp.problems.make(job.problem["name"], **job.problem["params"])
    network = LocalNetwork(problem.n, keep_rounds=True)
    params = {**job.params, "participation": SPECS[key]}
    algo = cp.algorithms.make(job.algorithm, problem, network, compressor=job.compressor, seed=job.seed, **params)
    hist = cp.simulate(problem, algo, iterations=job.iterations)
    return hist, network.ledger, algo


@pytest.mark.parametrize("key", list(JOBS))
def test_two_processes_give_the_simulators_run_and_participants(runs, key):
    got, (ref, ref_ledger, algo) = runs[key], simulated(key)
    assert got.world_size == 2
    assert torch.equal(got.history.x, ref.x), (got.history.x - ref.x).abs().max()
    for name in ("grad_norm_sq", "bits_up", "bits_down"):
        assert torch.equal(getattr(got.history, name), getattr(ref, name)), name
    for direction in DIRECTIONS:
        rounds, table = got.ledger.by_round(direction)
        ref_rounds, ref_table = ref_ledger.by_round(direction)
        assert rounds == ref_rounds and torch.equal(table, ref_table), direction
    # who sent in each compressed round is the sampler's draw from the shared stream
    sampler = make_sampler(SPECS[key])
    checked = 0
    for t in range(T):
        if key.startswith("marina") and algo.coin(t):
            continue
        S = sampler.sample(5, derive_seed(JOBS[key].seed, t, "sample")).tolist()
        senders = torch.nonzero(got.ledger.round_bits("up", t)).reshape(-1).tolist()
        assert senders == S, t
        checked += 1
    assert checked >= T // 2


def test_participant_check_has_power(runs):
    # Negative control: the draws of another run seed are not who sent.
    got = runs["ef21_pp nice"]
    other = [make_sampler("nice:2").sample(5, derive_seed(8, t, "sample")).tolist() for t in range(T)]
    senders = [torch.nonzero(got.ledger.round_bits("up", t)).reshape(-1).tolist() for t in range(T)]
    assert senders != other
