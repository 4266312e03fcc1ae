"""What a claim check reads: the finished panels (sweeps) of a reproduction and their numbers.

``results.panel("s0").method("MARINA + CQ")`` is one method of one panel at the stepsize multiplier
selected by *medians over seeds* (fewest median bits to the sweep's target; where no multiplier's
median reaches it, or the sweep selects by ``final_grad_norm_sq``, the smallest median final
:math:`\\|\\nabla f\\|^2`; ties go to the smaller multiplier). The sweep's own per-panel tables pick by
means over seeds and can differ where seeds disagree. With the measurements a claim needs:

- ``bits_spread()``: uplink bits per client to reach the target, one number per seed (inf for a seed
  that did not reach it): ``.median`` for the verdicts, ``.lo``–``.hi`` for the report
  (:class:`~commpress.reproductions._seeds.Spread`);
- ``final_spread()``: final :math:`\\|\\nabla f\\|^2` per seed (inf for a diverged seed);
- ``bits_to_target`` (mean over seeds, None if a seed did not reach it), ``bits_to(level)`` (the same
  for any level: first recorded point at or below it), ``value_at(bits)`` (geometric mean over seeds
  of the last recorded value at or below ``bits``) and ``final`` (mean): the sweep's averages.

A :class:`Claim` whose numbers cannot be measured (nothing reached the level, a ratio inf/inf, fewer
than two points to compare) is not held and says why in ``unmeasurable``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commpress.errors import ConfigError
from commpress.reproductions._seeds import Spread, median


@dataclass(frozen=True)
class Claim:
    """One verdict: the claim as stated, whether it held, the measured numbers it rests on,
    (optional) a note: the reading of why, where it did not hold, and ``unmeasurable``: why the
    numbers the claim needs could not be measured (nothing converged or reached the level, a ratio
    inf/inf or nan, fewer than two points to compare), empty when they were. A claim that could
    not be measured is never held: ``held=True`` with a reason is an error."""

    claim: str
    held: bool
    numbers: dict[str, Any]
    note: str = ""
    unmeasurable: str = ""

    def __post_init__(self) -> None:
        if self.unmeasurable and self.held:
            raise ValueError(f"claim {self.claim!r} could not be measured ({self.unmeasurable}) and cannot be held; "
                             "pass held=False with the reason.")

    def as_dict(self) -> dict[str, Any]:
        """``{"claim", "held", "numbers"}``, plus ``"note"`` and ``"unmeasurable"`` where given."""
        out = {"claim": self.claim, "held": bool(self.held), "numbers": _plain(self.numbers)}
        if self.note:
            out["note"] = self.note
        if self.unmeasurable:
            out["unmeasurable"] = self.unmeasurable
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


def _bad_as_inf(v: Any) -> float:
    """A final value of one seed: None, nan or inf (diverged) -> inf."""
    if v is None:
        return math.inf
    try:
        v = float(v)
    except (TypeError, ValueError):  # "nan"/"inf" strings of the store
        return math.inf
    return v if math.isfinite(v) else math.inf


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

    @property
    def seeds(self) -> int:
        return len(self.runs)

    def bits_spread(self) -> Spread:
        """Uplink bits per client to the sweep's target, one per seed (inf where a seed did not reach it)."""
        return Spread.of(r["summary"].get("bits_to_target") for r in self.runs)

    def final_spread(self) -> Spread:
        """Final :math:`\\|\\nabla f\\|^2` per seed (inf for a diverged seed: nan or inf at the end)."""
        return Spread.of(_bad_as_inf(r["summary"].get("final_grad_norm_sq")) for r in self.runs)

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
        """Method ``label`` at the multiplier selected by medians over seeds (see the module docstring)."""
        entries = self.summary["methods"]
        if label not in entries:
            raise ConfigError(f"panel {self.name!r} has no method {label!r}; it has {list(entries)}.")
        entry = entries[label]
        cands = entry.get("multipliers")
        if cands:
            key = self._median_pick(cands)
            entry = {**entry, **cands[key], "stepsize_multiplier": float(key)}
        return MethodResult(label, entry, [self.runs[i] for i in entry["run_ids"]])

    def _median_pick(self, cands: dict[str, Any]) -> str:
        def per_seed(key: str, field_: str) -> float:
            vals = [self.runs[i]["summary"].get(field_) for i in cands[key]["run_ids"]]
            return median(_bad_as_inf(v) if field_ == "final_grad_norm_sq" else v for v in vals)

        order = sorted(cands, key=float)
        if self.summary.get("select", "bits_to_target") == "bits_to_target" and self.target is not None:
            bits = {k: per_seed(k, "bits_to_target") for k in order}
            reached = [k for k in order if math.isfinite(bits[k])]
            if reached:
                return min(reached, key=lambda k: (bits[k], float(k)))
        finals = {k: per_seed(k, "final_grad_norm_sq") for k in order}
        return min(order, key=lambda k: (finals[k] if not math.isnan(finals[k]) else math.inf, float(k)))

    def problem(self):
        """The panel's problem, built once (for its smoothness constants)."""
        if self._problem is None:
            from commpress import problems

            self._problem = problems.make(self.config.problem.name, **self.config.problem.params)
        return self._problem

    def constants(self) -> dict[str, Any]:
        """Smoothness constants of the panel's problem (``L_-``, ``L_+``, ``L_±``, ``L_AM``, ``L_QM``, exact?)."""
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
