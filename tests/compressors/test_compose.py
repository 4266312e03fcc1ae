"""Composition outer ∘ inner (spec compressors.md §15): error e = E e1(C2 x) + e2(x), omega, payloads."""

import pytest
import torch

import commpress as cp
from commpress.compressors.base import f32_up, padded_bits
from commpress.compressors.compose import Compose
from commpress.errors import ConfigError
from commpress.testing import EXACT_PROPERTIES, check_compressor

from ._stats import assert_mean, zscore

#: Batches of the exact contract checks of the configurations below.
NESTED_SHAPES = [(6, 37), (1, 5), (4, 1), (9, 4)]


def _iq_error(v):
    """Exact 1-bit IQ error of a vector with the float32 range it sends: d r^2 - ||v||^2."""
    r = f32_up(v.norm().reshape(1)).double().item()
    return v.numel() * r**2 - v.pow(2).sum().item()


def test_iq_after_iq_error_is_e1_of_c2_plus_e2_and_unbiased():
    d, T = 6, 20000
    x = torch.tensor([0.3, -1.2, 0.8, 0.05, -0.4, 2.0], dtype=torch.float64)
    C = cp.compressors.compose("iq", "iq")
    X_hat, _ = C.apply(x.expand(T, d).contiguous(), 0)  # independent parts: rows are independent clients
    assert_mean(X_hat, x)
    r = f32_up(x.norm().reshape(1)).double()
    y = torch.full((d,), r.item(), dtype=torch.float64)  # C2(x) has entries +-r, so ||C2 x|| = sqrt(d) r
    exact = _iq_error(y) + _iq_error(x)  # E e1(C2 x) + e2(x), e1 deterministic here
    errs = (X_hat - x).pow(2).sum(1)
    assert abs(zscore(errs, exact).item()) <= 5
    assert abs(zscore(errs, 2 * _iq_error(x)).item()) > 5  # negative control: omega_1 + omega_2 is wrong
    t = C.theory(7, d)
    assert t.kind == "unbiased" and t.omega == pytest.approx(d * d - 1)
    assert (t.A, t.B) == pytest.approx(((d * d - 1) / 7, 0.0))


def _blocks(n, d):
    q, r = divmod(d, n)
    sizes = [q + (m < r) for m in range(n)]
    starts = [sum(sizes[:m]) for m in range(n)]
    return [list(range(s, s + k)) for s, k in zip(starts, sizes)]


def test_iq_after_permk_acts_on_the_block_with_exact_aggregate_error():
    n, d, T = 3, 26, 1500  # blocks of 9, 9, 8
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    C = cp.compressors.compose("iq", "permk")
    errs = []
    for s in range(T):
        X_hat, bits = C.apply(X, s)
        kept = (X_hat != 0).sum(1)
        assert torch.equal(bits, 8 * ((kept + 32 + 7) // 8))  # |B| + 32 bits: IQ on the compact block
        errs.append((X_hat.mean(0) - X.mean(0)).pow(2).sum())
    permk_part = X.pow(2).sum(1).mean().item() - X.mean(0).pow(2).sum().item()
    iq_part = sum(_iq_error(n * X[i, B]) for i in range(n) for B in _blocks(n, d)) / n / n**2
    assert abs(zscore(torch.stack(errs), permk_part + iq_part).item()) <= 5
    # AB(1 + omega_IQ(block), 1) (Szlendak §2.4); with n | d exactly AB(d/n, 1)
    t = C.theory(n, d)
    assert t.kind == "correlated" and (t.A, t.B) == pytest.approx((1 + 8, 1.0))
    assert C.theory(4, 32).A == pytest.approx(32 / 4)
    assert C.theory(3, 26).bits == pytest.approx((2 * padded_bits(41) + padded_bits(40)) / 3)


def test_general_inner_payload_is_the_outer_payload_with_derived_seeds():
    n, d = 4, 9
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    iq = cp.compressors.make("iq")
    for s in range(3):
        s_in, s_out = cp.derive_seed(s, "compose/inner"), cp.derive_seed(s, "compose/outer")
        X_hat, bits = cp.compressors.compose("identity", "iq").apply(X, s)
        assert torch.equal(X_hat, iq.apply(X, s_in)[0]) and bits.tolist() == [32 * d] * n
        X_hat, bits = cp.compressors.compose("iq", "identity").apply(X, s)
        assert torch.equal(X_hat, iq.apply(X.float().double(), s_out)[0])
        assert bits.tolist() == iq.apply(X, s)[1].tolist()


def test_instances_dicts_and_params_round_trip():
    C = cp.compressors.compose({"name": "iq", "levels": 3}, cp.compressors.make("permk", shuffle_coordinates=True))
    assert isinstance(C, Compose) and C.outer.levels == 3 and C.inner.shuffle_coordinates
    D = cp.compressors.make("compose", **C.params())
    X = torch.randn(5, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(C.apply(X, 4)[0], D.apply(X, 4)[0])
    assert cp.compressors.make("compose").params()["inner"]["name"] == "permk"


def test_a_contractive_part_has_no_general_class():
    t = cp.compressors.compose("iq", {"name": "permk", "scaled": False}).theory(4, 16)
    assert t.kind == "biased" and t.omega is None and t.delta is None


@pytest.mark.skipif("randk" not in cp.compressors.names(), reason="randk not registered yet")
def test_iq_after_randk_is_unbiased():
    d, T = 8, 20000
    x = torch.linspace(-1.0, 1.5, d, dtype=torch.float64)
    C = cp.compressors.compose("iq", "randk")
    X_hat, _ = C.apply(x.expand(T, d).contiguous(), 1)
    assert_mean(X_hat, x)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"outer": 3}, "outer"), ({"inner": {"levels": 3}}, "without 'name'"), ({"outer": "nope"}, "unknown compressor"),
     ({"inner": {"name": "iq", "level": 2}}, "no parameter")],
    ids=["int", "dict-without-name", "unknown", "bad-param"],
)
def test_bad_parts_are_rejected(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        cp.compressors.make("compose", **kwargs)


@pytest.mark.parametrize(
    "outer,inner",
    [("iq", "iq"), ("cq", "permk"), ("qsgd", {"name": "permk", "shuffle_coordinates": True}),
     ({"name": "fcc", "inner": "iq"}, "permk"), ("iq", {"name": "iscc", "inner": "iq", "tau": 3}),
     ("identity", {"name": "permk+cq", "blocks": 1})],
    ids=["iq-iq", "cq-permk", "qsgd-permk", "fcc-permk", "iq-iscc", "identity-permkcq"],
)
def test_contract_with_various_parts(outer, inner):
    check_compressor(cp.compressors.compose(outer, inner), n=6, d=37, shapes=NESTED_SHAPES,
                     properties=EXACT_PROPERTIES)
