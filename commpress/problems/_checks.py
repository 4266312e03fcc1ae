"""Parameter checks of the problem constructors: one constraint, one message with the fix.

(The problems layer may not import the compressors package, so these few lines are not
shared with ``commpress/compressors/_checks.py``.)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError

_DTYPES = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32}


def check_int(owner: str, name: str, value: Any, *, low: int = 1, hint: str = "") -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ConfigError(f"{owner} needs an integer {name}; got {value!r} ({type(value).__name__}).{hint}")
    value = int(value)
    if value < low:
        raise ConfigError(f"{owner} needs {name} >= {low}; got {name}={value}.{hint}")
    return value


def check_float(
    owner: str, name: str, value: Any, *, low: float | None = None, strict: bool = False, hint: str = ""
) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{owner} needs a number {name}; got {value!r}.{hint}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs a number {name}; got {value!r}.{hint}") from None
    if not math.isfinite(value) or (low is not None and (value < low or (strict and value == low))):
        bound = f"> {low}" if strict else f">= {low}"
        raise ConfigError(f"{owner} needs a finite {name} {bound}; got {name}={value}.{hint}")
    return value


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{owner} needs {name} in {list(choices)}; got {name}={value!r}.{hint}")
    return value


def check_dtype(owner: str, value: Any) -> torch.dtype:
    if isinstance(value, str) and value.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[value.lower().removeprefix("torch.")]
    if value in (torch.float64, torch.float32):
        return value
    raise ConfigError(f"{owner} needs dtype float64 or float32; got {value!r}.")


def check_seed(owner: str, value: Any) -> int:
    return check_int(owner, "seed", value, low=0, hint=" Use a non-negative integer seed.")
