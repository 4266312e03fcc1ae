"""Integrations of the compressors with training frameworks.

- :mod:`commpress.integrations.ddp`: PyTorch DistributedDataParallel communication hooks
  (compressed averaging, error feedback, EF21, DIANA) for any registered compressor.
"""

from commpress.integrations import ddp

__all__ = ["ddp"]
