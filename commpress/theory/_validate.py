"""Argument checks shared by the theory functions: one constraint, one clear message.

Numbers come in as Python floats/ints, numpy scalars or 0-d torch tensors; they leave as
floats. Missing constants raise :class:`~commpress.errors.ConfigError` naming the constant
and how to provide it.
"""

from __future__ import annotations

import math
from typing import Any

from commpress.compressors._checks import check_choice, check_float, check_int
from commpress.compressors.base import CompressorTheory
from commpress.errors import ConfigError

__all__ = ["check_choice", "check_float", "check_int", "num", "pos", "nonneg", "prob", "as_theory", "require"]


def num(name: str, value: Any, owner: str) -> float:
    """A finite float from a Python/numpy/torch scalar."""
    if hasattr(value, "numel") and callable(value.numel):  # torch tensor
        if value.numel() != 1:
            raise ConfigError(f"{owner} needs a scalar {name}; got a tensor of shape {tuple(value.shape)}.")
        value = value.item()
    x = check_float(name, value, owner)
    if not math.isfinite(x):
        raise ConfigError(f"{owner} needs a finite {name}; got {name}={x}.")
    return x


def pos(name: str, value: Any, owner: str, *, allow_inf: bool = False) -> float:
    """A float > 0."""
    if hasattr(value, "numel") and callable(value.numel):
        value = value.item()
    x = check_float(name, value, owner, low=0.0, low_open=True)
    if math.isinf(x) and not allow_inf:
        raise ConfigError(f"{owner} needs a finite {name} > 0; got {name}={x}.")
    return x


def nonneg(name: str, value: Any, owner: str) -> float:
    """A finite float >= 0."""
    if hasattr(value, "numel") and callable(value.numel):
        value = value.item()
    x = check_float(name, value, owner, low=0.0)
    if math.isinf(x):
        raise ConfigError(f"{owner} needs a finite {name} >= 0; got {name}={x}.")
    return x


def prob(name: str, value: Any, owner: str) -> float:
    """A probability in (0, 1]."""
    if hasattr(value, "numel") and callable(value.numel):
        value = value.item()
    return check_float(name, value, owner, low=0.0, high=1.0, low_open=True)


def require(value: Any, constant: str, owner: str, how: str) -> Any:
    """``value`` if it is not None, else a ConfigError naming ``constant`` and how to provide it."""
    if value is None:
        raise ConfigError(f"{owner} needs the constant {constant}, which is missing. {how}")
    return value


def as_theory(compressor: Any, n: int, d: int, owner: str) -> CompressorTheory:
    """A :class:`CompressorTheory` from a theory record or a compressor object (calls ``.theory(n, d)``)."""
    if compressor is None:
        raise ConfigError(
            f"{owner} compresses its messages but no compressor constants were given (compressor=None). "
            "Pass compressor=<a Compressor or its .theory(n, d) record>, e.g. "
            "commpress.compressors.make('iq').theory(n, d)."
        )
    if isinstance(compressor, CompressorTheory):
        return compressor
    theory = getattr(compressor, "theory", None)
    if callable(theory):
        out = theory(n, d)
        if isinstance(out, CompressorTheory):
            return out
    raise ConfigError(
        f"{owner} needs compressor constants as a CompressorTheory (or a Compressor with .theory(n, d)); "
        f"got {type(compressor).__name__}."
    )
