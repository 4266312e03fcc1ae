"""A small TOML writer for resolved configs (tomllib only reads).

Top-level scalars, then one ``[table]`` per dict and one ``[[table]]`` per list of dicts; dicts
nested deeper become inline tables. TOML has no null: a key whose value is None is written as a
comment (``# target = (not set)``), so the output parses back to the same config.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = [f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None]
        return "{" + ", ".join(items) + "}" if items else "{}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _lines(table: dict[str, Any], comments: dict[str, str]) -> list[str]:
    out = []
    for k, v in table.items():
        note = f"  # {comments[k]}" if k in comments else ""
        if v is None:
            out.append(f"# {_key(k)} = (not set){note}")
        elif isinstance(v, list) and len(_value(v)) > 88:
            out.append(f"{_key(k)} = [{note}")
            out.extend(f"    {_value(x)}," for x in v)
            out.append("]")
        else:
            out.append(f"{_key(k)} = {_value(v)}{note}")
    return out


def dumps(data: dict[str, Any], comments: dict[str, dict[str, str]] | None = None) -> str:
    """``data`` as TOML text; ``comments[table][key]`` adds an end-of-line comment."""
    comments = comments or {}
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_table_list(v)}
    lines = _lines(scalars, comments.get("", {}))
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]", *_lines(v, comments.get(k, {}))]
        elif _is_table_list(v):
            for item in v:
                lines += ["", f"[[{_key(k)}]]", *_lines(item, comments.get(k, {}))]
    return "\n".join(lines) + "\n"


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
