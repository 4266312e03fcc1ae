"""One name -> class registry, used by compressors, problems and algorithms.

A package makes one :class:`Registry`; its modules register classes with ``@registry.register(
"name")``; ``names()`` / ``get()`` import every public module of the package first (so a new
module registers just by existing). Unknown names and parameters give a :class:`ConfigError`
with close-match hints and the list of what exists.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from typing import Any, Callable

from commpress.errors import ConfigError


class Registry:
    """Classes of one kind (``what``: "compressor", "problem", "algorithm") by lower-case name."""

    def __init__(self, what: str, package: str, *, skip_params: tuple[str, ...] = (), normalise_dashes: bool = False):
        self.what = what
        self.package = package
        self.skip_params = ("self", *skip_params)
        self.normalise_dashes = normalise_dashes
        self._classes: dict[str, type] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: register ``cls`` under ``name`` and set ``cls.name``."""

        def wrap(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise RuntimeError(f"{self.what} name {name!r} registered twice")
            cls.name = name
            self._classes[name] = cls
            return cls

        return wrap

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_all()
        return sorted(self._classes)

    def get(self, name: Any) -> type:
        """The class registered under ``name`` (case-insensitive)."""
        self._load_all()
        key = name.strip().lower() if isinstance(name, str) else name
        if isinstance(key, str) and self.normalise_dashes:
            key = key.replace("-", "_")
        if key not in self._classes:
            close = difflib.get_close_matches(str(key), list(self._classes), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"unknown {self.what} {name!r}.{hint} Known {self.what}s: {', '.join(sorted(self._classes))}."
            )
        return self._classes[key]

    def parameters(self, name: Any) -> dict[str, Any]:
        """The keyword parameters of a class's constructor, with their defaults."""
        signature = inspect.signature(self.get(name).__init__)
        return {
            p.name: p.default
            for p in signature.parameters.values()
            if p.name not in self.skip_params and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }

    def check_params(self, name: Any, params: dict[str, Any]) -> type:
        """The class, after checking that every key of ``params`` is one of its parameters."""
        cls = self.get(name)
        signature = inspect.signature(cls.__init__)
        if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            return cls
        allowed = list(self.parameters(name))
        unknown = [k for k in params if k not in allowed]
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{self.what} {cls.name!r} has no parameter {unknown[0]!r}.{hint} Its parameters are: "
                f"{', '.join(allowed) or '(none)'}."
            )
        return cls

    def describe(self, name: Any) -> str:
        """The first line of the class's docstring."""
        doc = inspect.getdoc(self.get(name)) or ""
        return doc.splitlines()[0] if doc else ""

    def _load_all(self) -> None:
        if self._loaded:
            return
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_") and info.name not in ("base", "registry"):
                importlib.import_module(f"{self.package}.{info.name}")
        self._loaded = True
