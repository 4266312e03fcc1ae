"""From runs to a report: per run its numbers, per method the best stepsize multiplier, a table.

The papers tune the stepsize of every method as ``2^k x`` its theoretical value and show each
method with its best multiplier. "Best" (``run.select``):

- ``"bits_to_target"``: fewest uplink bits per client to reach ||grad f||^2 <= target (the
  first recorded iteration at or below the target);
- ``"final_grad_norm_sq"``: smallest final ||grad f||^2 (at the iteration or bits budget);
- ``"auto"`` (default): ``bits_to_target`` when a target is set and some multiplier reaches it,
  else ``final_grad_norm_sq``.

With several seeds a multiplier's numbers are means over the seeds, and it reaches the target
only if every seed does. Ties go to the smaller multiplier.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any

from commpress.experiments.config import Method
from commpress.experiments.store import as_float
from commpress.experiments.sweep import RunSpec


def run_stats(columns: dict[str, list], target: float | None) -> dict[str, Any]:
    """The numbers of one run from its metrics columns."""
    it, g2, up = columns["iteration"], columns["grad_norm_sq"], columns["bits_up"]
    stats: dict[str, Any] = {
        "iterations": int(it[-1]) if it else 0,
        "final_grad_norm_sq": float(g2[-1]) if g2 else math.nan,
        "min_grad_norm_sq": min((v for v in g2 if not math.isnan(v)), default=math.nan),
        "bits_up": float(up[-1]) if up else 0.0,
        "bits_down": float(columns["bits_down"][-1]) if up else 0.0,
        "bits_to_target": None,
        "iterations_to_target": None,
    }
    if target is not None:
        for t, v, b in zip(it, g2, up):
            if v <= target:
                stats["bits_to_target"] = float(b)
                stats["iterations_to_target"] = int(t)
                break
    return stats


def _num(v: Any) -> float:
    v = as_float(v)
    return math.inf if v is None or math.isnan(v) else v


def _candidate(mult: float, runs: list[dict[str, Any]]) -> dict[str, Any]:
    sums = [r["summary"] for r in runs]
    reached = all(s["bits_to_target"] is not None for s in sums)
    finals = [_num(s["final_grad_norm_sq"]) for s in sums]
    return {
        "stepsize_multiplier": mult,
        "stepsize": as_float(sums[0].get("stepsize")),
        "bits_to_target": fmean(float(s["bits_to_target"]) for s in sums) if reached else None,
        "final_grad_norm_sq": fmean(finals) if all(math.isfinite(f) for f in finals) else math.inf,
        "iterations": round(fmean(int(s["iterations"]) for s in sums)),
        "iterations_to_target": round(fmean(s["iterations_to_target"] for s in sums)) if reached else None,
        "bits_up": fmean(_num(s["bits_up"]) for s in sums),
        "reached_target": reached,
        "status": sorted({s["status"] for s in sums}),
        "run_ids": [r["spec"]["run_id"] for r in runs],
    }


def _best(candidates: list[dict[str, Any]], rule: str) -> tuple[dict[str, Any], str]:
    reached = [c for c in candidates if c["reached_target"]]
    if rule == "bits_to_target" and not reached:
        rule = "final_grad_norm_sq"
    if rule == "bits_to_target":
        return min(reached, key=lambda c: (c["bits_to_target"], c["stepsize_multiplier"])), rule
    return min(candidates, key=lambda c: (c["final_grad_norm_sq"], c["stepsize_multiplier"])), rule


def summarize(name: str, description: str, run_cfg: Any, problem: dict[str, Any], method_list: list[Method],
              specs: list[RunSpec], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The sweep's summary: per method (by label) the chosen multiplier and its numbers."""
    rule = run_cfg.select
    if rule == "auto":
        rule = "bits_to_target" if run_cfg.target is not None else "final_grad_norm_sq"
    out_methods: dict[str, Any] = {}
    for m in method_list:
        mine = [s for s in specs if s.method_key == m.key]
        candidates = []
        for mult in dict.fromkeys(s.stepsize_multiplier for s in mine):
            candidates.append(_candidate(mult, [runs[s.run_id] for s in mine if s.stepsize_multiplier == mult]))
        best, used = _best(candidates, rule)
        out_methods[m.label] = {
            "algorithm": m.algorithm,
            "compressor": m.compressor,
            "params": m.params,
            "selected_by": used,
            **{k: best[k] for k in ("stepsize_multiplier", "stepsize", "bits_to_target", "final_grad_norm_sq",
                                    "iterations", "iterations_to_target", "bits_up", "reached_target", "status",
                                    "run_ids")},
            "multipliers": {_mult_key(c["stepsize_multiplier"]): {k: v for k, v in c.items() if k != "stepsize_multiplier"}
                            for c in candidates},
        }
    return {
        "name": name,
        "description": description,
        "problem": problem,
        "target": run_cfg.target,
        "bits_budget": run_cfg.bits_budget,
        "max_iterations": run_cfg.iterations,
        "seeds": list(run_cfg.seeds),
        "select": rule,
        "methods": out_methods,
    }


