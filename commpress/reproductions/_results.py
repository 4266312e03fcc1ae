"""What a claim check reads: the finished panels (sweeps) of a reproduction and their numbers.

``results.panel("s0").method("MARINA + CQ")`` is one method of one panel at its selected stepsize
multiplier, with the measurements a claim needs:

- ``bits_to_target``: mean uplink bits per client to reach the sweep's target (None if a seed
  did not reach it), the number the sweep selected the multiplier by;
- ``bits_to(level)``: the same for any level of :math:`\\|\\nabla f\\|^2` (first recorded point at or
  below it, mean over seeds; None if a seed never got there);
- ``value_at(bits)``: geometric mean over seeds of the last recorded value at or below ``bits``;
- ``final``: mean final :math:`\\|\\nabla f\\|^2`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commpress.errors import ConfigError


@dataclass(frozen=True)
class Claim:
    """One verdict: the claim as stated, whether it held, the measured numbers it rests on, and
    (optional) a note: the reading of why, where it did not hold."""

    claim: str
    held: bool
    numbers: dict[str, Any]
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"claim": self.claim, "held": bool(self.held), "numbers": _plain(self.numbers)}
        if self.note:
            out["note"] = self.note
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return v.item()
        except (ValueError, RuntimeError):
            return v.tolist()
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


@dataclass
class MethodResult:
    """One method of a panel at its selected stepsize multiplier (see the module docstring)."""

    label: str
    entry: dict[str, Any]            # the method's entry of the sweep's summary.json
    runs: list[dict[str, Any]]       # store.load_run of each seed's run (spec, summary, metrics)

    @property
    def multiplier(self) -> float:
        return float(self.entry["stepsize_multiplier"])

    @property
    def stepsize(self) -> float | None:
        v = self.entry.get("stepsize")
        return None if v is None else float(v)

    @property
    def p(self) -> float | None:
        params = self.runs[0]["summary"].get("params") or {}
        v = params.get("p")
        return None if v is None else float(v)

    @property
    def reached(self) -> bool:
        return bool(self.entry.get("reached_target"))

    @property
    def bits_to_target(self) -> float | None:
        v = self.entry.get("bits_to_target")
        return None if v is None else float(v)

    @property
    def final(self) -> float:
        return float(self.entry["final_grad_norm_sq"])

    @property
    def diverged(self) -> bool:
        return "diverged" in self.entry.get("status", [])

    def curves(self, x: str = "bits_up", y: str = "grad_norm_sq") -> list[tuple[list[float], list[float]]]:
        """Per seed: (x values, y values) of the recorded points."""
        return [(list(map(float, r["metrics"][x])), list(map(float, r["metrics"][y]))) for r in self.runs]

    def bits_to(self, level: float) -> float | None:
        """Mean over seeds of the uplink bits per client at the first recorded
        :math:`\\|\\nabla f\\|^2 \\le` ``level``; None if some seed never reached it."""
        found = []
        for xs, ys in self.curves():
            hit = next((b for b, g in zip(xs, ys) if g <= level), None)
            if hit is None:
                return None
            found.append(hit)
        return sum(found) / len(found)

    def value_at(self, bits: float) -> float:
        """Geometric mean over seeds of the last recorded :math:`\\|\\nabla f\\|^2` with at most
        ``bits`` uplink bits per client (inf for a diverged seed)."""
        logs = []
        for xs, ys in self.curves():
            vals = [g for b, g in zip(xs, ys) if b <= bits]
            v = vals[-1] if vals else ys[0]
            if not (math.isfinite(v) and v > 0):
                return math.inf
            logs.append(math.log(v))
        return math.exp(sum(logs) / len(logs))


@dataclass
class Panel:
    """One panel of a reproduction: a finished sweep (``out`` is its folder)."""

    name: str
    label: str
    config: Any                  # commpress.experiments.Config
    summary: dict[str, Any]      # the sweep's summary.json
    out: Path
    runs: dict[str, dict[str, Any]]
    _problem: Any = field(default=None, repr=False)

    @property
    def methods(self) -> list[str]:
        return list(self.summary["methods"])

    @property
    def target(self) -> float | None:
        return self.summary.get("target")

    def method(self, label: str) -> MethodResult:
        entries = self.summary["methods"]
        if label not in entries:
            raise ConfigError(f"panel {self.name!r} has no method {label!r}; it has {list(entries)}.")
        entry = entries[label]
        return MethodResult(label, entry, [self.runs[i] for i in entry["run_ids"]])

    def problem(self):
        """The panel's problem, built once (for its smoothness constants)."""
        if self._problem is None:
            from commpress import problems

            self._problem = problems.make(self.config.problem.name, **self.config.problem.params)
        return self._problem

    def constants(self) -> dict[str, Any]:
        """Smoothness constants of the panel's problem (L_-, L_+, L_±, L_AM, L_QM, exact?)."""
        sm = self.problem().smoothness()
        L_pm = float(sm.L_pm) if float(sm.L_pm) > 1e-12 * float(sm.L_plus) else 0.0  # round-off of an exact 0
        return {"L_minus": float(sm.L_minus), "L_plus": float(sm.L_plus), "L_pm": L_pm,
                "L_am": float(sm.L_am), "L_qm": float(sm.L_qm), "exact": bool(sm.exact),
                "n": int(self.problem().n), "d": int(self.problem().d)}


@dataclass
class Results:
    """Everything a reproduction produced: ``panels`` (name -> :class:`Panel`, in file order),
    ``params`` (the TOML ``[params]``), ``data`` (free-form numbers a module's ``compute`` adds;
    written to ``data.json``), ``quick``, ``out``, ``spec`` (the validated file), and the run's
    ``jobs`` and ``quiet`` (for a ``compute`` that runs sweeps of its own)."""

    name: str
    spec: Any
    out: Path
    quick: bool
    jobs: int = 1
    quiet: bool = False
    panels: dict[str, Panel] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    computed: int = 0
    resumed: int = 0

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    def panel(self, name: str) -> Panel:
        if name not in self.panels:
            raise ConfigError(f"reproduction {self.name!r} has no panel {name!r}; it has {list(self.panels)}.")
        return self.panels[name]
