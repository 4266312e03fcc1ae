"""Faults of a distributed run: a dead or hung rank, damaged payloads, resuming, bad set-ups.

Every test launches forked gloo ranks on loopback with a fault injected through
``COMMPRESS_DIST_FAULT`` (``commpress.distributed._faults``) and checks what the surviving ranks
report, what stays on disk, and that the same job resumes to the simulator's final iterate.
"""

from __future__ import annotations

import re
import time

import pytest
import torch

import commpress as cp
from commpress.distributed import Job, launch
from commpress.distributed._faults import ENV, EXIT_CODE
from commpress.errors import ConfigError, DistributedError, PayloadError
from commpress.experiments.store import read_metrics

SPEC = {"name": "quadratic", "params": {"n_clients": 6, "dim": 16, "seed": 5}}
T = 12
TIMEOUT = 4.0


def _job(tmp_path=None, **kw) -> Job:
    base = dict(problem=SPEC, algorithm="marina", compressor="cq", iterations=T, seed=4)
    if tmp_path is not None:
        base.update(checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=3, metrics_csv=str(tmp_path / "metrics.csv"))
    base.update(kw)
    return Job(**base)


def _simulated(seed: int = 4, iterations: int = T):
    problem = cp.problems.make(SPEC["name"], **SPEC["params"])
    return cp.simulate(problem, "marina", compressor="cq", iterations=iterations, seed=seed)


def _stopped_after(message: str, rank: int) -> float:
    """The seconds a rank waited in its failed collective, from its report."""
    match = re.search(rf"rank {rank}: DistributedError: rank {rank}: .*? failed after ([0-9.]+) s", message)
    assert match, message
    return float(match.group(1))


def test_a_killed_rank_stops_the_other_naming_it_and_the_same_job_resumes(tmp_path):
    job = _job(tmp_path)
    start = time.monotonic()
    with pytest.raises(DistributedError) as info:
        launch([job], processes=2, start_method="fork", timeout=TIMEOUT, env={ENV: "exit@1:7"})
    message = str(info.value)
    assert f"rank 1: died without a report (exit code {EXIT_CODE})" in message
    assert "rank 1 died (its process" in message  # rank 0 names the culprit itself ...
    assert _stopped_after(message, 0) <= TIMEOUT   # ... within the timeout (it was not killed)
    assert time.monotonic() - start < 3 * TIMEOUT

    ref = _simulated()
    partial = read_metrics(tmp_path / "metrics.csv")  # the rows written so far stay readable
    assert partial["iteration"] == list(range(8))
    for name in ("bits_up", "bits_down", "grad_norm_sq", "loss", "dist_sq"):
        assert partial[name] == getattr(ref, name)[:8].tolist(), name

    run = launch([job], processes=2, start_method="fork", timeout=TIMEOUT)[0]
    assert run.resumed_from == 6  # the last checkpoint before the crash
    got = run.history
    assert got.status == ref.status and torch.equal(got.x, ref.x)
    for name in ("iterations", "grad_norm_sq", "loss", "bits_up", "bits_down"):
        assert torch.equal(getattr(got, name), getattr(ref, name)), name
    assert torch.equal(run.ledger.total("up"), ref.bits_up_per_client)
    assert read_metrics(tmp_path / "metrics.csv")["grad_norm_sq"] == ref.grad_norm_sq.tolist()

    again = launch([job], processes=2, start_method="fork", timeout=TIMEOUT)[0]  # finished: nothing recomputed
    assert again.resumed_from == T and torch.equal(again.history.x, ref.x)


def test_a_hung_rank_is_named_after_the_timeout():
    timeout = 2.0
    with pytest.raises(DistributedError) as info:
        launch([_job()], processes=2, start_method="fork", timeout=timeout, grace=0.5, env={ENV: "hang@1:4"})
    message = str(info.value)
    assert "rank 1 hangs: it is alive but never reached this collective" in message
    assert timeout <= _stopped_after(message, 0) <= 1.5 * timeout
    assert "rank 1: still running" in message and "killed by the launcher" in message


@pytest.mark.parametrize("fault,culprit,words", [
    ("truncate@1:2", 1, "its layout needs exactly"),  # a payload one byte short: wrong length for the compressor
    ("garble@0:3", 0, "fail their CRC-32 check"),     # a byte flipped after framing
])
def test_a_damaged_payload_is_rejected_naming_its_sender(fault, culprit, words):
    with pytest.raises(PayloadError) as info:
        launch([_job()], processes=2, start_method="fork", timeout=TIMEOUT, env={ENV: fault})
    message = str(info.value)
    for rank in (0, 1):  # every replica rejects the same bytes, nobody waits
        assert f"rank {rank}: PayloadError: rank {rank}: uplink of round {fault[-1]}" in message
    assert f"from rank {culprit}" in message and words in message


def test_a_checkpoint_of_another_run_or_layout_is_refused(tmp_path):
    job = _job(tmp_path, iterations=4)
    launch([job], processes=1, start_method="fork", timeout=TIMEOUT)
    with pytest.raises(ConfigError, match="checkpoints of another run"):
        launch([_job(tmp_path, iterations=4, seed=5)], processes=1, start_method="fork", timeout=TIMEOUT)
    with pytest.raises(ConfigError, match="same number of processes"):
        launch([job], processes=2, start_method="fork", timeout=TIMEOUT)


def test_more_processes_than_clients_is_a_config_error():
    tiny = {"name": "quadratic", "params": {"n_clients": 1, "dim": 4}}
    with pytest.raises(ConfigError, match="1 clients cannot be sharded over 2 processes"):
        launch([_job(problem=tiny)], processes=2, start_method="fork", timeout=TIMEOUT)
