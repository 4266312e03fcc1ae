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
    mode = "quick (reduced sizes, for CI; run without --quick for the full version)" if results.quick else "full"
    lines = [
        f"# Reproduction `{results.name}`: {spec.title}",
        "",
        f"**Source:** {spec.source}  ",
        f"**Mode:** {mode}  ",
        f"**Command:** `commpress reproduce {results.name}{' --quick' if results.quick else ''}`  ",
        f"**Runs:** {results.computed + results.resumed} ({results.computed} computed, {results.resumed} resumed); "
        f"wall time {results.elapsed:.1f} s",
        "",
        "## The paper's claim",
        "",
        spec.claim.strip(),
        "",
        f"## Verdict: {held} of {len(claims)} claims held",
        "",
        "| # | claim | held | key numbers |",
        "|---|---|---|---|",
    ]
    for i, c in enumerate(claims, 1):
        verdict = "**yes**" if c.held else "**NO**"
        lines.append(f"| {i} | {c.claim} | {verdict} | {_numbers_text(c.numbers)} |")
    lines.append("")
    for fig in figures:
        lines += [f"![{results.name}]({Path(fig).name})", ""]
    lines += ["## Claims in detail", ""]
    for i, c in enumerate(claims, 1):
        lines += [f"{i}. **{c.claim}** — {'held' if c.held else 'did NOT hold'}.", *_md_numbers(c.numbers)]
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


def write_data(path: Path, data: dict[str, Any]) -> None:
    store.atomic_write(path, store.dump_json(json.loads(json.dumps(data, default=_default))))


def _default(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if hasattr(v, "item"):
        return v.item()
    return repr(v)
