"""float16 / bfloat16 input: every registered compressor compresses it as its (exact) float32 upcast:
the same payload bytes and bits, the output rounded back to the input's dtype, and ``decode`` to
a half dtype equals ``apply``'s rows. A wrong dtype (integers, complex) is still refused."""

from __future__ import annotations

import pytest
import torch

import commpress as cp
from commpress.errors import InputTypeError


@pytest.mark.parametrize("name", cp.compressors.names())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_is_compressed_as_its_float32_upcast(name, dtype):
    C = cp.compressors.make(name)
    n, d, seed = 5, 33, 7
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(1)).to(dtype)
    X_hat, bits = C.apply(X, seed)
    ref, ref_bits = C.apply(X.float(), seed)
    assert X_hat.dtype == dtype and X_hat.shape == X.shape
    assert torch.equal(X_hat, ref.to(dtype)) and torch.equal(bits, ref_bits)
    payloads = C.encode(X, seed)
    assert payloads == C.encode(X.float(), seed)
    assert torch.equal(C.decode(payloads, seed, d, n=n, dtype=dtype), X_hat)


def test_other_dtypes_are_still_refused():
    C = cp.compressors.make("qsgd")
    for bad in (torch.int32, torch.complex64):
        with pytest.raises(InputTypeError, match="float32, float64, float16 or bfloat16"):
            C.apply(torch.ones(2, 3).to(bad), 0)
    with pytest.raises(InputTypeError, match="decode dtype"):
        C.decode(C.encode(torch.ones(2, 3), 0), 0, 3, dtype=torch.int32)
