"""Name -> compressor class registry (the names used in configs: ``"cq"``, ``"permk+cq"``)."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

from commpress.compressors.base import Compressor
from commpress.errors import ConfigError

_REGISTRY: dict[str, type[Compressor]] = {}


def register(name: str) -> Callable[[type[Compressor]], type[Compressor]]:
    """Class decorator: register a compressor under ``name`` (lower case)."""

    def wrap(cls: type[Compressor]) -> type[Compressor]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"compressor name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def names() -> list[str]:
    """Every registered compressor name, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> type[Compressor]:
    """The class registered under ``name``."""
    _load_all()
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        close = difflib.get_close_matches(str(key), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"unknown compressor {name!r}.{hint} Known compressors: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[key]


def make(name: str | Compressor, **params: Any) -> Compressor:
    """Build a compressor by name with keyword parameters; defaults work for any n, d >= 1."""
    if isinstance(name, Compressor):
        if params:
            raise ConfigError("make() got a compressor instance and parameters; pass one or the other.")
        return name
    cls = get(name)
    signature = inspect.signature(cls.__init__)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    allowed = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
    unknown = [k for k in params if k not in allowed]
    if unknown and not accepts_any:
        raise ConfigError(
            f"compressor {cls.name!r} has no parameter {unknown[0]!r}; its parameters are: "
            f"{', '.join(allowed) or '(none)'}."
        )
    return cls(**params)


def describe(name: str) -> str:
    """The first line of a compressor's docstring."""
    doc = inspect.getdoc(get(name)) or ""
    return doc.splitlines()[0] if doc else ""


_loaded = False


def _load_all() -> None:
    """Import every module of the compressors package so that their classes register."""
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil

    import commpress.compressors as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in ("base", "registry"):
            importlib.import_module(f"commpress.compressors.{info.name}")
    _loaded = True
