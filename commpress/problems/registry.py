"""Name -> problem class registry (the names used in configs: ``"quadratic"``, ``"logreg"``)."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

from commpress.errors import ConfigError
from commpress.problems.base import Problem

_REGISTRY: dict[str, type[Problem]] = {}


def register(name: str) -> Callable[[type[Problem]], type[Problem]]:
    """Class decorator: register a problem under ``name`` (lower case)."""

    def wrap(cls: type[Problem]) -> type[Problem]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"problem name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def names() -> list[str]:
    """Every registered problem name, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> type[Problem]:
    """The class registered under ``name``."""
    _load_all()
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    if key not in _REGISTRY:
        close = difflib.get_close_matches(str(key), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown problem {name!r}.{hint} Known problems: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[key]


def parameters(name: str) -> dict[str, Any]:
    """The constructor parameters of a problem and their defaults."""
    cls = get(name)
    signature = inspect.signature(cls.__init__)
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def make(name: str | Problem, **params: Any) -> Problem:
    """Build a problem by name with keyword parameters (every parameter has a default)."""
    if isinstance(name, Problem):
        if params:
            raise ConfigError("make() got a problem instance and parameters; pass one or the other.")
        return name
    cls = get(name)
    allowed = list(parameters(cls.name))
    unknown = [k for k in params if k not in allowed]
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"problem {cls.name!r} has no parameter {unknown[0]!r}.{hint} Its parameters are: "
            f"{', '.join(allowed) or '(none)'}."
        )
    return cls(**params)


def describe(name: str) -> str:
    """The first line of a problem's docstring."""
    doc = inspect.getdoc(get(name)) or ""
    return doc.splitlines()[0] if doc else ""


_loaded = False


def _load_all() -> None:
    """Import every module of the problems package so that their classes register."""
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil

    import commpress.problems as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in ("base", "registry"):
            importlib.import_module(f"commpress.problems.{info.name}")
    _loaded = True
