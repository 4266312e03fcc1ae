"""Run a reproduction: its panels through the experiments runner (resumable), then the module's
``compute`` (if any), the figure, the claim check, ``report.md``, ``claims.json``."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from types import ModuleType

from commpress._checks import check_output_dir
from commpress.errors import ConfigError
from commpress.experiments import store
from commpress.experiments.runner import run as run_sweep
from commpress.reproductions._figure import convergence_figure
from commpress.reproductions._report import write_claims, write_data, write_report
from commpress.reproductions._results import Claim, Panel, Results
from commpress.reproductions._spec import load_spec


def module_name(name: str) -> str:
    """``cq-quadratic`` -> ``commpress.reproductions.cq_quadratic``."""
    return f"commpress.reproductions.{name.replace('-', '_')}"


def load_module(name: str) -> ModuleType:
    module = importlib.import_module(module_name(name))
    if not callable(getattr(module, "check", None)):
        raise ConfigError(f"reproduction {name!r}: module {module.__name__} has no check(results) function.")
    return module


def default_out(name: str, quick: bool) -> Path:
    return Path("runs") / "reproduce" / (name + ("-quick" if quick else ""))


def run(name: str, *, quick: bool = False, out: str | Path | None = None, jobs: int = 1,
        quiet: bool = False) -> tuple[Results, list[Claim]]:
    """Run reproduction ``name`` into ``out`` (default ``runs/reproduce/NAME[-quick]``); an existing
    folder is resumed (finished runs are kept). Returns the results and the claim verdicts."""
    from commpress.reproductions import names

    if name not in names():
        import difflib

        close = difflib.get_close_matches(name, names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown reproduction {name!r}.{hint} Known: {', '.join(names())} "
                          "(commpress list reproductions).")
    start = time.perf_counter()
    spec = load_spec(name, quick=quick)
    module = load_module(name)
    out_dir = Path(out) if out is not None else default_out(name, quick)
    check_output_dir(out_dir)  # a bad --out fails here, before any run
    store.atomic_write(out_dir / "reproduction.json", store.dump_json(spec.model_dump()))
    results = Results(name=name, spec=spec, out=out_dir, quick=quick, jobs=jobs, quiet=quiet)
    configs = spec.panel_configs()
    for k, (panel, config) in enumerate(configs, 1):
        if not quiet:
            print(f"[{name}] panel {k}/{len(configs)}: {panel.label or panel.name}", file=sys.stderr)
        sweep = run_sweep(config, out=out_dir / "panels" / panel.name, jobs=jobs, quiet=quiet, plots=False)
        results.panels[panel.name] = Panel(panel.name, panel.label, config, sweep.summary, sweep.out, sweep.runs)
        results.computed += sweep.computed
        results.resumed += sweep.resumed
    compute = getattr(module, "compute", None)
    if callable(compute):
        compute(results)
    figure = getattr(module, "figure", None)
    if callable(figure):
        figures = figure(results, out_dir / "figure.png")
        figures = [figures] if isinstance(figures, (str, Path)) else list(figures)
    elif results.panels:
        figures = [convergence_figure(results, out_dir / "figure.png")]
    else:
        figures = []
    claims = list(module.check(results))
    for c in claims:
        if not isinstance(c, Claim):
            raise ConfigError(f"reproduction {name!r}: check() must return Claim objects; got {type(c).__name__}.")
    results.elapsed = time.perf_counter() - start
    if results.data:
        write_data(out_dir / "data.json", results.data)
    write_claims(out_dir / "claims.json", claims)
    extra = getattr(module, "report_extra", None)
    write_report(results, claims, figures, out_dir / "report.md",
                 extra=extra(results) if callable(extra) else "")
    return results, claims
