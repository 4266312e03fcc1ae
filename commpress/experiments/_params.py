"""Parameters of registered objects: names with did-you-mean, typed values, defaults resolved.

Shared by the config models (:mod:`commpress.experiments.config`) and the method list
(:mod:`commpress.experiments._methods`).
"""

from __future__ import annotations

import difflib
import inspect
import math
from typing import Any

from commpress.errors import ConfigError

#: Algorithm constructor arguments that the run sets itself (not allowed in ``params``).
_RUN_SET = {"compressor": "run.compressor", "gamma": "run.stepsize", "seed": "run.seed",
            "downlink_compressor": "run.downlink_compressor"}
_SCALARS = (type(None), bool, int, float, str)


def registry(kind: str):
    import importlib

    return importlib.import_module(f"commpress.{kind}.registry")


def lookup(kind: str, name: Any) -> type:
    """The registered class (its ``.name`` is the canonical spelling); ConfigError if unknown."""
    if not isinstance(name, str):
        raise ConfigError(f"{kind[:-1]} name must be a string; got {name!r} ({type(name).__name__}).")
    return registry(kind).get(name)


def jsonable(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return not (isinstance(value, float) and not math.isfinite(value))
    if isinstance(value, (list, tuple)):
        return all(jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and jsonable(v) for k, v in value.items())
    return False


def signature_defaults(fn, skip: set[str]) -> dict[str, Any]:
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in skip or p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[p.name] = p.default
    return out


def string_params(fn) -> frozenset[str]:
    """Parameters whose annotation admits a string besides the default's type (``p: float | str``,
    so that ``p = "inf"`` is accepted where the default is the number 2)."""
    return frozenset(p.name for p in inspect.signature(fn).parameters.values()
                     if "str" in str(p.annotation).replace("|", " ").split())


def check_value(where: str, key: str, value: Any, default: Any, may_be_str: bool = False) -> Any:
    """Check ``value`` against the type of ``default`` (TOML gives typed values); ints become floats
    where the default is a float, so ``0`` and ``0.0`` give the same run id. A string is accepted
    where the parameter's annotation admits one (``may_be_str``); the constructor then judges it."""
    if may_be_str and isinstance(value, str):
        return value

    def bad(what: str) -> ConfigError:
        return ConfigError(f"{where}.{key} = {value!r} ({type(value).__name__}): must be {what} "
                           f"(the default is {default!r}).")

    if not jsonable(value):
        raise ConfigError(f"{where}.{key} = {value!r}: must be a number, a string, true/false, or a list of them.")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
    elif isinstance(default, int) and default is not inspect.Parameter.empty:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    elif isinstance(default, str):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad("a string")
    return value


def check_params(where: str, owner: str, given: dict[str, Any], defaults: dict[str, Any],
                 strings: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Known keys with did-you-mean, typed values; returns the given values (typed). ``strings``:
    the parameters that may also be strings (:func:`string_params`)."""
    out = {}
    for key, value in given.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}.{key}: {owner} has no parameter {key!r}.{hint} "
                              f"Its parameters are: {', '.join(defaults) or '(none)'}.")
        out[key] = check_value(where, key, value, defaults[key], key in strings)
    return out


def resolved_params(given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults (the JSON-able ones) updated with the given values, in signature order."""
    out = {k: v for k, v in defaults.items() if v is not inspect.Parameter.empty and jsonable(v)}
    out.update(given)
    return out


def resolve_compressor(value: Any, where: str) -> dict[str, Any] | None:
    """A compressor name or table -> ``{"name": canonical, **every parameter}`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        name, given = value, {}
    elif isinstance(value, dict):
        if "name" not in value:
            raise ConfigError(f"{where} = {value!r}: a compressor table needs a name, e.g. {{name = \"iq\", levels = 2}}.")
        name, given = value["name"], {k: v for k, v in value.items() if k != "name"}
    else:
        raise ConfigError(f"{where} = {value!r} ({type(value).__name__}): must be a compressor name or a table "
                          "{name = ..., <parameters>}.")
    try:
        cls = lookup("compressors", name)
    except ConfigError as err:
        raise ConfigError(f"{where} = {value!r}: {err}") from None
    defaults = signature_defaults(cls.__init__, set())
    typed = check_params(where, f"compressor {cls.name!r}", given, defaults, string_params(cls.__init__))
    return {"name": cls.name, **resolved_params(typed, defaults)}


def algorithm_defaults(name: str) -> dict[str, Any]:
    cls = lookup("algorithms", name)
    return signature_defaults(cls.__init__, {"problem", "network", *(_RUN_SET)})


def no_run_set(params: dict[str, Any], where: str) -> dict[str, Any]:
    for key in params:
        if key in _RUN_SET:
            raise ConfigError(f"{where}.params.{key}: set it with {_RUN_SET[key]}, not in params.")
    return params
