"""``report.md`` and ``claims.json`` of a reproduction."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from commpress.experiments import store
from commpress.experiments.report import format_table, title as sweep_title


def fmt(v: Any) -> str:
    """A number for a report: 3 significant digits, thousands separators for big counts."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}" if abs(v) < 1e-3 else f"{v:,.0f}"
        return f"{v:.3g}"
    return str(v)


def _numbers_text(numbers: dict[str, Any], limit: int = 6) -> str:
    """The first few numbers of a claim on one line (a nested table as ``key: a = 1, b = 2``)."""
    parts = []
    for k, v in numbers.items():
        if isinstance(v, dict):
            parts.append(f"{k}: " + ", ".join(f"{ik} {fmt(iv)}" for ik, iv in v.items()
                                               if not isinstance(iv, (dict, list))))
        elif isinstance(v, list):
            parts.append(f"{k}: " + ", ".join(fmt(x) for x in v))
        else:
            parts.append(f"{k} = {fmt(v)}")
    return "; ".join(parts[:limit]) + ("; …" if len(parts) > limit else "")


def write_claims(path: Path, claims: list) -> None:
    text = json.dumps([c.as_dict() for c in claims], indent=2, ensure_ascii=False, allow_nan=False)
    store.atomic_write(path, text + "\n")


def _md_numbers(numbers: dict[str, Any]) -> list[str]:
    """Nested numbers as a bullet list (tables of per-panel values stay readable)."""
    lines = []
    for k, v in numbers.items():
        if isinstance(v, dict):
            inner = ", ".join(f"{ik} = {fmt(iv)}" for ik, iv in v.items() if not isinstance(iv, (dict, list)))
            lines.append(f"  - {k}: {inner}")
        elif isinstance(v, list):
            lines.append(f"  - {k}: {', '.join(fmt(x) for x in v)}")
        else:
            lines.append(f"  - {k} = {fmt(v)}")
    return lines


def write_report(results, claims: list, figures: list[Path], path: Path, *, extra: str = "") -> None:
    """The markdown report: claim, verdicts with numbers, the figure, per-panel tables, choices."""
    spec = results.spec
    held = sum(bool(c.held) for c in claims)
    unmeasured = sum(bool(c.unmeasurable) for c in claims)
    mode = "quick (reduced sizes, for CI; run without --quick for the full version)" if results.quick else "full"
    lines = [
        f"# Reproduction `{results.name}`: {spec.title}",
        "",
        f"**Source:** {spec.source}  ",
        f"**Mode:** {mode}  ",
        f"**Command:** `commpress reproduce {results.name}{' --quick' if results.quick else ''}`  ",
        f"**Runs:** {results.computed + results.resumed} ({results.computed} computed, {results.resumed} resumed); "
        f"wall time {results.elapsed:.1f} s  ",
        f"**Seeds:** {seeds_text(results)}",
        "",
        "## The paper's claim",
        "",
        spec.claim.strip(),
        "",
        f"## Verdict: {held} of {len(claims)} claims held"
        + (f" ({unmeasured} not measurable)" if unmeasured else ""),
        "",
        "| # | claim | held | key numbers |",
        "|---|---|---|---|",
    ]
    for i, c in enumerate(claims, 1):
        verdict = "**yes**" if c.held else ("**NO** (not measurable)" if c.unmeasurable else "**NO**")
        lines.append(f"| {i} | {c.claim} | {verdict} | {_numbers_text(c.numbers)} |")
    lines.append("")
    for fig in figures:
        lines += [f"![{results.name}]({Path(fig).name})", ""]
    lines += ["## Claims in detail", ""]
    for i, c in enumerate(claims, 1):
        lines += [f"{i}. **{c.claim}** — {'held' if c.held else 'did NOT hold'}"
                  f"{' (not measurable)' if c.unmeasurable else ''}.", *_md_numbers(c.numbers)]
        if c.unmeasurable:
            lines += ["", f"   *Not measurable:* {c.unmeasurable}"]
        if c.note:
            lines += ["", f"   *Reading:* {c.note}"]
        lines.append("")
    if extra:
        lines += [extra.rstrip(), ""]
    if results.panels:
        lines += ["## Numbers per panel", "",
                  "Each method at its selected stepsize multiplier (the runs are in `panels/<name>/runs/`; "
                  "`commpress plot panels/<name> --all` shows every multiplier).", ""]
        for p in results.panels.values():
            lines += [f"### {p.label or p.name} (`panels/{p.name}`)", "", "```",
                      sweep_title(p.summary), format_table(p.summary), "```", ""]
    if spec.notes.strip():
        lines += ["## Choices made here", "", spec.notes.strip(), ""]
    if results.quick and spec.quick:
        from commpress.experiments._toml import dumps

        lines += ["## What --quick changes", "",
                  "The quick version replaces these values of the full one (sizes, seeds, iterations):", "",
                  "```toml", dumps(spec.quick).strip(), "```", ""]
    store.atomic_write(path, "\n".join(lines) + "\n")


def seeds_text(results) -> str:
    """The seeds line of the report: how many per run, and how the verdicts read them."""
    counts = sorted({len(p.config.run.seeds) for p in results.panels.values()})
    own = getattr(getattr(results, "spec", None), "params", {}).get("seeds")
    if not counts and own:  # a module that runs its methods itself, over the seeds of its [params]
        return (f"{len(own)} ({', '.join(map(str, own))}), run by the reproduction's own code; its tables give "
                "every seed's numbers and the verdicts read the medians it states.")
    if not counts:
        return "none (no random draws: the numbers come from formulas)."
    if counts == [1]:
        return "1 per method and stepsize multiplier (a single draw: no spread to show)."
    return (f"{' or '.join(map(str, counts))} per method and stepsize multiplier; the verdicts read medians over "
            "the seeds, and every spread shown is the min–max over the seeds, written `median [min–max]` (the "
            "figures: median line, min–max band).")


def seed_tables(results) -> str:
    """Markdown: per panel, each method at the multiplier selected by medians over seeds, with its bits to the
    target and its final ‖∇f‖², ``median [min–max]`` over the seeds."""
    from commpress.reproductions._compare import spread_text

    lines = ["## Medians and spread over seeds", "",
             "Each method at the stepsize multiplier with the fewest median bits to the target (or, where no "
             "median reaches it, the smallest median final ‖∇f‖²): the numbers the verdicts read. `median "
             "[min–max]` over the seeds; a seed that did not reach the target counts as not reached (inf). The "
             "per-panel tables further down are the sweep's own, by means over the seeds.", ""]
    for p in results.panels.values():
        lines += [f"### {p.label or p.name}", "",
                  "| method | γ multiplier | seeds | reached the target | bits to the target | final ‖∇f‖² |",
                  "|---|---|---|---|---|---|"]
        for label in p.methods:
            m = p.method(label)
            b = m.bits_spread()
            reached = sum(math.isfinite(v) for v in b.values)
            lines.append(f"| {label} | {m.multiplier:g} | {m.seeds} | {reached} of {m.seeds} | "
                         f"{spread_text(m, 'bits') if p.target is not None else '–'} | {spread_text(m, 'final')} |")
        lines.append("")
    return "\n".join(lines)


def write_data(path: Path, data: dict[str, Any]) -> None:
    store.atomic_write(path, store.dump_json(json.loads(json.dumps(data, default=_default))))


def _default(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if hasattr(v, "item"):
        return v.item()
    return repr(v)
