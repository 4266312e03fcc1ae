"""Parameter checks shared by compressors: one constraint, one clear message."""

from __future__ import annotations

import math
from typing import Any

from commpress.errors import ConfigError


def check_int(name: str, value: Any, owner: str, *, low: int = 1, high: int | None = None, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise ConfigError(f"{owner} needs an integer {name}; got {value!r} ({type(value).__name__}).{hint}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{owner} needs {name} {bound}; got {name}={value}.{hint}")
    return value


def check_float(name: str, value: Any, owner: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, hint: str = "") -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs a number {name}; got {value!r}.{hint}") from None
    if math.isnan(value) or (low is not None and (value < low or (low_open and value == low))) or (
        high is not None and value > high
    ):
        lo = "(" if low_open else "["
        raise ConfigError(f"{owner} needs {name} in {lo}{low}, {high}]; got {name}={value}.{hint}")
    return value


def check_choice(name: str, value: Any, owner: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{owner} needs {name} in {list(choices)}; got {name}={value!r}.")
    return value


def check_float_bits(value: Any, owner: str) -> int:
    if value not in (32, 64):
        raise ConfigError(f"{owner} sends dense values as float32 or float64; got float_bits={value!r}. Use 32 or 64.")
    return int(value)


def check_p_norm(value: Any, owner: str) -> float:
    if isinstance(value, str) and value.lower() in ("inf", "infinity"):
        return math.inf
    p = check_float("p", value, owner, low=1.0, hint=" Use p >= 1 or p='inf'.")
    return p
