"""The ``device=`` setting shared by the problems, the simulator, the configs, the CLI and the distributed runner.

One code path on every device: a problem's tensors, the algorithm state and the compressors' work
live on one torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); only the recorded history (plain
floats) and the bit ledger stay on the CPU. :func:`resolve_device` turns what a user wrote into a
:class:`torch.device`, or raises a one-line :class:`~commpress.errors.ConfigError`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from commpress.errors import ConfigError

__all__ = ["resolve_device", "rank_device"]

#: The device types commpress runs on (the same torch code on each).
DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(device: Any, owner: str = "device") -> torch.device | None:
    """``None`` (keep where things are), or ``device`` as a :class:`torch.device` that exists here.

    Accepts ``"cpu"``, ``"cuda"``, ``"cuda:<k>"`` and :class:`torch.device` objects. Raises
    :class:`ConfigError` (one line) for anything else, for CUDA when no CUDA device is visible,
    and for a CUDA index beyond the visible devices.
    """
    if device is None:
        return None
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except (RuntimeError, ValueError):
            raise ConfigError(
                f"{owner}: unknown device {device!r}; pass device=\"cpu\", \"cuda\" or \"cuda:<k>\" (e.g. \"cuda:1\")."
            ) from None
    else:
        raise ConfigError(
            f"{owner}: device must be a string such as \"cpu\" or \"cuda:1\" (or a torch.device); got "
            f"{type(device).__name__} {device!r}."
        )
    if dev.type not in DEVICE_TYPES:
        raise ConfigError(
            f"{owner}: device {str(device)!r} is not supported; pass device=\"cpu\", \"cuda\" or \"cuda:<k>\"."
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{owner}: device {str(device)!r} was asked for, but no CUDA device is visible "
                f"(torch.cuda.is_available() is False); pass device=\"cpu\"."
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(
                f"{owner}: device {str(device)!r} was asked for, but only {count} CUDA device(s) are visible "
                f"(cuda:0..cuda:{count - 1}); pass one of them or device=\"cpu\"."
            )
    return dev


def rank_device(device: Any, owner: str = "device") -> torch.device | None:
    """The device of this process in a torchrun job: ``"cuda"`` without an index becomes
    ``cuda:{LOCAL_RANK}`` (one GPU per rank on a machine); anything else as :func:`resolve_device`."""
    if isinstance(device, str) and device.strip() == "cuda":
        local = os.environ.get("LOCAL_RANK")
        if local is not None:
            try:
                index = int(local)
            except ValueError:
                raise ConfigError(f"{owner}: LOCAL_RANK must be an integer; got {local!r}.") from None
            return resolve_device(f"cuda:{index}", owner)
    return resolve_device(device, owner)
