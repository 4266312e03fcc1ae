"""Parameter checks shared by every layer (compressors, problems, theory): one constraint, one
clear message naming the parameter, the value received and (``hint``) the fix.

Each takes the parameter's ``name``, its ``value`` and the ``owner`` that names it in the message.
"""

from __future__ import annotations

import difflib
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from commpress.errors import ConfigError

_DTYPES = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32}


def check_int(name: str, value: Any, owner: str, *, low: int = 1, high: int | None = None, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise ConfigError(f"{owner} needs an integer {name}; got {value!r} ({type(value).__name__}).{hint}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{owner} needs {name} {bound}; got {name}={value}.{hint}")
    return value


def check_float(name: str, value: Any, owner: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, finite: bool = False, hint: str = "") -> float:
    """A float in ``[low, high]`` (``(low, high]`` with ``low_open``), never NaN; with ``finite``
    never ±inf either. Booleans are refused."""
    if isinstance(value, bool):
        raise ConfigError(f"{owner} needs a number {name}; got {value!r}.{hint}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs a number {name}; got {value!r}.{hint}") from None
    if (math.isnan(value) or (finite and math.isinf(value))
            or (low is not None and (value < low or (low_open and value == low)))
            or (high is not None and value > high)):
        what = f"a finite {name}" if finite else name
        if low is not None and high is not None:
            need = f"{what} in {'(' if low_open else '['}{low}, {high}]"
        elif low is not None:
            need = f"{what} {'>' if low_open else '>='} {low}"
        elif high is not None:
            need = f"{what} <= {high}"
        else:
            need = f"{'a finite' if finite else 'a'} number {name}"
        raise ConfigError(f"{owner} needs {need}; got {name}={value}.{hint}")
    return value


def check_choice(name: str, value: Any, owner: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{owner} needs {name} in {list(choices)}; got {name}={value!r}.{hint}")
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


def check_dtype(value: Any, owner: str) -> torch.dtype:
    """torch.float64 or torch.float32, given as a dtype or a name (``"float64"``, ``"torch.float32"``, ``"double"``)."""
    if isinstance(value, str) and value.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[value.lower().removeprefix("torch.")]
    if value in (torch.float64, torch.float32):
        return value
    raise ConfigError(f"{owner} needs dtype float64 or float32; got {value!r}. Use dtype='float64' or 'float32'.")


def check_seed(value: Any, owner: str) -> int:
    return check_int("seed", value, owner, low=0, hint=" Use a non-negative integer seed.")


def check_output_dir(path: Any, option: str = "--out", fix: str | None = None) -> Path:
    """The folder ``path``, created if missing (with its parents) and proven writable by creating
    and removing a probe file in it; else a :class:`ConfigError` naming the path, why, and the fix.

    Call it before computing anything, so that a bad output folder costs nothing; files already in
    the folder are never touched. ``option`` names the setting in the message (``--out``); ``fix``
    replaces the message's advice.
    """
    path = Path(path)
    fix = fix or f"choose another {option}: a new folder or one you can write"
    for part in (*reversed(path.parents), path):  # a file where a folder must be
        if part.exists() and not part.is_dir():
            where = "is" if part == path else f"is inside {str(part)!r}, which is"
            raise ConfigError(f"the output folder {str(path)!r} {where} a file, not a folder; {fix}.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the output folder {str(path)!r}: {err.strerror or err}; {fix}.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"the output folder {str(path)!r} is read-only (no write permission); {fix}.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".commpress-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"cannot write in the output folder {str(path)!r}: {err.strerror or err}; {fix}.") from None
    return path
