"""A sweep on torch.distributed ranks: ``commpress run CONFIG --backend dist`` / ``--processes K``.

Every run of the sweep is spread over all ranks (each rank holds a block of the clients, see
:mod:`commpress.network.dist`); the runs go one after the other. Rank 0 drives the sweep with
the ordinary runner (:func:`commpress.experiments.runner.run`: resume, store, summary, plots):
before each run it sends the run's index in the sweep (one int64 all-gather; nothing pickled)
and the other ranks, which hold the same expanded sweep, join that run. Only rank 0 writes
results (the run folders, summary, plots); every rank writes its own checkpoint files.

While a run is computed, rank 0 appends each recorded round to
``OUT/checkpoints/<run id>/metrics.csv`` (flushed: readable if the run dies) and all ranks
checkpoint every ``checkpoint_every`` rounds into that folder. Running the same command again
skips the finished runs (the store verifies them) and resumes an interrupted run from its last
checkpoint: the final iterate is the one an uninterrupted run gives. ``OUT/checkpoints`` is
deleted when the whole sweep is stored. With several machines, ``OUT`` must be on a shared file
system.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from commpress._malloc import keep_freed_memory
from commpress.distributed import DEFAULT_TIMEOUT, Job, Session, execute
from commpress.distributed._worker import plain
from commpress.errors import DistributedError
from commpress.experiments.config import compressor_arg, load_config, methods
from commpress.experiments.runner import RunOutput, SweepResult, default_out
from commpress.experiments.runner import run as run_sweep_local
from commpress.experiments.sweep import RunSpec, expand

#: Default checkpoint interval of ``--backend dist`` (rounds).
DEFAULT_CHECKPOINT_EVERY = 100
CHECKPOINTS = "checkpoints"
_END, _ABORT = -1, -2


def job_of(spec: RunSpec, folder: Path | None, checkpoint_every: int | None, device: str | None = None) -> Job:
    """The distributed :class:`~commpress.distributed.Job` of a sweep's run (on ``device``, see ``Job.device``)."""
    return Job(problem=spec.problem, algorithm=spec.algorithm, compressor=compressor_arg(spec.compressor),
               downlink_compressor=compressor_arg(spec.downlink_compressor), iterations=spec.iterations,
               seed=spec.seed, stepsize=spec.stepsize, stepsize_multiplier=spec.stepsize_multiplier,
               target=spec.target, bits_budget=spec.bits_budget, record_every=spec.record_every,
               params=dict(spec.params),
               checkpoint_dir=None if folder is None else str(folder),
               checkpoint_every=checkpoint_every if folder is not None else None,
               metrics_csv=None if folder is None else str(folder / "metrics.csv"), device=device)


def output_of(history) -> RunOutput:
    """What the runner stores of a run, as :func:`commpress.experiments.runner.simulate_run` gives it."""
    columns = {
        "iteration": history.iterations.tolist(), "bits_up": history.bits_up.tolist(),
        "bits_down": history.bits_down.tolist(), "grad_norm_sq": history.grad_norm_sq.tolist(),
        "loss": history.loss.tolist(), "wall_time": history.wall_time.tolist(),
    }
    if history.dist_sq is not None:
        columns["dist_sq"] = history.dist_sq.tolist()
    return RunOutput(columns, {"status": history.status, "stepsize": float(history.stepsize),
                               "f_star": history.f_star, "params": plain(history.params)})


def run_sweep(config: Any = None, *, out: str | Path | None = None, quiet: bool = False, plots: bool = True,
              timeout: float = DEFAULT_TIMEOUT, checkpoint_every: int | None = DEFAULT_CHECKPOINT_EVERY,
              session: Session | None = None, device: str | None = None) -> SweepResult | None:
    """Run a sweep as one rank of a torch.distributed run (torchrun's environment).

    Every rank calls it with the same arguments; rank 0 returns the :class:`SweepResult`, the
    others None. ``checkpoint_every=None`` (or 0): no checkpoints. ``device``: None takes the
    config's ``[run] device``; ``"cuda"`` puts rank r on ``cuda:{LOCAL_RANK}`` (``Job.device``).
    """
    torch.set_num_threads(1)  # every replica computes the server's update identically (and like the simulator)
    keep_freed_memory()  # this process is a rank: reuse large buffers across rounds (commpress._malloc)
    own = session is None
    session = Session.from_env(timeout) if own else session
    every = checkpoint_every or None
    try:
        cfg = load_config(config)
        device = device if device is not None else cfg.run.device
        unique = list({s.run_id: s for s in expand(cfg, methods(cfg))}.values())
        out_dir = Path(out) if out is not None else default_out(cfg)
        result = _lead(cfg, unique, out_dir, quiet, plots, every, session, device) if session.rank == 0 \
            else _follow(unique, out_dir, every, session, device)
    except BaseException as err:
        session.fail(f"{type(err).__name__}: {err}")
        raise
    if own:
        session.close()
    return result


def _signal(session: Session, value: int) -> int:
    """Rank 0's next run index (or end/abort), received by every rank."""
    return int(session.gather(torch.tensor([value], dtype=torch.int64), "sweep control")[0, 0])


def _folder(out_dir: Path, spec: RunSpec, every: int | None) -> Path | None:
    return out_dir / CHECKPOINTS / spec.run_id if every else None


def _lead(cfg, unique: list[RunSpec], out_dir: Path, quiet: bool, plots: bool, every: int | None,
          session: Session, device: str | None = None) -> SweepResult:
    index = {s.run_id: i for i, s in enumerate(unique)}

    def runner(spec: RunSpec) -> RunOutput:
        _signal(session, index[spec.run_id])
        folder = _folder(out_dir, spec, every)
        run = execute(job_of(spec, folder, every, device), session)
        if run.resumed_from is not None and not quiet:
            print(f"run {spec.run_id} ({spec.label}) resumed from its checkpoint of round {run.resumed_from}",
                  file=sys.stderr)
        return output_of(run.history)

    try:
        result = run_sweep_local(cfg, out=out_dir, jobs=1, quiet=quiet, plots=plots, runner=runner)
    except DistributedError:
        raise  # the others failed (or will fail) in the same collective
    except BaseException:
        try:
            _signal(session, _ABORT)  # the others may be waiting for the next run: let them stop
        except Exception:
            pass
        raise
    _signal(session, _END)
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)  # every run of the sweep is stored now
    return result


def _follow(unique: list[RunSpec], out_dir: Path, every: int | None, session: Session,
            device: str | None = None) -> None:
    while True:
        i = _signal(session, 0)
        if i == _END:
            return None
        if i == _ABORT:
            raise DistributedError(f"rank {session.rank}: rank 0 stopped the sweep (see rank 0's error).")
        if not 0 <= i < len(unique):
            raise DistributedError(
                f"rank {session.rank}: rank 0 asked for run {i} of a sweep of {len(unique)} runs; the ranks do not "
                "hold the same config (give every rank the same CONFIG file)."
            )
        spec = unique[i]
        execute(job_of(spec, _folder(out_dir, spec, every), every, device), session)
