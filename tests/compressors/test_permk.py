"""PermK against its exact closed forms (spec compressors.md §9, §18), both cases, n not dividing d."""

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError

from ._stats import assert_mean, zscore


def _data(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + 0.7  # nonzero mean: B matters


def _runs(C, X, T):
    return torch.stack([C.apply(X, s)[0] for s in range(T)])  # (T, n, d)


def _permk_n_ge_d_mse(X, q):
    n = X.shape[0]
    sigma2 = X.pow(2).mean(0) - X.mean(0).pow(2)
    return (((n - q) / (q * (n - 1))) * sigma2).sum().item()


@pytest.mark.parametrize("n,d,shuffle", [(4, 10, False), (4, 10, True), (7, 3, False), (7, 3, True)])
def test_rows_are_individually_unbiased(n, d, shuffle):
    X = _data(n, d)
    C = cp.compressors.make("permk", shuffle_coordinates=shuffle, float_bits=64)
    T = 1500
    S = _runs(C, X, T)
    assert_mean(S.reshape(T, -1), X.reshape(-1))


@pytest.mark.parametrize("n,d,shuffle", [(4, 10, False), (3, 7, True)])
def test_case_d_ge_n_aggregate_mse_is_exactly_ab_1_1(n, d, shuffle):
    X = _data(n, d, seed=1)
    C = cp.compressors.make("permk", shuffle_coordinates=shuffle, float_bits=64)
    T = 1500
    errs = (_runs(C, X, T).mean(1) - X.mean(0)).pow(2).sum(1)
    exact = X.pow(2).sum(1).mean().item() - X.mean(0).pow(2).sum().item()
    assert abs(zscore(errs, exact).item()) <= 5
    # negative control: the formula of independent per-client blocks ((n-1)/n^2 sum ||a_i||^2) is rejected
    wrong = (n - 1) / n**2 * X.pow(2).sum().item()
    assert abs(zscore(errs, wrong).item()) > 5
    t = C.theory(n, d)
    assert (t.kind, t.omega, t.A, t.B) == ("correlated", n - 1, 1.0, 1.0)


@pytest.mark.parametrize("n,d", [(7, 3), (9, 3)])
def test_case_n_gt_d_aggregate_mse_is_the_sampling_formula(n, d):
    X = _data(n, d, seed=2)
    C = cp.compressors.make("permk", float_bits=64)
    T = 2000
    errs = (_runs(C, X, T).mean(1) - X.mean(0)).pow(2).sum(1)
    q = torch.tensor([n // d + (j < n % d) for j in range(d)], dtype=torch.float64)
    exact = _permk_n_ge_d_mse(X, q)
    assert abs(zscore(errs, exact).item()) <= 5
    t = C.theory(n, d)
    A = ((n - q) / (q * (n - 1))).max().item()
    assert t.A == pytest.approx(A) and t.B == pytest.approx(A)
    assert t.omega == pytest.approx(n / (n // d) - 1)
    if n % d == 0:
        assert t.A == pytest.approx((d - 1) / (n - 1)) and t.omega == pytest.approx(d - 1)


def test_case_n_gt_d_with_shuffled_coordinates_averages_the_multiplicities():
    n, d, T = 8, 3, 2000  # q = (3, 3, 2) before shuffling
    X = _data(n, d, seed=3)
    C = cp.compressors.make("permk", shuffle_coordinates=True, float_bits=64)
    errs = (_runs(C, X, T).mean(1) - X.mean(0)).pow(2).sum(1)
    q = torch.tensor([3.0, 3.0, 2.0], dtype=torch.float64)
    c = ((n - q) / (q * (n - 1))).mean().item()
    sigma2 = (X.pow(2).mean(0) - X.mean(0).pow(2)).sum().item()
    assert abs(zscore(errs, c * sigma2).item()) <= 5
    assert C.theory(n, d).A == pytest.approx(c)


@pytest.mark.parametrize("n,d,shuffle", [(4, 10, False), (6, 37, True), (7, 3, False), (9, 4, True), (5, 5, False)])
@pytest.mark.parametrize("float_bits", [32, 64])
def test_identical_inputs_are_reconstructed_exactly_in_the_mean(n, d, shuffle, float_bits):
    x = torch.randn(d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    C = cp.compressors.make("permk", shuffle_coordinates=shuffle, float_bits=float_bits)
    target = x.float().double() if float_bits == 32 else x  # the values travel as float32
    for seed in range(20):
        mean = C.apply(x.expand(n, d).contiguous(), seed)[0].mean(0)
        torch.testing.assert_close(mean, target, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("n,d", [(4, 10), (7, 3)])
def test_per_client_error_is_exact(n, d):
    x = torch.linspace(-1.0, 2.0, d, dtype=torch.float64)
    C = cp.compressors.make("permk", float_bits=64)
    T = 1500
    sq = (_runs(C, x.expand(n, d).contiguous(), T) - x).pow(2).sum(2)  # (T, n)
    errs = sq[:, 0]  # client 0 over the seeds
    if d >= n:
        exact = (n - 1) * x.pow(2).sum().item()
    else:
        q = torch.tensor([n // d + (j < n % d) for j in range(d)], dtype=torch.float64)
        exact = ((n / q - 1) * x.pow(2)).sum().item()
    assert abs(zscore(errs, exact).item()) <= 5
    # every block (slot) is used once per round, so the mean over clients is the exact value
    torch.testing.assert_close(sq.mean(1), torch.full((T,), exact, dtype=torch.float64))


@pytest.mark.parametrize("shuffle", [False, True])
def test_unscaled_is_contractive_with_delta_one_over_n(shuffle):
    n, d, T = 4, 10, 1500
    x = torch.linspace(-1.0, 2.0, d, dtype=torch.float64)
    C = cp.compressors.make("permk", scaled=False, shuffle_coordinates=shuffle, float_bits=64)
    errs = (_runs(C, x.expand(n, d).contiguous(), T) - x).pow(2).sum(2)[:, 0]
    assert abs(zscore(errs, (1 - 1 / n) * x.pow(2).sum().item()).item()) <= 5
    t = C.theory(n, d)
    assert t.kind == "contractive" and t.delta == pytest.approx(1 / n)
    # the unscaled sum over clients is exactly x
    for s in range(5):
        torch.testing.assert_close(C.apply(x.expand(n, d).contiguous(), s)[0].sum(0), x, rtol=0, atol=0)


def test_n_1_and_d_1_are_the_identity():
    C = cp.compressors.make("permk", float_bits=64)
    X = _data(1, 9)
    assert torch.equal(C.apply(X, 3)[0], X)
    X = _data(6, 1)
    assert torch.equal(C.apply(X, 3)[0], X)
    assert C.theory(1, 9).omega == 0 and C.theory(6, 1).omega == 0


def test_blocks_partition_the_coordinates_and_bits_are_the_kept_values():
    n, d = 4, 10  # blocks of 3, 3, 2, 2
    C = cp.compressors.make("permk")
    X = _data(n, d) + 5.0  # no zero entries
    for seed in range(10):
        X_hat, bits = C.apply(X, seed)
        support = X_hat != 0
        assert torch.equal(support.sum(0), torch.ones(d, dtype=torch.int64))  # each coordinate kept once
        assert sorted(support.sum(1).tolist()) == [2, 2, 3, 3]
        assert torch.equal(bits, 32 * support.sum(1))
        if seed == 0:
            assert not torch.equal(C.apply(X, 1)[0] != 0, support) or not torch.equal(C.apply(X, 2)[0] != 0, support)
    assert C.theory(n, d).bits == pytest.approx(32 * d / n)
    assert cp.compressors.make("permk", float_bits=64).theory(7, 3).bits == 64


def test_shuffled_blocks_are_not_contiguous():
    n, d = 2, 40
    X = torch.ones(n, d, dtype=torch.float64)
    plain = cp.compressors.make("permk").apply(X, 0)[0][0] != 0
    shuffled = cp.compressors.make("permk", shuffle_coordinates=True).apply(X, 0)[0][0] != 0
    assert plain.nonzero().flatten().diff().eq(1).all()
    assert not shuffled.nonzero().flatten().diff().eq(1).all()


@pytest.mark.parametrize(
    "params", [{"scaled": "yes"}, {"scaled": 1}, {"shuffle_coordinates": None}, {"float_bits": 16}],
    ids=["scaled-str", "scaled-int", "shuffle-none", "bits-16"],
)
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError) as info:
        cp.compressors.make("permk", **params)
    assert str(next(iter(params))) in str(info.value)
