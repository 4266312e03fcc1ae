import pytest
import torch

import commpress as cp


def test_identity_sends_float32_values_exactly():
    X = torch.randn(4, 9, dtype=torch.float64)
    C = cp.compressors.make("identity")
    X_hat, bits = C.apply(X, 0)
    assert torch.equal(X_hat, X.float().double())  # rounded to the float32 wire, nothing else
    assert bits.tolist() == [32 * 9 + 0] * 4 and bits.tolist() == [8 * len(p) for p in C.encode(X, 0)]


def test_identity_float64_wire_is_lossless():
    X = torch.randn(3, 5, dtype=torch.float64)
    X_hat, bits = cp.compressors.make("identity", float_bits=64).apply(X, 0)
    assert torch.equal(X_hat, X) and bits.tolist() == [320] * 3


def test_identity_theory_and_bad_parameter():
    t = cp.compressors.make("identity").theory(4, 10)
    assert (t.omega, t.delta, t.A, t.B, t.bits) == (0.0, 1.0, 0.0, 0.0, 320)
    with pytest.raises(cp.ConfigError):
        cp.compressors.make("identity", float_bits=16)
