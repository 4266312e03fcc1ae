"""The contract checks of test_contract.py, for compressor instances with non-default parts (wrappers)."""

from __future__ import annotations

import pytest
import torch

from commpress.errors import PayloadError


def check_contract(C, shapes=((6, 37), (1, 5), (4, 1), (9, 4)), seed=7):
    """bits == 8 len(payload), decode(encode) == apply, subsets, dtype, corrupted payloads rejected."""
    for n, d in shapes:
        for dtype in (torch.float32, torch.float64):
            X = torch.randn(n, d, generator=torch.Generator().manual_seed(n * 100 + d), dtype=dtype)
            X_hat, bits = C.apply(X, seed)
            assert X_hat.dtype == dtype and X_hat.shape == X.shape and torch.isfinite(X_hat).all()
            payloads = C.encode(X, seed)
            assert bits.tolist() == [8 * len(p) for p in payloads]
            assert torch.equal(C.decode(payloads, seed, d, dtype=dtype), X_hat)
            idx = torch.tensor([n - 1, 0] if n > 1 else [0])
            X_sub, bits_sub = C.apply(X[idx], seed, clients=idx, n=n)
            assert torch.equal(X_sub, X_hat[idx]) and torch.equal(bits_sub, bits[idx])
            mine = C.encode(X[idx], seed, clients=idx, n=n)
            assert torch.equal(C.decode(mine, seed, d, clients=idx, n=n, dtype=dtype), X_hat[idx])
            for r in range(n):
                if payloads[r]:
                    cut = list(payloads)
                    cut[r] = cut[r][:-1]
                    with pytest.raises(PayloadError):
                        C.decode(cut, seed, d, dtype=dtype)
                longer = list(payloads)
                longer[r] = longer[r] + b"\x00"
                with pytest.raises(PayloadError):
                    C.decode(longer, seed, d, dtype=dtype)
    Z = torch.zeros(3, 8, dtype=torch.float64)
    assert torch.equal(C.apply(Z, seed)[0], Z) and torch.equal(C.decode(C.encode(Z, seed), seed, 8, dtype=Z.dtype), Z)
