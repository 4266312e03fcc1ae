"""Fabricated results for the claim checks: hand-chosen numbers in, verdicts out, no optimiser run.

Two kinds of reproductions:

- the sweep-based CQ checks read panels of runs (:func:`panels`): per panel a noise scale (which sets
  L± of a small real quadratic, so ``panel.constants()`` works) and per method its numbers per seed;
- the others read ``results.data`` (what their ``compute`` measured): :func:`data_results` wraps a
  hand-written ``data`` dict (and the panel labels the check prints).

A method's numbers (:func:`method`): ``bits`` (bits to the target per seed, None = not reached),
``final`` (final ‖∇f‖² per seed, inf/nan = diverged), ``p``; a bare number, None or list means ``bits``.
Several stepsize multipliers: ``{"multipliers": {1.0: method(...), 2.0: method(...)}}``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from commpress.experiments import load_config
from commpress.reproductions import Panel, Results
from commpress.reproductions._spec import load_spec


def method(bits: Any = None, final: Any = 1e-5, p: float = 0.1, iterations: Any = None) -> dict[str, Any]:
    """One method's numbers per seed (a scalar is one seed)."""
    as_list = (lambda v: list(v) if isinstance(v, (list, tuple)) else [v])
    b, f, it = as_list(bits), as_list(final), as_list(iterations)
    n = max(len(b), len(f), len(it))
    pad = (lambda v: v * n if len(v) == 1 else v)
    return {"bits": pad(b), "final": pad(f), "p": p, "iterations": pad(it)}


@functools.lru_cache(maxsize=16)
def _config(noise: float, n: int, d: int):
    return load_config({"problem": {"name": "quadratic", "n_clients": n, "dim": d, "noise_scale": noise},
                        "run": {"algorithm": "gd", "target": 1e-4}})


def _runs_of(pname: str, label: str, mult: float, m: dict[str, Any]) -> tuple[dict, dict]:
    runs, ids = {}, []
    for seed, (b, f, it) in enumerate(zip(m["bits"], m["final"], m["iterations"])):
        rid = f"{pname}-{label}-x{mult:g}-s{seed}"
        reached = b is not None
        runs[rid] = {"spec": {"run_id": rid},
                     "summary": {"params": {"p": m["p"]}, "bits_to_target": b, "final_grad_norm_sq": f,
                                 "iterations_to_target": it, "stepsize": 0.1 * mult,
                                 "status": "target_reached" if reached else "max_iterations"},
                     "metrics": {"bits_up": [0.0, float(b if reached else 1e9)],
                                 "grad_norm_sq": [1.0, 1e-5 if reached else 1.0]}}
        ids.append(rid)
    reached = all(b is not None for b in m["bits"])
    finals = [float(f) for f in m["final"]]
    cand = {"stepsize": 0.1 * mult,
            "bits_to_target": sum(m["bits"]) / len(m["bits"]) if reached else None,
            "final_grad_norm_sq": sum(finals) / len(finals) if all(map(math.isfinite, finals)) else math.inf,
            "iterations_to_target": None, "reached_target": reached,
            "status": ["target_reached" if reached else "max_iterations"], "run_ids": ids}
    return runs, cand


def panels(name: str, table: dict[str, dict[str, Any]], noise: dict[str, float] | list[float], *,
           quick: bool = True, target: float | None = 1e-4, budget: float = 1e6, select: str = "bits_to_target",
           n: int = 4, d: int = 8, params: dict[str, Any] | None = None) -> Results:
    """Results of reproduction ``name`` whose panel ``p`` has, for each method, the numbers ``table[p][label]``
    (see :func:`method`), on a quadratic with noise scale ``noise[p]`` (n clients, dimension d)."""
    spec = load_spec(name, quick=quick)
    if params is not None:
        spec = spec.model_copy(update={"params": {**spec.params, **params}})
    res = Results(name=name, spec=spec, out=None, quick=quick)
    noise = dict(zip(table, noise)) if isinstance(noise, list) else noise
    for pname, methods in table.items():
        entries, runs = {}, {}
        for label, spec_m in methods.items():
            by_mult = spec_m.get("multipliers") if isinstance(spec_m, dict) else None
            by_mult = by_mult or {1.0: spec_m if isinstance(spec_m, dict) else method(spec_m)}
            cands = {}
            for mult, m in by_mult.items():
                r, cands[mult] = _runs_of(pname, label, mult, m if isinstance(m, dict) else method(m))
                runs.update(r)
            first = min(cands)
            entries[label] = {**cands[first], "stepsize_multiplier": first,
                              "multipliers": {f"{k:g}": v for k, v in cands.items()}}
        summary = {"methods": entries, "target": target, "bits_budget": budget, "select": select}
        res.panels[pname] = Panel(pname, pname, _config(float(noise[pname]), n, d), summary, None, runs)
    return res


def data_results(name: str, data: dict[str, Any], *, panel_labels: dict[str, str] | None = None, quick: bool = True,
                 params: dict[str, Any] | None = None) -> Results:
    """Results of reproduction ``name`` whose ``data`` (what its ``compute`` measured) is ``data``, with empty
    panels of the given labels (the checks print them)."""
    spec = load_spec(name, quick=quick)
    if params is not None:
        spec = spec.model_copy(update={"params": {**spec.params, **params}})
    res = Results(name=name, spec=spec, out=None, quick=quick)
    res.data.update(data)
    for pname, label in (panel_labels or {}).items():
        res.panels[pname] = Panel(pname, label, None, {"methods": {}}, None, {})
    return res


def spread(*values: float) -> dict[str, Any]:
    """A ``Spread.as_dict()`` of the given per-seed values (for data-based checks)."""
    from commpress.reproductions._seeds import Spread

    return Spread.of(values).as_dict()


def held(claims) -> list[bool]:
    return [bool(c.held) for c in claims]


def measured(claims) -> list[bool]:
    """Per claim: were its numbers measurable (no ``unmeasurable`` reason)?"""
    return [not c.unmeasurable for c in claims]
