"""What every rank runs for one job: :func:`commpress.simulate`'s loop over a TorchDistNetwork.

The loop, its stop rules and its :class:`~commpress.simulate.History` are the simulator's
(same statuses, same recording rounds, same blow-up rule); what differs:

- the network is a :class:`~commpress.network.dist.TorchDistNetwork`: this rank holds a block
  of clients, messages cross the wire;
- the problem is built on every rank from its spec. No built-in problem can load only some
  clients' data yet, so every rank builds the whole problem (generators are seeded, LibSVM files
  are read whole) and asks the oracles for its own clients only (``clients=``); the built-in
  oracles compute every row and select, so a rank pays the full gradient cost (the price of
  bit-identical rows);
- the metrics are computed by rank 0 alone from its copy of the problem (``∇f(x)``, ``f(x)``:
  no traffic) and its decision (target reached, diverged) is shared with one small all-gather,
  so every rank stops in the same round; the bits per client come from the global totals
  every rank knows;
- rank 0 appends each recorded round to ``job.metrics_csv`` (flushed), and every
  ``job.checkpoint_every`` rounds all ranks checkpoint (:mod:`._checkpoint`); the same job
  started again resumes from the last checkpoint and ends with the same iterates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from commpress import problems
from commpress.algorithms import make, parameters
from commpress.distributed._checkpoint import Checkpoints
from commpress.distributed._faults import Faults
from commpress.distributed._job import Job
from commpress.distributed._metrics import COLUMNS, MetricsCSV
from commpress.errors import ConfigError, NonFiniteError
from commpress.network import Ledger
from commpress.network.dist import TorchDistNetwork
from commpress.simulate import BLOWUP_FACTOR, History


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
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"a distributed run needs a number {name}; got {name}={value!r}.") from None
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        raise ConfigError(f"a distributed run needs a finite {name} {'> 0' if positive else '>= 0'}; got {value!r}.")
    return v


def _build(job: Job, problem, network):
    """The algorithm, as :func:`commpress.simulate` builds it (same defaults, same stepsize)."""
    mult = _number("stepsize_multiplier", job.stepsize_multiplier, positive=True)
    params = dict(job.params)
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
    problem = problems.make(job.problem["name"], **job.problem["params"])
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

    status, elapsed, resumed_from = "max_iterations", 0.0, None
    if saved is not None:
        resumed_from = int(saved["round"])
        network.load_state_dict(saved["network"])
        state, x, t, status = saved["state"], saved["x"], resumed_from, saved["status"]
        elapsed, g2_0 = float(saved["elapsed"]), float(saved["g2_0"])
        rec.restore(saved.get("columns"))
        final = bool(saved["final"])
    else:
        rec.restore(None)
        final = False
        session.watchdog.round = -1
        start = time.perf_counter()
        try:
            state = algo.init(x0)
            x = algo.output(state)
        except NonFiniteError:
            state, x = None, None
        elapsed += time.perf_counter() - start
        t = 0
        if x is None or not _finite(x):
            status = "diverged"
            x = problem.x0() if x0 is None else x0
            g2_0 = math.inf
        else:
            g2_0 = rec.record(0, x, elapsed)
            if not math.isfinite(g2_0):
                status = "diverged"
            elif target is not None and g2_0 <= target:
                status = "target_reached"
            elif budget is not None and network.mean_bits("up") >= budget:
                status = "budget_exhausted"
    limit = BLOWUP_FACTOR * max(g2_0, 1e-300)

    def checkpoint(is_final: bool) -> None:
        ckpt.save(t, {"state": state, "x": x, "status": status, "final": is_final, "elapsed": elapsed, "g2_0": g2_0,
                      "network": network.state_dict(), "columns": rec.cols if network.rank == 0 else None})

    if status == "max_iterations" and not final:
        while t < job.iterations:
            if faults is not None:
                faults.before_round(t)
            session.watchdog.round = t
            start = time.perf_counter()
            try:
                new_state = algo.step(state)
                new_x = algo.output(new_state)
            except NonFiniteError:
                elapsed += time.perf_counter() - start
                status = "diverged"
                break
            elapsed += time.perf_counter() - start
            if not _finite(new_x):
                status = "diverged"
                break
            state, x, t = new_state, new_x, t + 1
            over_budget = budget is not None and network.mean_bits("up") >= budget
            if t % every == 0 or t == job.iterations or over_budget:
                g2 = rec.record(t, x, elapsed)
                if not math.isfinite(g2) or g2 > limit:
                    status = "diverged"
                    break
                if target is not None and g2 <= target:
                    status = "target_reached"
                    break
            if over_budget:
                status = "budget_exhausted"
                break
            if ckpt is not None and job.checkpoint_every and t % job.checkpoint_every == 0 and t < job.iterations:
                checkpoint(False)
    if ckpt is not None and not final and state is not None:
        checkpoint(True)
    if rec.csv is not None:
        rec.csv.close()
    ledger = network.merged_ledger()
    return DistributedRun(_history(job, problem, algo, network, rec, x, status, source, mult, ledger, x0),
                          ledger, network.world, resumed_from, dict(network.wire))


def _history(job: Job, problem, algo, network, rec: _Recorder, x, status, source, mult, ledger: Ledger, x0) -> History:
    c = rec.cols
    params = {
        "problem": problem.describe(),
        **algo.params(),
        "stepsize_source": source,
        "stepsize_multiplier": mult,
        "iterations": job.iterations,
        "target": job.target,
        "bits_budget": job.bits_budget,
        "record_every": job.record_every,
        "x0": "problem" if x0 is None else "given",
        "network": network.describe(),
    }
    f64 = torch.float64
    return History(
        grad_norm_sq=torch.tensor(c["grad_norm_sq"], dtype=f64),
        loss=torch.tensor(c["loss"], dtype=f64),
        bits_up=torch.tensor(c["bits_up"], dtype=f64),
        bits_down=torch.tensor(c["bits_down"], dtype=f64),
        iterations=torch.tensor(c["iteration"], dtype=torch.int64),
        wall_time=torch.tensor(c["wall_time"], dtype=f64),
        x=x.clone(),
        stepsize=algo.gamma,
        params=params,
        status=status,
        f_star=rec.f_star,
        dist_sq=None if rec.x_star is None else torch.tensor(c["dist_sq"], dtype=f64),
        bits_up_per_client=ledger.total("up"),
        bits_down_per_client=ledger.total("down"),
    )


def _finite(x: torch.Tensor) -> bool:
    return math.isfinite(float(x.sum()))
