"""Integer checks of the advice's parameters (ranks, repetitions, threads, sizes)."""

from __future__ import annotations

from typing import Any

from commpress.errors import ConfigError, InputTypeError


def _check_processes(processes: Any) -> int:
    return _check_int("processes", processes, 1)


def _check_int(what: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{what} must be an integer >= {low}; got {value!r} ({type(value).__name__}).")
    if value < low:
        raise ConfigError(f"{what} must be >= {low}; got {value}.")
    return value
