"""What every rank runs for one job: :func:`commpress.simulate`'s loop over a TorchDistNetwork.

The loop and its stop rules are the simulator's (:mod:`commpress._loop`: same statuses, same
recording rounds, same blow-up rule), and so is its :class:`~commpress.simulate.History`; what
differs:

- the network is a :class:`~commpress.network.dist.TorchDistNetwork`: this rank holds a block
  of clients, messages cross the wire;
- the problem is built on every rank from its spec. No built-in problem can load only some
  clients' data yet, so every rank builds the whole problem (generators are seeded, LibSVM files
  are read whole) and asks the oracles for its own clients only (``clients=``). Most built-in
  oracles compute every row and select, so a rank pays the full gradient cost (the price of
  bit-identical rows); the tridiagonal quadratics compute only the rank's rows (elementwise per
  row, hence bit-identical);
- the metrics are computed by rank 0 alone from its copy of the problem (``∇f(x)``, ``f(x)``:
  no traffic) and its decision (target reached, diverged) is shared with one small all-gather,
  so every rank stops in the same round; the bits per client come from the global totals
  every rank knows;
- rank 0 appends each recorded round to ``job.metrics_csv`` (flushed), and every
  ``job.checkpoint_every`` rounds all ranks checkpoint (:mod:`._checkpoint`); the same job
  started again resumes from the last checkpoint and ends with the same iterates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from commpress import _loop, problems
from commpress._device import rank_device
from commpress._checks import check_float
from commpress.algorithms import make, parameters
from commpress.algorithms._participation import participation_params
from commpress.distributed._checkpoint import Checkpoints
from commpress.distributed._faults import Faults
from commpress.distributed._job import Job
from commpress.distributed._metrics import COLUMNS, MetricsCSV
from commpress.errors import ConfigError
from commpress.network import Ledger
from commpress.network.dist import TorchDistNetwork
from commpress.simulate import History, history_of


@dataclass(frozen=True)
class DistributedRun:
    """The outcome of one job: the run's :class:`~commpress.simulate.History` (rank 0's curve),
    the merged :class:`~commpress.network.Ledger` of all clients, the number of processes, the
    round the run resumed from (None: it started afresh), and the bytes rank 0 handed to
    collectives by purpose (``TorchDistNetwork.wire``: headers, payloads, dense, scale, control)."""

    history: History
    ledger: Ledger
    world_size: int
    resumed_from: int | None = None
    wire: dict[str, int] | None = None


def _number(name: str, value: Any, *, positive: bool) -> float:
    return check_float(name, value, "a distributed run", low=0.0, low_open=positive, finite=True)


def _build(job: Job, problem, network):
    """The algorithm, as :func:`commpress.simulate` builds it (same defaults, same stepsize)."""
    mult = _number("stepsize_multiplier", job.stepsize_multiplier, positive=True)
    params = participation_params(job.algorithm, job.participation, dict(job.params), "a distributed run")
    x0 = params.pop("x0", None)
    if x0 is not None:
        x0 = torch.as_tensor(x0, dtype=problem.dtype)
    if "horizon" in parameters(job.algorithm) and params.get("horizon") is None:
        params["horizon"] = job.iterations
    given = None if job.stepsize is None else _number("stepsize", job.stepsize, positive=True) * mult
    algo = make(job.algorithm, problem, network, compressor=job.compressor, gamma=given, seed=job.seed,
                downlink_compressor=job.downlink_compressor, **params)
    if job.stepsize is None:
        algo = algo.with_gamma(algo.gamma * mult)
    return algo, mult, x0, "theory" if job.stepsize is None else "given"


class _Recorder:
    """Rank 0's curve (and CSV); every rank gets rank 0's ||∇f||² through one all-gather."""

    def __init__(self, problem, network: TorchDistNetwork, csv_path: str | None) -> None:
        self.problem, self.net = problem, network
        self.lead = network.rank == 0
        try:
            opt = problem.optimum()
        except NotImplementedError:
            opt = None
        self.f_star, self.x_star = (None, None) if opt is None else (float(opt[0]), opt[1])
        names = list(COLUMNS) + (["dist_sq"] if self.x_star is not None else [])
        self.cols: dict[str, list[float]] = {c: [] for c in names}
        self.csv = MetricsCSV(csv_path, names) if self.lead and csv_path else None

    def restore(self, cols: dict[str, list[float]] | None) -> None:
        if self.lead and cols is not None:
            self.cols = {c: list(cols[c]) for c in self.cols}
        if self.csv is not None:
            self.csv.reset(self.cols)

    def record(self, t: int, x: torch.Tensor, elapsed: float) -> float:
        g2 = 0.0
        if self.lead:
            g = self.problem.grad(x)
            g2 = float(g.dot(g))
            row = {"iteration": t, "bits_up": self.net.mean_bits("up"), "bits_down": self.net.mean_bits("down"),
                   "grad_norm_sq": g2, "loss": self.problem.loss(x), "wall_time": elapsed}
            if self.x_star is not None:
                diff = x - self.x_star
                row["dist_sq"] = float(diff.dot(diff))
            for c, v in row.items():
                self.cols[c].append(v)
            if self.csv is not None:
                self.csv.append(row)
        shared = self.net.gather(torch.tensor([g2], dtype=torch.float64), "metrics decision")
        return float(shared[0, 0])


def execute(job: Job, session: Any, *, faults: Faults | None = None) -> DistributedRun:
    """Run ``job`` on this rank (every rank of ``session`` calls it with the same job)."""
    device = rank_device(job.device, "a distributed run")  # "cuda": cuda:{LOCAL_RANK}
    problem = problems.make(job.problem["name"], device=device, **job.problem["params"])
    network = TorchDistNetwork(int(problem.n), keep_rounds=job.keep_rounds, watchdog=session.watchdog)
    if faults is None:
        faults = Faults.from_env(network.rank)
    network._fault = faults
    algo, mult, x0, source = _build(job, problem, network)
    target = None if job.target is None else _number("target", job.target, positive=False)
    budget = None if job.bits_budget is None else _number("bits_budget", job.bits_budget, positive=True)
    every = int(job.record_every)
    if every < 1:
        raise ConfigError(f"record_every must be >= 1; got {job.record_every!r}.")
    rec = _Recorder(problem, network, job.metrics_csv)
    ckpt = Checkpoints(job.checkpoint_dir, job.fingerprint(), network) if job.checkpoint_dir else None
    saved = ckpt.resume() if ckpt is not None else None

    def record(t: int, state, x: torch.Tensor, elapsed: float) -> float:
        return rec.record(t, x, elapsed)

    def bits_up() -> float:
        return network.mean_bits("up")

    resumed_from = None
    if saved is not None:
        resumed_from = int(saved["round"])
        network.load_state_dict(saved["network"])
        p = _loop.Progress(saved["state"], saved["x"], resumed_from, saved["status"], float(saved["elapsed"]),
                           float(saved["g2_0"]))
        rec.restore(saved.get("columns"))
        final = bool(saved["final"])
    else:
        rec.restore(None)
        final = False
        session.watchdog.round = -1
        p = _loop.start(algo, problem, x0, record, target=target, budget=budget, bits_up=bits_up)

    def checkpoint(p: _loop.Progress, is_final: bool) -> None:
        ckpt.save(p.t, {"state": p.state, "x": p.x, "status": p.status, "final": is_final, "elapsed": p.elapsed,
                        "g2_0": p.g2_0, "network": network.state_dict(),
                        "columns": rec.cols if network.rank == 0 else None})

    def before_round(t: int) -> None:
        if faults is not None:
            faults.before_round(t)
        session.watchdog.round = t

    def after_round(p: _loop.Progress) -> None:
        if ckpt is not None and job.checkpoint_every and p.t % job.checkpoint_every == 0 and p.t < job.iterations:
            checkpoint(p, False)

    if not final:
        p = _loop.run(algo, p, record, iterations=job.iterations, every=every, target=target, budget=budget,
                      bits_up=bits_up, before_round=before_round, after_round=after_round)
    if ckpt is not None and not final and p.state is not None:
        checkpoint(p, True)
    x, status = p.x, p.status
    if rec.csv is not None:
        rec.csv.close()
    ledger = network.merged_ledger()
    history = history_of(problem, algo, rec.cols, x, status, rec.f_star, ledger, source=source, mult=mult,
                         iterations=job.iterations, target=job.target, bits_budget=job.bits_budget,
                         record_every=job.record_every, x0=x0, network=network.describe(),
                         device=str(problem.device))
    return DistributedRun(history, ledger, network.world, resumed_from, dict(network.wire))
