"""Random dithering (spec compressors.md §2): unbiasedness, the exact error, omega, edges, Elias wire."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import commpress as cp
from commpress.errors import CommpressError, ConfigError, InputError, PayloadError

from ._dither_exact import dithering_error
from ._stats import assert_mean

T = 40_000
# float32-representable entries (so the p = inf header is exact), mixed magnitudes, a zero.
X_TEST = torch.tensor([0.5, -0.25, 0.125, 1.0, -0.75, 0.3, 0.0, -0.6, 0.05, 0.9, -0.35, 0.2], dtype=torch.float64)
CASES = [(2, 1), (2, 3), (1, 2), ("inf", 1), ("inf", 4), (3, 2)]


def _samples(x: torch.Tensor, seed: int, **params) -> torch.Tensor:
    C = cp.compressors.make("dithering", **params)
    X_hat, _ = C.apply(x.expand(T, x.numel()).contiguous(), seed=seed)
    return X_hat


@pytest.mark.parametrize("p, s", CASES)
def test_unbiased(p, s):
    assert_mean(_samples(X_TEST, 1, p=p, s=s), X_TEST)


@pytest.mark.parametrize("p, s", CASES)
def test_error_is_the_exact_phi_formula(p, s):
    X_hat = _samples(X_TEST, 2, p=p, s=s)
    err = (X_hat - X_TEST).pow(2).sum(dim=1)
    exact = dithering_error(X_TEST, p, s)
    assert_mean(err, exact)
    omega = cp.compressors.make("dithering", p=p, s=s).theory(1, X_TEST.numel()).omega
    assert exact <= omega * X_TEST.pow(2).sum().item()


def test_negative_controls():
    X_hat = _samples(X_TEST, 3, p=2, s=1)
    with pytest.raises(AssertionError):  # a 5% bias on every coordinate is seen (z ~ 11 at x = 1;
        assert_mean(X_hat, X_TEST * 1.05)   # a 2% bias, z ~ 4.4 there, is below the z = 5 bar)
    err = (X_hat - X_TEST).pow(2).sum(dim=1)
    with pytest.raises(AssertionError):  # the s = 2 formula is not the s = 1 error
        assert_mean(err, dithering_error(X_TEST, 2, 2))


def test_float32_input_is_unbiased_with_the_same_error():
    x32 = X_TEST.float()
    X_hat = _samples(x32, 4, p=2, s=2)
    assert X_hat.dtype == torch.float32
    assert_mean(X_hat.double(), x32.double())
    assert_mean((X_hat.double() - x32.double()).pow(2).sum(1), dithering_error(x32.double(), 2, 2))


def test_levels_are_on_the_grid_and_p_inf_keeps_the_max():
    s = 4
    X_hat = _samples(X_TEST, 5, p="inf", s=s)
    scaled = X_hat * s  # N = 1 exactly here
    assert torch.equal(scaled, scaled.round())
    assert torch.all(X_hat[:, 3] == 1.0)  # the largest coordinate is exact
    assert torch.all(X_hat[:, 6] == 0.0)  # zeros stay zero
    lo = torch.floor(X_TEST.abs() * s) / s
    assert torch.all((X_hat.abs() >= lo - 1e-12) & (X_hat.abs() <= lo + 1 / s + 1e-12))  # neighbours only


def test_theory_values():
    d, n = 100, 4
    th = lambda **kw: cp.compressors.make("dithering", **kw).theory(n, d)  # noqa: E731
    assert th().omega == pytest.approx(math.sqrt(d) - 1)  # p = 2, s = 1: exact supremum
    assert th(p=1).omega == pytest.approx(d - 1)
    assert th(p="inf").omega == pytest.approx((math.sqrt(d) - 1) / 2)
    assert th(s=3).omega == pytest.approx(min(d / 36, math.sqrt(d) / 3))
    assert th(p=1.5, s=2).omega == pytest.approx(min(d ** (2 / 1.5) / 16, d ** (1 / 1.5) / 2))
    assert th(p=3, s=1).omega == pytest.approx(min(d / 4, math.sqrt(d)))
    t = th(s=3)
    assert t.kind == "unbiased" and t.A == pytest.approx(t.omega / n) and t.B == 0
    assert t.bits == 8 * math.ceil((32 + d * 3) / 8)


def test_omega_is_attained_by_the_all_ones_vector():
    d = 16
    x = torch.ones(d, dtype=torch.float64)
    omega = cp.compressors.make("dithering").theory(1, d).omega
    assert dithering_error(x, 2, 1) == pytest.approx(omega * d, rel=1e-6)
    err = (_samples(x, 6) - x).pow(2).sum(1)
    assert_mean(err, dithering_error(x, 2, 1))


@pytest.mark.parametrize("p, s", CASES)
def test_d1_is_exact_and_zero_is_zero(p, s):
    C = cp.compressors.make("dithering", p=p, s=s)
    X = torch.tensor([[0.375], [-3.0], [0.0]], dtype=torch.float64)  # float32-representable
    X_hat, bits = C.apply(X, seed=0)
    assert torch.equal(X_hat, X)
    Z_hat, _ = C.apply(torch.zeros(2, 9), seed=0)
    assert torch.equal(Z_hat, torch.zeros(2, 9))


def test_extreme_magnitudes():
    C = cp.compressors.make("dithering")
    big = torch.full((1, 4), 1e30, dtype=torch.float32)  # squares overflow float32
    tiny = torch.full((T, 4), 1e-30, dtype=torch.float32)  # squares underflow float32
    X_hat, _ = C.apply(big, seed=0)
    assert torch.isfinite(X_hat).all()
    assert all(v == 0.0 or v == pytest.approx(2e30, rel=1e-6) for v in X_hat.flatten().tolist())
    X_hat, _ = C.apply(tiny, seed=0)
    assert_mean(X_hat.double(), tiny[0].double())
    with pytest.raises(InputError, match="float32"):
        C.apply(torch.full((1, 2), 1e39, dtype=torch.float64), seed=0)


@pytest.mark.parametrize(
    "params", [{"p": 0.5}, {"p": "two"}, {"s": 0}, {"s": 2.5}, {"s": 2**25}, {"elias": "yes"}, {"q": 1}]
)
def test_rejects_bad_parameters(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("dithering", **params)


# ---------------------------------------------------------------- QSGD's Elias wire format
@pytest.mark.parametrize("p, s", [(2, 1), (2, 5), ("inf", 2)])
@pytest.mark.parametrize("shape", [(5, 37), (1, 1), (3, 200)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_elias_round_trip_and_exact_bits(p, s, shape, dtype):
    C = cp.compressors.make("dithering", p=p, s=s, elias=True)
    X = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[1]), dtype=dtype)
    X[0, : shape[1] // 2] = 0.0
    X_hat, bits = C.apply(X, seed=3)
    fixed, _ = cp.compressors.make("dithering", p=p, s=s).apply(X, seed=3)
    assert torch.equal(X_hat, fixed)  # same draws, another wire format
    payloads = C.encode(X, seed=3)
    assert bits.tolist() == [8 * len(b) for b in payloads]
    assert torch.equal(C.decode(payloads, seed=3, d=shape[1], dtype=dtype), X_hat)
    rows = list(range(shape[0]))[::-1]
    sub = C.encode(X[rows], seed=3, clients=rows, n=shape[0])
    assert sub == [payloads[r] for r in rows]


def test_elias_is_shorter_for_sparse_quantization():
    d = 4096
    X = torch.randn(4, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, bits_elias = cp.compressors.make("qsgd", elias=True).apply(X, seed=1)
    _, bits_fixed = cp.compressors.make("qsgd").apply(X, seed=1)
    # s = 1: about ||x||_1/||x||_2 ~ 0.8 sqrt(d) nonzeros of ~ 20 bits each, far below 2d
    assert torch.all(bits_elias < bits_fixed / 4)
    t = cp.compressors.make("qsgd", elias=True).theory(4, d)
    assert t.extras["bits_data_dependent"] and t.bits <= t.extras["bits_worst_case"]
    assert float(bits_elias.double().mean()) <= t.extras["bits_paper_bound"]


def test_elias_rejects_bad_payloads():
    C = cp.compressors.make("dithering", s=3, elias=True)
    X = torch.randn(3, 29, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    good = C.encode(X, seed=9)
    for bad in (good[0][:-1], good[0] + b"\x00", good[0][:4], b"", b"\x00\x00\x80\xff\x00"):
        with pytest.raises(PayloadError):
            C.decode([bad] + good[1:], seed=9, d=29, dtype=torch.float64)
    negative_norm = bytes([0, 0, 128, 191]) + good[0][4:]  # -1.0f
    with pytest.raises(PayloadError, match="negative"):
        C.decode([negative_norm] + good[1:], seed=9, d=29)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_elias_decoder_survives_hostile_bytes(data):
    C = cp.compressors.make("qsgd", s=3, elias=True)
    n, d = 3, 21
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    payloads = list(C.encode(X, 4))
    row = data.draw(st.integers(0, n - 1))
    mode = data.draw(st.sampled_from(["random", "mutate", "extend", "truncate"]))
    if mode == "random":
        payloads[row] = data.draw(st.binary(max_size=64))
    elif mode == "extend":
        payloads[row] += data.draw(st.binary(min_size=1, max_size=8))
    elif mode == "truncate":
        payloads[row] = payloads[row][: data.draw(st.integers(0, len(payloads[row]) - 1))]
    else:
        raw = bytearray(payloads[row])
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        payloads[row] = bytes(raw)
    try:
        out = C.decode(payloads, 4, d, dtype=torch.float64)
    except CommpressError:
        return
    assert out.shape == (n, d) and torch.isfinite(out).all()
