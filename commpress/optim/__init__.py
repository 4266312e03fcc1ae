"""Optimizers with compressed state (single-node; nothing is communicated).

>>> from commpress.optim import MicroAdam, adam_state_bytes
>>> opt = MicroAdam(model.parameters(), lr=1e-3, m=10, density=0.01)
>>> print(opt.memory_report())   # bytes per tensor, beside Adam's 8 bytes per entry

- :class:`MicroAdam` (Modoranu et al., NeurIPS 2024): Adam statistics from a window of ``m`` Top-K
  gradients (int16 indices, bfloat16 values) plus a 4-bit error-feedback buffer.
- :func:`microadam_state_bytes`, :func:`adam_state_bytes`: the state sizes as formulas.
"""

from commpress.optim.microadam import (
    MemoryReport,
    MicroAdam,
    TensorMemory,
    adam_state_bytes,
    microadam_state_bytes,
)

__all__ = ["MemoryReport", "MicroAdam", "TensorMemory", "adam_state_bytes", "microadam_state_bytes"]
