"""Experiments: configs, sweeps, the runner and its results store, reports, plots, DME.

>>> import commpress as cp
>>> result = cp.run("sweep.toml", out="runs/sweep")   # or cp.run() for the built-in main experiment
>>> print(result.table)
"""

from commpress.experiments.config import Config, Method, check, load_config, methods
from commpress.experiments.plots import plot_dirs, plot_sweep
from commpress.experiments.runner import RunOutput, SweepResult, run, simulate_run
from commpress.experiments.sweep import RunSpec, expand

__all__ = [
    "Config",
    "Method",
    "RunOutput",
    "RunSpec",
    "SweepResult",
    "check",
    "expand",
    "load_config",
    "methods",
    "plot_dirs",
    "plot_sweep",
    "run",
    "simulate_run",
]
