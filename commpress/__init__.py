"""commpress: communication-efficient distributed optimization, honest to the bit.

The subpackages and the names below are imported on first use (PEP 562), so ``import commpress``
and the ``commpress`` command start without loading torch; ``cp.compressors.make(...)``,
``cp.simulate(...)``, ``from commpress import ConfigError`` and ``from commpress import *`` work
as if everything had been imported eagerly.
"""

from __future__ import annotations

import importlib
import sys
import types

from commpress.errors import (
    CommpressError,
    ConfigError,
    DataFileError,
    DistributedError,
    InputError,
    InputTypeError,
    NonFiniteError,
    PayloadError,
)

__version__ = "0.1.1"

__all__ = [
    "keep_freed_memory",
    "algorithms",
    "compressors",
    "integrations",
    "network",
    "simulate",
    "run",
    "distributed",
    "History",
    "datasets",
    "problems",
    "theory",
    "testing",
    "optim",
    "derive_seed",
    "CommpressError",
    "ConfigError",
    "DataFileError",
    "DistributedError",
    "InputError",
    "InputTypeError",
    "NonFiniteError",
    "PayloadError",
]

#: Subpackages reachable as attributes (``cp.compressors``), imported on first access.
_SUBMODULES = frozenset({
    "algorithms", "compressors", "datasets", "distributed", "errors", "experiments", "integrations",
    "network", "optim", "problems", "reproductions", "testing", "theory", "wire",
})
#: Re-exported names: name -> the module that defines it.
_NAMES = {
    "simulate": "commpress.simulate",
    "History": "commpress.simulate",
    "run": "commpress.experiments",
    "keep_freed_memory": "commpress._malloc",
    "derive_seed": "commpress._rng",
}


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)


class _Package(types.ModuleType):
    """``commpress`` itself. Importing the submodule ``commpress.simulate`` makes Python bind it as
    the package's attribute ``simulate``; the eager package then rebound the name to the function
    (``from commpress.simulate import simulate``), and so does this class, whichever comes first."""

    def __setattr__(self, name: str, value) -> None:
        if name == "simulate" and isinstance(value, types.ModuleType):
            value = value.simulate
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
