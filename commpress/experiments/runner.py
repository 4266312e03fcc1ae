"""Run a sweep: every run written to the store as soon as it finishes, resumable, in parallel.

>>> result = cp.run("sweep.toml", out="runs/sweep", jobs=2)
>>> print(result.table)                      # per method: best multiplier, bits to the target
>>> result.summary["methods"]["MARINA + CQ"]["bits_to_target"]

Resuming: running the same sweep again (same command) verifies every run folder of the output
folder (``store.check_run``: done marker present, checksums match), keeps the complete ones and
redoes the others, so a sweep stopped by Ctrl-C, SIGKILL or a crash loses no finished run and
redoes none. Each run is computed and stored by the process that runs it (a worker with
``--jobs N``), so a finished run is on disk even if the parent dies. Results do not depend on
``jobs``: a run's randomness comes from its seed only and every run uses one torch thread.
Runs are stored under their id, so one output folder can hold the runs of several configs (a
changed config reuses the runs it shares with the old one); the summary covers the current
config's runs only.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from commpress._checks import check_output_dir
from commpress.errors import ConfigError
from commpress.experiments import store
from commpress.experiments._toml import dumps as toml_dumps
from commpress.experiments.config import Config, check, compressor_arg, load_config, methods, resolved_dict
from commpress.experiments.report import format_table, run_stats, summarize, title
from commpress.experiments.sweep import RunSpec, expand


@dataclass
class RunOutput:
    """What executing one run gives: the metrics columns (see ``store.COLUMNS``) and facts
    (``status``, ``stepsize``, ``f_star``, ``params``)."""

    columns: dict[str, list]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepResult:
    """A finished sweep: its folder, summary (as in ``summary.json``), table and plots."""

    out: Path
    summary: dict[str, Any]
    table: str
    plots: list[Path]
    runs: dict[str, dict[str, Any]]
    resumed: int = 0
    computed: int = 0

    def __str__(self) -> str:
        return self.table


# ----------------------------------------------------------------------------- one run
@functools.lru_cache(maxsize=4)
def _problem(blob: str):
    from commpress import problems

    data = json.loads(blob)
    return problems.make(data["name"], **data["params"])


def simulate_run(spec: RunSpec, device: str | None = None) -> RunOutput:
    """The default way to execute a run: :func:`commpress.simulate` (on ``device``: None or
    ``"cpu"``, ``"cuda"``, ``"cuda:<k>"``; see :func:`run`)."""
    from commpress.simulate import simulate

    problem = _problem(json.dumps(spec.problem, sort_keys=True))
    if device is not None:
        problem = _problem_on(problem, device)
    hist = simulate(
        problem, spec.algorithm, compressor=compressor_arg(spec.compressor), iterations=spec.iterations,
        seed=spec.seed, stepsize=spec.stepsize, stepsize_multiplier=spec.stepsize_multiplier, target=spec.target,
        bits_budget=spec.bits_budget, downlink_compressor=compressor_arg(spec.downlink_compressor),
        record_every=spec.record_every, **spec.params,
    )
    columns = {
        "iteration": hist.iterations.tolist(), "bits_up": hist.bits_up.tolist(), "bits_down": hist.bits_down.tolist(),
        "grad_norm_sq": hist.grad_norm_sq.tolist(), "loss": hist.loss.tolist(), "wall_time": hist.wall_time.tolist(),
    }
    if hist.dist_sq is not None:
        columns["dist_sq"] = hist.dist_sq.tolist()
    return RunOutput(columns, {"status": hist.status, "stepsize": float(hist.stepsize), "f_star": hist.f_star,
                               "params": _plain(hist.params)})


_ON_DEVICE: dict[tuple[int, str], Any] = {}


def _problem_on(problem: Any, device: str):
    """``problem`` moved to ``device``, kept for the next runs of the sweep (one copy per device)."""
    key = (id(problem), device)
    if key not in _ON_DEVICE:
        _ON_DEVICE.clear()  # one moved problem at a time (a GPU's memory)
        _ON_DEVICE[key] = (problem, problem.to(device))  # the source is kept alive: its id stays unique
    return _ON_DEVICE[key][1]


def _plain(v: Any) -> Any:
    """JSON-able copy (tensors to lists, unknown objects to their repr)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if hasattr(v, "tolist"):
        return v.tolist()
    return repr(v)


def execute(spec: RunSpec, run_dir: str, runner: Callable[[RunSpec], RunOutput]) -> str:
    """Run ``spec`` and store it in ``run_dir`` (files, then ``done.json``); returns the run id."""
    out = runner(spec)
    stats = run_stats(out.columns, spec.target)
    info = dict(out.info)
    summary = {"run_id": spec.run_id, "label": spec.label, "algorithm": spec.algorithm,
               "compressor": spec.compressor, "seed": spec.seed, "stepsize_multiplier": spec.stepsize_multiplier,
               "status": info.pop("status", "unknown"), "stepsize": info.pop("stepsize", None), **stats,
               "wall_time": float(out.columns["wall_time"][-1]) if out.columns.get("wall_time") else None, **info}
    store.write_run(Path(run_dir), spec.as_dict(), out.columns, summary)
    return spec.run_id


