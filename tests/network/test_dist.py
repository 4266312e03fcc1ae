"""Same seed, same iterates: 1, 2 and 4 gloo processes give the simulator's run and bit ledger.

One launch per process count (forked ranks on loopback) runs every job below; each test compares
one job with :func:`commpress.simulate` on a LocalNetwork that keeps the per-round ledger. The
jobs cover the three reduction paths of TorchDistNetwork: the remembered uplink (MARINA, DIANA),
a scalar multiple of it (EF21 with rescaled RandK, CSER) and the dense fallback (CSER's output
averages client state), with 8 clients (even blocks) and 6 clients (uneven blocks on 4 ranks).
"""

from __future__ import annotations

import functools

import pytest
import torch

import commpress as cp
from commpress.distributed import Job, launch
from commpress.network import DIRECTIONS, LocalNetwork

T = 25
EVEN = {"name": "quadratic", "params": {"n_clients": 8, "dim": 24, "seed": 1}}
ODD = {"name": "quadratic", "params": {"n_clients": 6, "dim": 24, "seed": 2}}
JOBS = {
    "marina+cq": Job(problem=EVEN, algorithm="marina", compressor="cq", iterations=T, seed=3, keep_rounds=True),
    "diana+randk": Job(problem=ODD, algorithm="diana", compressor={"name": "randk", "k": 5}, iterations=T, seed=5,
                       keep_rounds=True),
    "ef21+randk": Job(problem=ODD, algorithm="ef21", compressor={"name": "randk", "k": 5}, iterations=T, seed=7,
                      keep_rounds=True),
    "cser+topk": Job(problem=ODD, algorithm="cser", compressor={"name": "topk", "k": 5}, iterations=T, seed=9,
                     keep_rounds=True, record_every=3),
    "marina diverges": Job(problem=EVEN, algorithm="marina", compressor="cq", iterations=T, seed=3,
                           stepsize_multiplier=64.0, keep_rounds=True),
}


@pytest.fixture(scope="module", params=[1, 2, 4], ids=lambda k: f"{k}proc")
def runs(request):
    out = launch(list(JOBS.values()), processes=request.param, start_method="fork", timeout=60)
    return request.param, dict(zip(JOBS, out))


@functools.lru_cache(maxsize=None)
def simulated(key: str, seed_shift: int = 0):
    job = JOBS[key]
    problem = cp.problems.make(job.problem["name"], **job.problem["params"])
    network = LocalNetwork(problem.n, keep_rounds=True)
    algo = cp.algorithms.make(job.algorithm, problem, network, compressor=job.compressor, seed=job.seed + seed_shift,
                              **job.params)
    hist = cp.simulate(problem, algo, iterations=job.iterations, stepsize_multiplier=job.stepsize_multiplier,
                       record_every=job.record_every)
    return hist, network.ledger


@pytest.mark.parametrize("key", list(JOBS))
def test_same_iterates_curve_and_status_as_the_simulator(runs, key):
    k, out = runs
    got, (ref, _) = out[key].history, simulated(key)
    assert got.status == ref.status
    assert got.stepsize == ref.stepsize
    assert torch.equal(got.x, ref.x), (got.x - ref.x).abs().max()
    for name in ("iterations", "grad_norm_sq", "loss", "bits_up", "bits_down", "dist_sq"):
        assert torch.equal(getattr(got, name), getattr(ref, name)), name
    assert got.params["network"]["world_size"] == k


@pytest.mark.parametrize("key", list(JOBS))
def test_merged_ledger_is_the_simulators(runs, key):
    _, out = runs
    got, (_, ref) = out[key].ledger, simulated(key)
    for direction in DIRECTIONS:
        assert torch.equal(got.total(direction), ref.total(direction)), direction
        assert torch.equal(got.messages(direction), ref.messages(direction)), direction
        rounds, table = got.by_round(direction)
        ref_rounds, ref_table = ref.by_round(direction)
        assert rounds == ref_rounds and torch.equal(table, ref_table), direction
    assert torch.equal(out[key].history.bits_up_per_client, ref.total("up"))


def test_another_seed_gives_other_iterates(runs):
    # negative control: the comparisons above can fail
    _, out = runs
    other, _ = simulated("marina+cq", seed_shift=1)
    assert not torch.equal(out["marina+cq"].history.x, other.x)


def test_uplink_mean_costs_only_the_payloads(runs):
    k, out = runs
    marina = out["marina+cq"]
    # 8 clients, fixed-size payloads, even blocks: every rank's padded blob is its own payload bytes
    assert marina.wire["payloads"] * k * 8 == marina.ledger.grand_total("up")
    assert marina.wire["headers"] > 0
    for key in ("marina+cq", "diana+randk", "ef21+randk"):
        assert out[key].wire["dense"] == 0, key  # the uplink means needed no second dense collective
    assert out["marina+cq"].wire["scale"] == out["diana+randk"].wire["scale"] == 0
    if k > 1:
        assert out["ef21+randk"].wire["scale"] > 0  # scale * uplink(...): agreed on s, no dense rows
        assert out["cser+topk"].wire["dense"] > 0   # the mean of client state is all-gathered


def test_divergence_stops_every_rank_in_the_same_round(runs):
    _, out = runs
    hist = out["marina diverges"].history
    ref, _ = simulated("marina diverges")
    assert hist.status == "diverged" and hist.n_iterations == ref.n_iterations < T


def test_every_registered_compressor_crosses_the_wire_bit_exactly():
    # 3 ranks, 5 clients (blocks of 1, 2, 2): each compressor's payloads are really packed, sent and
    # decoded; the decoded batch is the simulator's fast path (apply), so the iterates agree exactly
    spec = {"name": "quadratic", "params": {"n_clients": 5, "dim": 32, "seed": 1}}
    names = cp.compressors.names()
    jobs = [Job(problem=spec, algorithm="dcgd", compressor=name, iterations=4, seed=2, stepsize=0.01) for name in names]
    runs = launch(jobs, processes=3, start_method="fork", timeout=60)
    problem = cp.problems.make(spec["name"], **spec["params"])
    for name, run in zip(names, runs):
        ref = cp.simulate(problem, "dcgd", compressor=name, iterations=4, seed=2, stepsize=0.01)
        assert torch.equal(run.history.x, ref.x), name
        assert torch.equal(run.ledger.total("up"), ref.bits_up_per_client), name
        assert run.wire["dense"] == 0, name
