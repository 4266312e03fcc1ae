"""Real distributed execution: the simulator's methods, unchanged, on k torch.distributed processes.

>>> from commpress.distributed import run_distributed
>>> hist = run_distributed({"name": "quadratic", "n_clients": 8, "dim": 64}, "marina", compressor="cq",
...                        iterations=200, seed=0, processes=4)
>>> problem = cp.problems.make("quadratic", n_clients=8, dim=64)
>>> torch.equal(hist.x, cp.simulate(problem, "marina", compressor="cq", iterations=200, seed=0).x)
True

Every rank builds the problem and the method from the same plain-data :class:`Job`, holds a
contiguous block of clients (:class:`~commpress.network.dist.TorchDistNetwork`), and sends its
clients' packed payloads through gloo all-gathers (bytes, never pickles); every rank is a replica
of the server. The run's randomness is keyed by the seed, the round and the client index, so 1,
2 or k processes give the simulator's iterates and its bit ledger.

Ways to run:

- :func:`run_distributed` / :func:`launch`: start k processes on this machine (gloo on
  127.0.0.1 unless ``master_addr`` says otherwise), wait, return rank 0's outcome;
- ``commpress run CONFIG --processes K`` (the same launcher, for a sweep), or under torchrun:
  ``torchrun --nproc_per_node=K -m commpress run CONFIG --backend dist``;
- in processes started by other means (torchrun, a cluster scheduler) with torchrun's
  environment variables: ``session = Session.from_env(timeout)``, ``execute(job, session)`` on
  every rank, ``session.close()``.

Data: no built-in problem can load only some clients' data yet, so every rank builds the whole
problem from its spec (seeded generators; LibSVM files read whole) and asks the oracles for its
own clients (``clients=``). Most built-in oracles compute every row and select, so that a subset's
rows are bit-identical to the simulator's: a rank pays the memory and gradient cost of all
clients, and the processes buy real communication, not speed (the tridiagonal quadratics, whose
rows are elementwise, compute only the rank's rows). Rank 0 computes the recorded
metrics on its copy (no traffic).

Faults: every collective has a timeout (``timeout``, seconds); a rank that dies or hangs makes
the others stop with a :class:`~commpress.errors.DistributedError` naming it, a damaged payload
raises :class:`~commpress.errors.PayloadError` naming its sender. Rank 0 appends every recorded
round to ``metrics_csv`` (flushed), all ranks checkpoint every ``checkpoint_every`` rounds into
``checkpoint_dir``, and the same call resumes from the last checkpoint with the same final iterate.
"""

from __future__ import annotations

from typing import Any

import torch

from commpress.distributed._driver import DistributedRun, execute
from commpress.distributed._job import Job
from commpress.distributed._launch import START_METHODS, launch, launch_command
from commpress.distributed._session import DEFAULT_TIMEOUT, Session
from commpress.simulate import History


def run_distributed(
    problem: Any,
    algorithm: str,
    compressor: Any = None,
    iterations: int = 1000,
    seed: int = 0,
    stepsize: float | None = None,
    stepsize_multiplier: float = 1.0,
    target: float | None = None,
    bits_budget: float | None = None,
    downlink_compressor: Any = None,
    record_every: int = 1,
    *,
    processes: int = 2,
    master_addr: str = "127.0.0.1",
    timeout: float = DEFAULT_TIMEOUT,
    checkpoint_dir: str | None = None,
    checkpoint_every: int | None = None,
    metrics_csv: str | None = None,
    keep_rounds: bool = False,
    start_method: str = "spawn",
    device: str | None = None,
    **algorithm_params: Any,
) -> History:
    """:func:`commpress.simulate` on ``processes`` gloo processes of this machine; rank 0's :class:`History`.

    Args:
        problem: a problem spec, rebuilt on every rank: a registered name,
            ``{"name": "quadratic", "params": {...}}`` or ``{"name": "quadratic", "n_clients": 8, ...}``.
        algorithm: as in :func:`commpress.simulate`, and so are ``compressor``, ``iterations``,
            ``seed``, ``stepsize``, ``stepsize_multiplier``, ``target``, ``bits_budget``,
            ``downlink_compressor``, ``record_every`` and ``**algorithm_params`` (compressors as
            names or ``{"name": ..., **params}``; ``x0`` may be a tensor).
        processes: number of processes (ranks); each holds a contiguous block of the clients.
        master_addr: address of the rendezvous (127.0.0.1: nothing listens beyond this machine).
        timeout: seconds after which a collective that a dead or hung rank never joins fails.
        checkpoint_dir, checkpoint_every: checkpoint every this many rounds (and at the end); the
            same call resumes from the last checkpoint.
        metrics_csv: rank 0 appends one line per recorded round (flushed).
        keep_rounds: keep the per-round ledger breakdown (for :func:`launch`'s merged ledger).
        start_method: ``"spawn"`` (fresh interpreters) or ``"fork"`` (Linux, fast start).
        device: where every rank computes (the job's ``device``): None (the CPU), ``"cpu"``,
            ``"cuda"`` (rank r on ``cuda:{LOCAL_RANK}``, here ``cuda:r``) or ``"cuda:<k>"``.
    """
    params = {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in algorithm_params.items()}
    job = Job(problem=problem, algorithm=algorithm, compressor=compressor, downlink_compressor=downlink_compressor,
              iterations=iterations, seed=seed, stepsize=stepsize, stepsize_multiplier=stepsize_multiplier,
              target=target, bits_budget=bits_budget, record_every=record_every, params=params,
              keep_rounds=keep_rounds, checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
              checkpoint_every=checkpoint_every, metrics_csv=None if metrics_csv is None else str(metrics_csv),
              device=device)
    return launch([job], processes=processes, master_addr=master_addr, timeout=timeout,
                  start_method=start_method)[0].history


__all__ = ["DEFAULT_TIMEOUT", "DistributedRun", "Job", "START_METHODS", "Session", "execute", "launch",
           "launch_command", "run_distributed"]
