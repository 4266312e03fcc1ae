"""Integrations of the compressors with training frameworks.

- :mod:`commpress.integrations.ddp`: PyTorch DistributedDataParallel communication hooks
  (compressed averaging, error feedback, EF21, DIANA) for any registered compressor.
- :mod:`commpress.integrations.fsdp`: a compressed reduce-scatter for FSDP2 (``fully_shard``), with
  the same methods, per-shard memories and checkpoints.
- :mod:`commpress.integrations.advise`: will compression pay on this link? A DDP step predicted per
  compressor (``commpress advise``).
- :mod:`commpress.integrations.netns`: a slow link on this machine (network namespaces, veth, tc)
  to run DDP across.

The submodules are imported on first use (PEP 562): ``commpress.integrations.netns`` loads no torch.
"""

from __future__ import annotations

import importlib

__all__ = ["ddp", "fsdp"]

_SUBMODULES = frozenset({"advise", "ddp", "fsdp", "netns"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it here too
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)
