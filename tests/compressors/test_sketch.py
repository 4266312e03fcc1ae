"""Sketches (SRHT and Gaussian): projection identities, exact expected errors, payload, scale."""

import math

import pytest
import torch

import commpress as cp
import commpress.compressors.sketch as sketch_module
from commpress._rng import private_subset_mask
from commpress.compressors import _rotation
from commpress.compressors._hadamard import fwht
from commpress.compressors.sketch import srht_constants
from commpress.errors import ConfigError

from ._stats import assert_mean, zscore


def _x(d):
    return torch.linspace(-1.0, 2.0, d, dtype=torch.float64)


def _padded(d):
    return 1 << (d - 1).bit_length()


@pytest.mark.parametrize("kind, d", [("gaussian", 20), ("srht", 16)])
def test_each_realisation_is_an_orthogonal_projection(kind, d):
    # for the SRHT at d = d' (a power of two) C(v) is the projection onto range(S) exactly
    k, T = 5, 50
    X = torch.randn(T, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    P, bits = cp.compressors.make("sketch", k=k, kind=kind, float_bits=64).apply(X, 3)
    resid = X - P
    torch.testing.assert_close((P * resid).sum(1), torch.zeros(T, dtype=torch.float64), rtol=0, atol=1e-10)
    # projecting again changes nothing: C(C(x)) = C(x) with the same S (same seed and client)
    PP, _ = cp.compressors.make("sketch", k=k, kind=kind, float_bits=64).apply(P, 3)
    torch.testing.assert_close(PP, P, rtol=1e-9, atol=1e-10)
    assert bits.tolist() == [64 * k] * T


def test_srht_message_is_the_subsampled_randomized_hadamard_transform():
    # y = sqrt(d'/k) P H D v' against the dense matrices, for a padded d (d = 11, d' = 16)
    d, k, rows, seed = 11, 4, 3, 9
    dp = _padded(d)
    X = torch.randn(rows, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    C = cp.compressors.make("sketch", k=k, float_bits=64)
    payloads = C.encode(X, seed)
    y = torch.stack([torch.frombuffer(bytearray(p), dtype=torch.float64) for p in payloads])
    signs = _rotation.rademacher(seed, "sketch/signs", rows, dp, None, shared=False, dtype=torch.float64)
    keep = private_subset_mask(seed, "sketch/subset", rows, dp, k, None)
    H = fwht(torch.eye(dp, dtype=torch.float64), normalized=True)  # orthonormal, symmetric
    Xp = torch.nn.functional.pad(X, (0, dp - d))
    full = (Xp * signs) @ H  # H D v' of every row
    expected = math.sqrt(dp / k) * full[keep].view(rows, k)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    # and the reconstruction is [D H^T P^T P H D v']_{1..d}
    out = C.decode(payloads, seed, d, dtype=torch.float64)
    torch.testing.assert_close(out, (((full * keep) @ H) * signs)[:, :d], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["gaussian", "srht"])
@pytest.mark.parametrize("scaled", [False, True])
def test_expected_error_is_exact(kind, scaled):
    # d = 12 is padded to d' = 16 for the SRHT: its constants are not the Gaussian's d/k ones
    d, k, T = 12, 3, 40_000
    dp = _padded(d) if kind == "srht" else d
    x = _x(d)
    C = cp.compressors.make("sketch", k=k, scaled=scaled, kind=kind, float_bits=64)
    X_hat, _ = C.apply(x.expand(T, d).contiguous(), 1)
    err = (X_hat - x).pow(2).sum(1, keepdim=True)
    norm2 = x.pow(2).sum().item()
    if kind == "srht":
        omega, delta = srht_constants(d, k)
        factor = omega if scaled else 1 - delta
    else:
        factor = d / k - 1 if scaled else 1 - k / d
    assert factor == pytest.approx(C.theory(4, d).omega if scaled else 1 - C.theory(4, d).delta)
    assert abs(zscore(err, factor * norm2).item()) <= 5
    if kind == "srht":  # negative controls: the unpadded and the padded naive constants are both rejected
        for wrong in ((d / k - 1, dp / k - 1) if scaled else (1 - k / d, 1 - k / dp)):
            assert abs(zscore(err, wrong * norm2).item()) > 5
    if scaled:
        assert_mean(X_hat, x)
    else:
        assert_mean(X_hat, (k / dp) * x)  # E C = (k/d') I
        with pytest.raises(AssertionError):  # negative control: the unscaled sketch is biased
            assert_mean(X_hat, x)
        if kind == "srht":
            with pytest.raises(AssertionError):  # ... and its mean is k/d', not k/d
                assert_mean(X_hat, (k / d) * x)


def test_srht_constants_formulas():
    for d, k in [(16, 4), (64, 7), (1024, 103)]:  # d = d': the Gaussian's constants
        omega, delta = srht_constants(d, k)
        assert omega == pytest.approx(d / k - 1) and delta == pytest.approx(k / d)
    d, k, dp = 40, 8, 64
    omega, delta = srht_constants(d, k)
    assert omega == pytest.approx((d - 1) * (dp - k) / (k * (dp - 1)))
    assert d / k - 1 < omega < dp / k - 1
    rho = k / dp
    assert 1 - delta == pytest.approx(1 - 2 * rho + rho**2 * (1 + omega))  # e = E||rho C_s(v) - v||^2
    assert k / dp < delta < 1
    assert srht_constants(1, 1) == (0.0, 1.0)


def _flat_error_spread():
    """Sample variance of ||C(v)||^2 / ||v||^2 for the flat v = 1 (d = d' = 16, k = 4) over 2000 clients."""
    d, k, T = 16, 4, 2000
    v = torch.ones(T, d, dtype=torch.float64)
    X_hat, _ = cp.compressors.make("sketch", k=k, float_bits=64).apply(v, 2)
    r = X_hat.pow(2).sum(1) / d
    return r.mean().item(), r.var().item()


def test_srht_signs_make_every_draw_concentrate(monkeypatch):
    # ||C(v)||^2 = ||P H D v||^2 has mean (k/d')||v||^2 whatever the signs; with random signs the flat
    # vector's energy is spread over all transformed coordinates (measured variance of the ratio
    # 0.024), without them H v = 4 e_0 and the ratio is 0 or 1 (variance rho(1 - rho) = 0.1875).
    # r lies in [0, 1], so the sample variance of T = 2000 draws has standard error <= sqrt(var / T):
    # <= 0.004 at 0.024 and <= 0.01 at 0.1875; the threshold 0.1 is > 5 of them from both.
    mean, var = _flat_error_spread()
    assert abs(mean - 0.25) < 0.02 and var < 0.1

    def no_signs(seed, tag, n, size, clients, *, shared, dtype, device="cpu", out=None):
        rows = 1 if shared else (n if clients is None else int(clients.numel()))
        ones = torch.ones(rows, size, dtype=dtype, device=device)
        return out.copy_(ones) if out is not None else ones

    monkeypatch.setattr(_rotation, "rademacher", no_signs)  # negative control: drop D
    monkeypatch.setattr(sketch_module, "rademacher", no_signs)
    mean, var = _flat_error_spread()
    assert abs(mean - 0.25) < 0.05 and var > 0.1


@pytest.mark.parametrize("kind", ["gaussian", "srht"])
def test_shared_sketch_is_linear_and_summable(kind):
    d, k = 30, 6
    A = torch.randn(4, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    B = torch.randn(4, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    C = cp.compressors.make("sketch", k=k, shared=True, kind=kind, float_bits=64)
    assert C.summable and C.correlated and not cp.compressors.make("sketch", kind=kind).summable
    torch.testing.assert_close(C.apply(A + B, 5)[0], C.apply(A, 5)[0] + C.apply(B, 5)[0], rtol=1e-10, atol=1e-10)
    # the messages themselves add up: the server may sum them before decoding
    msgs = [torch.stack([torch.frombuffer(bytearray(p), dtype=torch.float64) for p in C.encode(M, 5)]) for M in (A, B)]
    summed = [bytes(row.numpy().tobytes()) for row in msgs[0] + msgs[1]]
    decoded = C.decode(summed, 5, d, dtype=torch.float64)
    torch.testing.assert_close(decoded, C.apply(A + B, 5)[0], rtol=1e-10, atol=1e-10)
    same = A[:1].expand(4, d).contiguous()
    shared, _ = C.apply(same, 5)
    private, _ = cp.compressors.make("sketch", k=k, kind=kind, float_bits=64).apply(same, 5)
    torch.testing.assert_close(shared, shared[:1].expand_as(shared), rtol=0, atol=1e-12)
    assert not torch.allclose(private[0], private[1])


def test_k_equal_d_is_exact_and_defaults():
    X = torch.randn(3, 7, dtype=torch.float64)
    G = cp.compressors.make("sketch", k=7, kind="gaussian", float_bits=64)
    torch.testing.assert_close(G.apply(X, 0)[0], X, rtol=1e-9, atol=1e-10)
    X8 = torch.randn(3, 8, dtype=torch.float64)  # the SRHT is exact at k = d = d'
    torch.testing.assert_close(cp.compressors.make("sketch", k=8, float_bits=64).apply(X8, 0)[0], X8,
                               rtol=1e-12, atol=1e-12)
    C = cp.compressors.make("sketch")
    assert C.kind == "srht" and not C.scaled and not C.shared
    assert [C.k_for(d) for d in (1, 5, 10, 11, 30, 31)] == [1, 1, 1, 2, 3, 4]  # max(1, ceil(d/10))
    assert torch.equal(C.apply(torch.zeros(2, 9), 0)[0], torch.zeros(2, 9))
    torch.testing.assert_close(C.apply(X[:, :1], 0)[0], X[:, :1])  # d = 1: exact


def test_payload_is_32k_bits_and_only_the_sketch():
    d, k = 100, 10  # padded to 128: still k float32 numbers, nothing for the subset or the signs
    C = cp.compressors.make("sketch", k=k)
    X = torch.randn(5, d)
    _, bits = C.apply(X, 4)
    assert bits.tolist() == [32 * k] * 5 and [len(p) for p in C.encode(X, 4)] == [4 * k] * 5
    assert C.theory(5, d).bits == 32 * k
    assert cp.compressors.make("sketch", k=k, float_bits=64).apply(X.double(), 4)[1].tolist() == [64 * k] * 5


def test_theory():
    t = cp.compressors.make("sketch", k=8, kind="gaussian").theory(10, 40)
    assert t.kind == "contractive" and t.delta == pytest.approx(0.2) and t.bits == 256
    u = cp.compressors.make("sketch", k=8, scaled=True, kind="gaussian").theory(10, 40)
    assert u.kind == "unbiased" and u.omega == pytest.approx(4.0) and u.A == pytest.approx(0.4) and u.B == 0
    g_shared = cp.compressors.make("sketch", k=8, scaled=True, shared=True, kind="gaussian")
    assert g_shared.theory(10, 40).A == pytest.approx(4.0)
    omega, delta = srht_constants(40, 8)
    s = cp.compressors.make("sketch", k=8).theory(10, 40)
    assert s.kind == "contractive" and s.delta == pytest.approx(delta) and s.bits == 256
    su = cp.compressors.make("sketch", k=8, scaled=True).theory(10, 40)
    assert su.omega == pytest.approx(omega) and su.A == pytest.approx(omega / 10) and su.B == 0
    p = cp.compressors.make("sketch", k=8, scaled=True).theory(10, 64)
    assert p.omega == pytest.approx(7.0) and p.extras["padded_d"] == 64


def test_memory_guard_is_for_the_gaussian_kind_only_and_k_checks_at_call_time():
    with pytest.raises(ConfigError, match="O\\(n d k\\)"):
        cp.compressors.make("sketch", kind="gaussian").apply(torch.zeros(16, 1 << 14), 0)
    # the SRHT has no O(n d k) cost: 4 * 2^18 * 26215 ~ 2.7e10 >> 2^27 Gaussian entries would be refused
    C = cp.compressors.make("sketch")
    X = torch.randn(4, 1 << 18, generator=torch.Generator().manual_seed(0))
    X_hat, bits = C.apply(X, 0)
    k = C.k_for(1 << 18)
    assert X_hat.shape == X.shape and X_hat.dtype == torch.float32 and bits.tolist() == [32 * k] * 4
    ratio = (X_hat.double().pow(2).sum(1) / X.double().pow(2).sum(1))  # = ||P H D x||^2 / ||x||^2, about k/d
    assert ((ratio - k / (1 << 18)).abs() < 0.01).all()
    with pytest.raises(ConfigError, match="1 <= k <= d"):
        cp.compressors.make("sketch", k=5).apply(torch.zeros(2, 4), 0)


@pytest.mark.parametrize(
    "params", [{"k": 0}, {"ratio": 2.0}, {"k": 1, "ratio": 0.5}, {"kind": "count"}, {"shared": "no"}, {"scaled": None}]
)
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("sketch", **params)


@pytest.mark.parametrize(
    "params", [{"scaled": True}, {"shared": True}, {"scaled": True, "shared": True, "float_bits": 64}]
)
def test_srht_configurations_pass_the_conformance_suite(params):
    # d = 13 is padded to 16: the declared (exact) constants are tested as bounds by the suite
    from commpress.testing import check_compressor

    check_compressor(cp.compressors.make("sketch", k=3, **params), n=4, d=13, trials=400)
