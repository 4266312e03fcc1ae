"""Compressors: unbiased, contractive and correlated, each with an honest packed payload.

>>> import commpress as cp
>>> C = cp.compressors.make("cq")
>>> X_hat, bits = C.apply(X, seed=0)        # fast path, bits = 8 * len(payload)
>>> payloads = C.encode(X, seed=0)          # the real wire messages
>>> C.decode(payloads, seed=0, d=X.shape[1])  # == X_hat

Writing your own: subclass :class:`Compressor` (its docstring is the how-to) with the names
exported here: ``layout``/``encode_message``/``decode_message`` and ``theory`` to implement,
:class:`Field` with ``UINT``/``F32``/``F64`` for the wire format, :func:`uniform_layout`,
:func:`padded_bits`, :func:`f32`/:func:`f32_up` for float32 headers, :class:`CompressorTheory`
for the constants, :func:`register` to give it a name; check it with
:func:`commpress.testing.check_compressor`.
"""

from commpress.compressors.base import (
    Compressor,
    CompressorTheory,
    Context,
    Layout,
    Message,
    f32,
    f32_up,
    padded_bits,
    uniform_layout,
)
from commpress.compressors.registry import describe, get, make, names, register
from commpress.wire import F32, F64, UINT, Field

__all__ = [
    "Compressor", "CompressorTheory", "Context", "Layout", "Message", "Field", "UINT", "F32", "F64",
    "uniform_layout", "padded_bits", "f32", "f32_up",
    "describe", "get", "make", "names", "register", "compose",
]


from commpress.compressors import compose as _compose_module  # noqa: E402,F401  (import before the function shadows it)


def compose(outer, inner):
    """``outer ∘ inner`` as one compressor: apply ``inner``, then ``outer`` (names or instances)."""
    from commpress.compressors.compose import Compose

    return Compose(outer=outer, inner=inner)
