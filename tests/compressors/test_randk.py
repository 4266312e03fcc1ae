"""RandK against its exact errors (compressors.md §12.1, §18) and the keyed subset sampler."""

import math

import pytest
import torch

import commpress as cp
import commpress._rng as rng
from commpress.compressors._sparse import index_fields, mask_from_message
from commpress.errors import ConfigError, PayloadError

from ._stats import assert_mean, zscore


def _x(d):
    return torch.linspace(-1.0, 1.0, d, dtype=torch.float64) + 0.3


# ---------------------------------------------------------------------- the subset sampler
@pytest.mark.parametrize("d", [256, 300, 1000, 4096])
def test_window_selection_equals_the_exact_sort(d):
    for k in sorted({1, 2, d // 10, d // 2, d - 1}):
        keys = torch.randint(-(2**31), 2**31 - 1, (40, d), dtype=torch.int32, generator=torch.Generator().manual_seed(k))
        mask = rng._smallest_keys_mask(keys, k)
        assert torch.equal(mask, rng._exact_smallest(keys, k)), (d, k)
        assert torch.equal(rng.row_counts(mask), torch.full((40,), k))


def test_rows_whose_kth_key_misses_the_window_are_redone_exactly(monkeypatch):
    monkeypatch.setattr(rng, "_WINDOW_SIGMAS", 0.05)  # a narrow window: many rows fall back
    keys = torch.randint(-(2**31), 2**31 - 1, (60, 2000), dtype=torch.int32, generator=torch.Generator().manual_seed(1))
    for k in [3, 200, 1000]:
        assert torch.equal(rng._smallest_keys_mask(keys, k), rng._exact_smallest(keys, k))


def test_ties_go_to_the_lower_index():
    keys = torch.randint(-3, 3, (30, 1000), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    for k in [1, 100, 500, 999]:
        mask = rng._smallest_keys_mask(keys, k)
        assert torch.equal(mask, rng._exact_smallest(keys, k))
        # by hand: a stable sort of the keys, first k positions
        order = torch.sort(keys, dim=1, stable=True).indices[:, :k]
        assert torch.equal(mask, torch.zeros_like(mask).scatter_(1, order, True))


@pytest.mark.parametrize("d", [1, 7, 8, 13, 1024, 1032, 2056])
def test_row_counts(d):
    mask = torch.rand(5, d, generator=torch.Generator().manual_seed(d)) < 0.3
    assert torch.equal(rng.row_counts(mask), mask.sum(1))
    full = torch.ones(3, d, dtype=torch.bool)
    assert torch.equal(rng.row_counts(full), torch.full((3,), d))


@pytest.mark.parametrize("d,k", [(20, 6), (400, 37)])  # exact path (d < 256) and window path
def test_subsets_are_uniform(d, k):
    T = 20_000
    M = rng.private_subset_mask(3, "t", T, d, k, None).double()
    assert torch.equal(M.sum(1), torch.full((T,), float(k), dtype=torch.float64))
    assert zscore(M, k / d).abs().max() <= 5  # every coordinate kept with probability k/d
    pairs = M[:, 0] * M[:, d - 1]  # a pair of coordinates kept together: k(k-1)/(d(d-1))
    assert abs(zscore(pairs.unsqueeze(1), k * (k - 1) / (d * (d - 1))).item()) <= 5
    neighbours = M[:, :-1] * M[:, 1:]
    assert zscore(neighbours, k * (k - 1) / (d * (d - 1))).abs().max() <= 5


def test_subsets_are_keyed_by_client():
    full = rng.private_subset_mask(5, "t", 7, 3001, 300, None)
    rows = torch.tensor([6, 2])
    assert torch.equal(rng.private_subset_mask(5, "t", 7, 3001, 300, rows), full[rows])
    idx = rng.private_randperm_topk(5, "t", 7, 3001, 300, None)
    assert idx.shape == (7, 300) and (idx.diff(dim=1) > 0).all()
    assert torch.equal(torch.zeros(7, 3001, dtype=torch.bool).scatter_(1, idx, True), full)
    assert rng.private_subset_mask(5, "t", 3, 10, 10, None).all()


# ---------------------------------------------------------------------- RandK
def test_randk_is_unbiased_with_error_omega_norm():
    d, k, T = 64, 8, 40_000
    x = _x(d)
    X_hat, bits = cp.compressors.make("randk", k=k, float_bits=64).apply(x.expand(T, d).contiguous(), seed=0)
    assert_mean(X_hat, x)
    err = (X_hat - x).pow(2).sum(1)
    assert abs(zscore(err.unsqueeze(1), (d / k - 1) * x.pow(2).sum().item()).item()) <= 5
    assert (X_hat != 0).sum(1).eq(k).all()
    assert bits.tolist() == [64 * k] * T


def test_unscaled_randk_is_contractive_with_exact_error():
    d, k, T = 50, 5, 40_000
    x = _x(d)
    X_hat, _ = cp.compressors.make("randk", k=k, scaled=False, float_bits=64).apply(x.expand(T, d).contiguous(), 1)
    err = (X_hat - x).pow(2).sum(1)
    assert abs(zscore(err.unsqueeze(1), (1 - k / d) * x.pow(2).sum().item()).item()) <= 5
    kept = X_hat != 0
    assert torch.equal(X_hat[kept], x.expand(T, d)[kept])  # kept values untouched
    with pytest.raises(AssertionError):  # negative control: the unscaled variant is biased
        assert_mean(X_hat, x)


def test_negative_control_topk_fails_the_unbiasedness_test():
    d, T = 64, 2000
    x = _x(d)
    X_hat, _ = cp.compressors.make("topk", k=8).apply(x.expand(T, d).contiguous(), 0)
    with pytest.raises(AssertionError):
        assert_mean(X_hat, x)


@pytest.mark.parametrize("d,k,bitmap", [(64, 8, False), (64, 16, True), (1000, 99, False), (1000, 101, True)])
def test_sent_indices_list_or_bitmap_whichever_is_shorter(d, k, bitmap):
    X = torch.randn(3, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    seeded = cp.compressors.make("randk", k=k)
    sent = cp.compressors.make("randk", k=k, send_indices=True)
    X_hat, bits = sent.apply(X, 4)
    assert torch.equal(X_hat, seeded.apply(X, 4)[0])  # same subset, now on the wire
    width = math.ceil(math.log2(d))
    assert bits.tolist() == [8 * math.ceil((32 * k + min(k * width, d)) / 8)] * 3
    assert (index_fields(k, d)[0].name == "bitmap") == bitmap
    assert torch.equal(sent.decode(sent.encode(X, 4), 4, d, dtype=X.dtype), X_hat)
    assert sent.theory(3, d).bits == bits[0].item()


def test_corrupted_index_sets_are_rejected():
    counts = torch.tensor([3])
    with pytest.raises(PayloadError, match="ascending"):
        mask_from_message({"index": torch.tensor([[1, 5, 5]])}, counts, 64, "randk")
    with pytest.raises(PayloadError, match=">= d"):
        mask_from_message({"index": torch.tensor([[1, 5, 64]])}, counts, 64, "randk")
    bitmap = torch.zeros(1, 8, dtype=torch.int64)
    bitmap[0, :4] = 1
    with pytest.raises(PayloadError, match="bitmap"):
        mask_from_message({"bitmap": bitmap}, torch.tensor([3]), 8, "randk")
    ok = mask_from_message({"index": torch.tensor([[1, 5, 63]])}, counts, 64, "randk")
    assert ok.nonzero()[:, 1].tolist() == [1, 5, 63]


@pytest.mark.parametrize("d,k", [(1, 1), (5, 1), (10, 1), (15, 2), (25, 3), (100, 10), (104, 10), (105, 11)])
def test_default_k_is_round_half_up_of_a_tenth(d, k):
    assert cp.compressors.make("randk").k_for(d) == k
    X = torch.rand(3, d, generator=torch.Generator().manual_seed(d)) + 0.5  # no zero coordinate
    for seed in range(3):
        X_hat, _ = cp.compressors.make("randk").apply(X, seed)
        assert ((X_hat != 0).sum(1) == k).all()  # exactly k kept, not "at most k"


def test_k_equal_d_is_the_identity_and_ratio_resolves_per_call():
    X = torch.randn(4, 9, dtype=torch.float64)
    X_hat, _ = cp.compressors.make("randk", k=9, float_bits=64).apply(X, 3)
    assert torch.equal(X_hat, X)
    C = cp.compressors.make("randk", ratio=0.25)
    assert [C.k_for(d) for d in (1, 2, 10, 12, 30)] == [1, 1, 3, 3, 8]
    assert C.params() == {"ratio": 0.25, "scaled": True, "send_indices": False, "float_bits": 32}


def test_theory_and_compose_support():
    C = cp.compressors.make("randk", k=16)
    t = C.theory(10, 64)
    assert t.kind == "unbiased" and t.omega == 3 and t.A == pytest.approx(0.3) and t.B == 0 and t.bits == 512
    tc = cp.compressors.make("randk", k=16, scaled=False).theory(10, 64)
    assert tc.kind == "contractive" and tc.delta == 0.25
    ctx = C._context(torch.zeros(3, 64), 2, None, None)
    idx, counts, scale = C._seeded_support(ctx)
    assert torch.equal(torch.zeros(3, 64, dtype=torch.bool).scatter_(1, idx, True), C._mask(ctx))
    assert counts.tolist() == [16] * 3 and scale.flatten().tolist() == [4.0] * 3
    assert cp.compressors.make("randk", send_indices=True)._seeded_support(ctx) is None


@pytest.mark.parametrize(
    "params", [{"k": 0}, {"k": -2}, {"k": 1.5}, {"k": "3"}, {"ratio": 0.0}, {"ratio": 1.5}, {"k": 2, "ratio": 0.1},
               {"scaled": "yes"}, {"send_indices": 1}, {"float_bits": 16}]
)
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        cp.compressors.make("randk", **params)


def test_k_larger_than_d_is_rejected_at_call_time():
    C = cp.compressors.make("randk", k=10)
    with pytest.raises(ConfigError, match="1 <= k <= d"):
        C.apply(torch.zeros(2, 5), 0)
    with pytest.raises(ConfigError):
        C.decode([b"\x00" * 40, b"\x00" * 40], 0, 5)
