"""One-line messages for pydantic validation errors: the field, the bad value, the allowed values.

``format_validation_error(err, model, source)`` turns the first error of a
:class:`pydantic.ValidationError` into one line such as

    main.toml: run.iteratons: unknown key. Did you mean 'iterations'? Keys of [run]: algorithms, ...
    main.toml: run.iterations = 'many': must be an integer.
    main.toml: problem.name = 'quadratc': unknown problem 'quadratc'. Did you mean 'quadratic'? ...
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

_TYPE_WORDS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "string_type": "a string", "bool_type": "true or false", "bool_parsing": "true or false",
    "list_type": "a list", "dict_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the last key of ``loc`` (None if the path leaves the models)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = _field(current, part)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field(model: type[BaseModel], key: str):
    for name, field in model.model_fields.items():
        if key == name or key in _aliases(field):
            return field
    return None


def _aliases(field) -> list[str]:
    alias = field.validation_alias
    if alias is None:
        return []
    if isinstance(alias, str):
        return [alias]
    return [c for c in getattr(alias, "choices", []) if isinstance(c, str)]


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a table of ``model`` accepts (field names, plus their singular/plural aliases)."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(name)
        keys.extend(a for a in _aliases(field) if a != name)
    return keys


def _table_name(loc: tuple) -> str:
    parts = [p for p in loc[:-1] if not isinstance(p, int)]
    return "[" + ".".join(parts) + "]" if parts else "the top level"


def _one(error: dict, model: type[BaseModel]) -> str:
    loc = tuple(error.get("loc", ()))
    where = _loc(loc) or "config"
    kind = error.get("type", "")
    value = error.get("input")
    if kind == "extra_forbidden":
        holder = _model_at(model, loc)
        key = str(loc[-1]) if loc else "?"
        if holder is not None:
            keys = allowed_keys(holder)
            field = _field(holder, key)
            if field is not None:  # both the singular and the plural spelling were given
                names = [n for n, f in holder.model_fields.items() if f is field] + _aliases(field)
                spelled = " or ".join(repr(k) for k in dict.fromkeys(names))
                return f"{where}: give {spelled}, not both."
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            return f"{where}: unknown key {key!r}.{hint} Keys of {_table_name(loc)}: {', '.join(keys)}."
        return f"{where}: unknown key {key!r}."
    if kind == "missing":
        return f"{where}: missing; this key is required."
    if kind in _BOUNDS:
        bound = next(iter((error.get("ctx") or {}).values()), "?")
        return f"{where} = {_show(value)}: must be {_BOUNDS[kind]} {bound}."
    if kind in _TYPE_WORDS:
        return f"{where} = {_show(value)} ({type(value).__name__}): must be {_TYPE_WORDS[kind]}."
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"{where} = {_show(value)}: must be one of {expected}."
    if kind == "string_pattern_mismatch":
        return f"{where} = {_show(value)}: use letters, digits, '.', '_' and '-' only."
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if where == "config" or message.startswith(where):
        return message
    return f"{where}: {message}"


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str = "") -> str:
    """The first error of ``err`` as one line (prefixed with ``source``), with a count of the rest."""
    errors = err.errors(include_url=False)
    line = _one(errors[0], model) if errors else str(err)
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    line = " ".join(line.split())
    return f"{source}: {line}" if source else line
