"""A sweep as a list of runs, each with a stable id (a hash of its resolved config).

``expand(config)`` -> ``[RunSpec, ...]``: methods x stepsize multipliers x seeds, in that order.
A run's id depends on what it computes (problem, method, stepsize, seed, stopping rules), not on
its label or on the sweep it belongs to, so two sweeps that share a run share its results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from commpress.experiments.config import Config, Method, methods


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, resolved; JSON-able."""

    problem: dict[str, Any]            # {"name": ..., "params": {...}}
    algorithm: str
    compressor: dict[str, Any] | None  # {"name": ..., **params} or None
    params: dict[str, Any]             # algorithm parameters
    downlink_compressor: dict[str, Any] | None
    stepsize: float | None             # base stepsize (None: the theoretical one)
    stepsize_multiplier: float
    seed: int
    iterations: int
    bits_budget: float | None
    target: float | None
    record_every: int
    label: str = ""                    # not part of the id
    method_key: str = ""               # not part of the id

    def identity(self) -> dict[str, Any]:
        """What the run computes: the hashed part of the RunSpec."""
        out = asdict(self)
        out.pop("label")
        out.pop("method_key")
        return out

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        data = {k: v for k, v in data.items() if k != "run_id"}
        return cls(**data)


def expand(config: Config, method_list: list[Method] | None = None) -> list[RunSpec]:
    """Every run of the sweep: methods x stepsize multipliers x seeds."""
    run = config.run
    problem = {"name": config.problem.name, "params": dict(config.problem.params)}
    out = []
    for m in method_list if method_list is not None else methods(config):
        for mult in run.stepsize_multipliers:
            for seed in run.seeds:
                out.append(RunSpec(
                    problem=problem, algorithm=m.algorithm, compressor=m.compressor, params=dict(m.params),
                    downlink_compressor=m.downlink_compressor, stepsize=run.stepsize,
                    stepsize_multiplier=float(mult), seed=int(seed), iterations=run.iterations,
                    bits_budget=run.bits_budget, target=run.target, record_every=run.record_every,
                    label=m.label, method_key=m.key,
                ))
    return out