def problem_text(problem: dict[str, Any]) -> str:
    """``quadratic(n_clients=16, dim=64, noise_scale=0.0)``: the size and every non-default parameter."""
    try:
        from commpress.problems.registry import parameters

        defaults = parameters(problem["name"])
    except Exception:  # noqa: BLE001 - a folder written by another version: show everything
        defaults = {}
    shown = {k: v for k, v in problem.items()
             if k != "name" and v is not None and (k in ("n_clients", "dim", "dataset") or defaults.get(k, object()) != v)}
    return f"{problem['name']}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def title(summary: dict[str, Any]) -> str:
    """Two lines: sweep name, problem and seeds; the stopping rules and the selection."""
    stop = []
    if summary.get("target") is not None:
        stop.append(f"‖∇f‖² ≤ {summary['target']:g}")
    if summary.get("bits_budget") is not None:
        stop.append(f"{summary['bits_budget']:,.0f} bits/client")
    stop.append(f"{summary['max_iterations']} iterations")
    seeds = len(summary.get("seeds") or [])
    chosen = "fewest bits to the target" if summary.get("select") == "bits_to_target" else "smallest final ‖∇f‖²"
    return (f"{summary['name']}: {problem_text(summary['problem'])}, {seeds} seed{'s' if seeds != 1 else ''}"
            f"{' (means)' if seeds > 1 else ''}\n"
            f"stop at {' or '.join(stop)}; each method at its best stepsize multiplier ({chosen})")


def _mult_key(m: float) -> str:
    return f"{m:g}"


def multiplier_text(m: float) -> str:
    """``4.0`` -> ``"γ×4"``."""
    return f"γ×{m:g}"


def _fmt(v: Any, spec: str = ".3e") -> str:
    if v is None:
        return "not reached"
    v = float(v)
    if math.isinf(v):
        return "diverged"
    return format(v, spec)


def format_table(summary: dict[str, Any]) -> str:
    """Per method: chosen multiplier, stepsize, iterations, final ||grad f||^2, bits per client to the
    target, and the ratio to the uncompressed baseline (GD) when the sweep has one."""
    methods = summary["methods"]
    target = summary.get("target")
    baseline = next((v["bits_to_target"] for v in methods.values()
                     if v["algorithm"] == "gd" and v["bits_to_target"] is not None), None)
    width = max([len("method")] + [len(k) for k in methods])
    bits_head = "uplink bits/client to target" if target is not None else "uplink bits/client"
    head = f"{'method':<{width}}  {'γ mult':>6}  {'stepsize':>9}  {'iterations':>10}  {'final ‖∇f‖²':>11}  {bits_head:>28}"
    if baseline:
        head += f"  {'vs GD':>6}"
    lines = [head, "-" * len(head)]

    def order(item):
        v = item[1]
        return (v["bits_to_target"] is None, v["bits_to_target"] or 0.0, _num(v["final_grad_norm_sq"]))

    for label, v in sorted(methods.items(), key=order):
        bits = v["bits_to_target"] if target is not None else v["bits_up"]
        line = (f"{label:<{width}}  {'×' + format(v['stepsize_multiplier'], 'g'):>6}  {_fmt(v['stepsize'], '.3g'):>9}  "
                f"{v['iterations']:>10}  {_fmt(v['final_grad_norm_sq'], '.2e'):>11}  {_fmt(bits, ',.0f'):>28}")
        if baseline:
            line += f"  {(format(bits / baseline, '.3f') if bits is not None else '-'):>6}"
        lines.append(line)
    return "\n".join(lines)
