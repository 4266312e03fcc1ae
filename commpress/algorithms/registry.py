"""Name -> algorithm class registry (``cp.algorithms.make("marina", problem, network, compressor="cq")``)."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

from commpress.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: register an algorithm under ``name`` (lower case, = module name)."""

    def wrap(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"algorithm name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def names() -> list[str]:
    """Every registered algorithm name, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> type:
    """The class registered under ``name``."""
    _load_all()
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        close = difflib.get_close_matches(str(key), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown algorithm {name!r}.{hint} Known algorithms: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[key]


def parameters(name: str) -> list[str]:
    """The keyword parameters of an algorithm's constructor."""
    sig = inspect.signature(get(name).__init__)
    return [p for p, v in sig.parameters.items()
            if p not in ("self", "problem", "network") and v.kind is not inspect.Parameter.VAR_KEYWORD]


def make(name: str, problem: Any, network: Any = None, compressor: Any = None, **params: Any):
    """Build an algorithm by name: ``make("marina", problem, network, compressor="cq", p=0.1)``."""
    cls = get(name)
    allowed = parameters(name)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"algorithm {cls.name!r} has no parameter {unknown[0]!r}.{hint} Its parameters are: {', '.join(allowed)}."
        )
    if compressor is not None:
        params["compressor"] = compressor
    return cls(problem, network, **params)


def describe(name: str) -> str:
    """The first line of an algorithm's docstring."""
    doc = inspect.getdoc(get(name)) or ""
    return doc.splitlines()[0] if doc else ""


_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil

    import commpress.algorithms as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in ("base", "registry"):
            importlib.import_module(f"commpress.algorithms.{info.name}")
    _loaded = True
