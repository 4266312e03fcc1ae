"""QSGD (spec compressors.md §2): p = 2 dithering; theory constants; the Elias option."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError

from ._dither_exact import dithering_error
from ._stats import assert_mean

T = 40_000
# the largest entry is float32-representable: the p = inf header is then exact
X_TEST = torch.tensor([0.875, -0.1, 0.4, 0.0, -0.7, 0.25, 0.05, -0.33], dtype=torch.float64)


@pytest.mark.parametrize("s", [1, 2, 7])
def test_unbiased_with_the_exact_error(s):
    C = cp.compressors.make("qsgd", s=s)
    X_hat, _ = C.apply(X_TEST.expand(T, X_TEST.numel()).contiguous(), seed=s)
    assert_mean(X_hat, X_TEST)
    err = (X_hat - X_TEST).pow(2).sum(1)
    assert_mean(err, dithering_error(X_TEST, 2, s))
    with pytest.raises(AssertionError):  # negative control: the p = inf error is another number
        assert_mean(err, dithering_error(X_TEST, "inf", s))


def test_theory_sharp_and_paper_omegas():
    n, d = 10, 400
    for s in (1, 2, 3, 30):
        t = cp.compressors.make("qsgd", s=s).theory(n, d)
        bound = min(d / (4 * s * s), math.sqrt(d) / s)
        assert t.extras["omega_bound"] == pytest.approx(bound)
        assert t.extras["omega_paper"] == pytest.approx(min(d / s**2, math.sqrt(d) / s))
        assert t.extras["A_paper"] == pytest.approx(t.extras["omega_paper"] / n)  # theory's "paper" convention
        assert t.omega == pytest.approx(math.sqrt(d) - 1 if s == 1 else bound)
        assert t.omega <= t.extras["omega_bound"] <= t.extras["omega_paper"]
        assert t.kind == "unbiased" and t.A == pytest.approx(t.omega / n) and t.B == 0
        assert t.bits == 8 * math.ceil((32 + d * (1 + s.bit_length())) / 8)


def test_params_and_registry():
    C = cp.compressors.make("qsgd", s=4, elias=True)
    assert C.params() == {"s": 4, "elias": True} and C.p == 2
    with pytest.raises(ConfigError, match="no parameter"):
        cp.compressors.make("qsgd", p=1)
    with pytest.raises(ConfigError):
        cp.compressors.make("qsgd", s=0)


def test_elias_round_trip_matches_apply():
    X = torch.randn(6, 300, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    X[2] = 0.0
    for s in (1, 16):
        C = cp.compressors.make("qsgd", s=s, elias=True)
        X_hat, bits = C.apply(X, seed=11)
        payloads = C.encode(X, seed=11)
        assert bits.tolist() == [8 * len(b) for b in payloads]
        assert torch.equal(C.decode(payloads, seed=11, d=300, dtype=torch.float64), X_hat)
        assert torch.equal(X_hat[2], torch.zeros(300, dtype=torch.float64))
        assert bits[2] == 40  # a zero row: the 32-bit norm and w(1) = "0", padded to 5 bytes