def _init_worker() -> None:
    """Worker setup: one torch thread; Ctrl-C is the parent's to handle (a worker finishes and
    stores the run it is computing, then the pool stops)."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


class _OneThread:
    """torch uses one thread inside (results independent of --jobs); restores the count after."""

    def __enter__(self):
        import torch

        self.saved = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.saved)


# ----------------------------------------------------------------------------- a sweep
def default_out(config: Config) -> Path:
    return Path("runs") / (config.name or "sweep")


def run(
    config: Any = None,
    *,
    out: str | Path | None = None,
    jobs: int = 1,
    quiet: bool = False,
    plots: bool = True,
    runner: Callable[[RunSpec], RunOutput] | None = None,
    device: str | None = None,
) -> SweepResult:
    """Run a sweep (a config path, dict or :class:`Config`; None: the built-in main experiment).

    Args:
        out: output folder (default ``runs/<config name>``); an existing one is resumed.
        jobs: worker processes (spawned; one torch thread each). Same results for any value.
        quiet: no progress bar or messages (CI).
        plots: write the PNGs of ``[plot]`` after the sweep.
        runner: executes one run (default :func:`simulate_run`); must be picklable for ``jobs > 1``.
        device: where the runs compute, ``"cpu"``, ``"cuda"`` or ``"cuda:<k>"``; None (default) takes
            the config's ``[run] device`` (absent: the CPU). Not part of the run ids: a sweep resumed
            on another device keeps its finished runs. Applies to the default runner only.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1; got jobs={jobs!r}.")
    cfg = load_config(config)
    if device is not None:
        from commpress._device import resolve_device

        resolve_device(device, "device")  # before any work: a bad --device is one line
    device = device if device is not None else cfg.run.device
    check(cfg)
    method_list = methods(cfg)
    specs = expand(cfg, method_list)
    out_dir = check_output_dir(Path(out) if out is not None else default_out(cfg))  # before any work
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    resolved = resolved_dict(cfg)
    store.atomic_write(out_dir / "config.toml", toml_dumps(resolved))
    store.atomic_write(out_dir / "config.json", store.dump_json(resolved))

    unique = list({s.run_id: s for s in specs}.values())
    store.clean_stale(runs_dir)
    pending = []
    for s in unique:
        reason = store.check_run(runs_dir / s.run_id, s.run_id)
        if reason is not None:
            if reason != "not run yet" and not quiet:
                print(f"redoing run {s.run_id} ({s.label}, γ×{s.stepsize_multiplier:g}, seed {s.seed}): {reason}",
                      file=sys.stderr)
            store.clear_run(runs_dir / s.run_id)
            pending.append(s)
    done = len(unique) - len(pending)
    if done and not quiet:
        print(f"resuming {out_dir}: {done} of {len(unique)} runs already done", file=sys.stderr)
    if runner is None:
        runner = simulate_run if device is None else functools.partial(simulate_run, device=device)
    _execute_all(pending, runs_dir, runner, jobs, quiet, total=len(unique), initial=done,
                 desc=cfg.name or "sweep")

    runs = {s.run_id: store.load_run(runs_dir / s.run_id) for s in unique}
    summary = summarize(cfg.name or "sweep", cfg.description, cfg.run, resolved["problem"], method_list, specs, runs)
    table = format_table(summary)
    store.atomic_write(out_dir / "summary.json", store.dump_json(summary))
    store.atomic_write(out_dir / "summary.txt", title(summary) + "\n" + table + "\n")
    written: list[Path] = []
    if plots:
        from commpress.experiments.plots import plot_sweep

        for x in cfg.plot.x:
            written.append(plot_sweep(out_dir, x=x, y=cfg.plot.y))
    return SweepResult(out_dir, summary, table, written, runs, resumed=done, computed=len(pending))


def _execute_all(specs: list[RunSpec], runs_dir: Path, runner, jobs: int, quiet: bool, *, total: int, initial: int,
                 desc: str) -> None:
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, desc=desc, unit="run", disable=quiet, leave=False, file=sys.stderr)
    try:
        if jobs == 1 or len(specs) <= 1:
            with _OneThread():
                for s in specs:
                    bar.set_postfix_str(f"{s.label} γ×{s.stepsize_multiplier:g}", refresh=False)
                    execute(s, str(runs_dir / s.run_id), runner)
                    bar.update()
            return
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(specs)), mp_context=ctx, initializer=_init_worker)
        futures: dict = {}
        try:
            for s in specs:
                futures[pool.submit(execute, s, str(runs_dir / s.run_id), runner)] = s
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()  # a failed run stops the sweep with its error (finished runs stay stored)
                    bar.update()
        except BaseException:
            # Cancel what has not started ourselves: the pool's own cancel_futures is lost if the
            # executor is garbage-collected before its manager thread wakes up. Runs in progress
            # finish and are stored (the workers ignore Ctrl-C).
            for f in futures:
                f.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    finally:
        bar.close()


__all__ = ["RunOutput", "SweepResult", "default_out", "execute", "run", "simulate_run"]
