"""A distributed run as plain, JSON-able data: what every rank needs to rebuild it alone."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from commpress.errors import ConfigError


def problem_spec(problem: Any) -> dict[str, Any]:
    """``{"name": ..., "params": {...}}`` from a name, ``{"name", "params"}`` or a flat ``{"name", **params}``."""
    if isinstance(problem, str):
        return {"name": problem, "params": {}}
    if isinstance(problem, dict) and "name" in problem:
        if set(problem) == {"name", "params"} and isinstance(problem["params"], dict):
            return {"name": problem["name"], "params": dict(problem["params"])}
        return {"name": problem["name"], "params": {k: v for k, v in problem.items() if k != "name"}}
    raise ConfigError(
        "a distributed run rebuilds its problem on every rank from a spec: pass a registered name or "
        "{'name': 'quadratic', 'params': {...}} (or a flat {'name': 'quadratic', 'n_clients': 8, ...}); "
        f"got {type(problem).__name__}. Problem objects cannot be sent to other processes."
    )


@dataclass(frozen=True)
class Job:
    """One run: the arguments of :func:`commpress.simulate` as JSON-able values, plus where the
    distributed driver keeps its checkpoints and incremental metrics.

    ``problem`` is ``{"name": ..., "params": {...}}``; ``compressor`` / ``downlink_compressor`` a
    registered name, ``{"name": ..., **params}`` or None; ``params`` the algorithm's own settings.
    ``participation`` is :func:`commpress.simulate`'s (a sampler spec: ``"nice:4"``, a dict, or None).
    ``checkpoint_dir`` (every ``checkpoint_every`` rounds, and at the end) and ``metrics_csv``
    (rank 0 appends one line per recorded round, flushed) are optional.
    ``device``: where every rank computes: None (default, the CPU), ``"cpu"``, ``"cuda"`` (under
    torchrun each rank takes ``cuda:{LOCAL_RANK}``, one GPU per rank of a machine) or
    ``"cuda:<k>"`` (every rank that one). The collectives stay on gloo: payload bytes and
    control values cross through the CPU, as on a CPU-only run.
    """

    problem: dict[str, Any]
    algorithm: str
    compressor: Any = None
    downlink_compressor: Any = None
    iterations: int = 1000
    seed: int = 0
    stepsize: float | None = None
    stepsize_multiplier: float = 1.0
    target: float | None = None
    bits_budget: float | None = None
    record_every: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    keep_rounds: bool = False
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    metrics_csv: str | None = None
    participation: Any = None
    device: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "problem", problem_spec(self.problem))
        if self.device is not None and not isinstance(self.device, str):
            raise ConfigError(
                f"a distributed run needs device as a string (\"cpu\", \"cuda\", \"cuda:<k>\") or None; got "
                f"{type(self.device).__name__} {self.device!r}."
            )
        if not isinstance(self.algorithm, str):
            raise ConfigError(f"a distributed run needs the algorithm's registered name; got {type(self.algorithm).__name__}.")
        for name in ("compressor", "downlink_compressor"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, dict)):
                raise ConfigError(
                    f"a distributed run needs {name} as a registered name or {{'name': ..., **params}}; "
                    f"got {type(value).__name__}. Compressor objects cannot be sent to other processes."
                )
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 0:
            raise ConfigError(f"iterations must be an integer >= 0; got iterations={self.iterations!r}.")
        every = self.checkpoint_every
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ConfigError(f"checkpoint_every must be an integer >= 1 (rounds) or None; got {every!r}.")
        if every is not None and self.checkpoint_dir is None:
            raise ConfigError("checkpoint_every needs checkpoint_dir (where the checkpoints go).")
        try:
            self.to_json()
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"every setting of a distributed run must be plain JSON data (numbers, strings, lists, dicts) so "
                f"that each rank can rebuild it: {err}. Pass tensors as lists (e.g. x0=x0.tolist())."
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Job":
        return cls(**data)

    def fingerprint(self) -> str:
        """A hash of what the run computes (not of where it writes)."""
        data = self.to_dict()
        for key in ("checkpoint_dir", "checkpoint_every", "metrics_csv"):
            data.pop(key)
        for key in ("participation", "device"):  # the fingerprints of jobs written before these fields existed
            if data.get(key) is None:
                data.pop(key, None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
