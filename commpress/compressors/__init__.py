"""Compressors: unbiased, contractive and correlated, each with an honest packed payload.

>>> import commpress as cp
>>> C = cp.compressors.make("cq")
>>> X_hat, bits = C.apply(X, seed=0)        # fast path, bits = 8 * len(payload)
>>> payloads = C.encode(X, seed=0)          # the real wire messages
>>> C.decode(payloads, seed=0, d=X.shape[1])  # == X_hat
"""

from commpress.compressors.base import Compressor, CompressorTheory, Context
from commpress.compressors.registry import describe, get, make, names, register

__all__ = ["Compressor", "CompressorTheory", "Context", "describe", "get", "make", "names", "register", "compose"]


from commpress.compressors import compose as _compose_module  # noqa: E402,F401  (import before the function shadows it)


def compose(outer, inner):
    """``outer ∘ inner`` as one compressor: apply ``inner``, then ``outer`` (names or instances)."""
    from commpress.compressors.compose import Compose

    return Compose(outer=outer, inner=inner)
