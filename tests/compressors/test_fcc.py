"""FCC (spec compressors.md §17): Lemma 1 contraction, exact cases, concatenated payloads."""

import pytest
import torch

import commpress as cp
from commpress.compressors.fcc import FCC
from commpress.errors import ConfigError
from commpress.testing import EXACT_PROPERTIES, check_compressor

from ._stats import assert_mean, zscore

#: Batches of the exact contract checks of the configurations below.
NESTED_SHAPES = [(6, 37), (1, 5), (4, 1), (9, 4)]

X0 = torch.tensor([0.3, -1.2, 0.8, 0.05, -0.4], dtype=torch.float64)


@pytest.mark.parametrize("R", [1, 2, 3])
def test_scaled_iq_contracts_exactly_by_one_minus_one_over_d_per_round(R):
    d, T = X0.numel(), 20000
    C = FCC(inner="iq", rounds=R)
    X_hat, bits = C.apply(X0.expand(T, d).contiguous(), 0)  # IQ is private: rows are independent clients
    errs = (X_hat - X0).pow(2).sum(1)
    norm2 = X0.pow(2).sum().item()
    assert abs(zscore(errs, (1 - 1 / d) ** R * norm2).item()) <= 5
    # Lemma 1 as a bound, and a negative control: one more round's bound is violated
    t = C.theory(T, d)
    assert t.kind == "contractive" and t.delta == pytest.approx(1 - (1 - 1 / d) ** R)
    assert zscore(errs, (1 - t.delta) * norm2).item() <= 5
    assert zscore(errs, (1 - 1 / d) ** (R + 1) * norm2).item() > 5
    assert bits.tolist() == [R * 8 * ((d + 32 + 7) // 8)] * T


@pytest.mark.parametrize("shuffle", [False, True])
def test_unscaled_permk_residual_shrinks_by_one_minus_one_over_n(shuffle):
    n, d, R, T = 4, 10, 3, 1500
    x = torch.linspace(-1.0, 2.0, d, dtype=torch.float64)
    inner = cp.compressors.make("permk", scaled=False, shuffle_coordinates=shuffle, float_bits=64)
    C = FCC(inner=inner, rounds=R)
    errs = torch.stack([(C.apply(x.expand(n, d).contiguous(), s)[0] - x).pow(2).sum(1).mean() for s in range(T)])
    assert abs(zscore(errs, (1 - 1 / n) ** R * x.pow(2).sum().item()).item()) <= 5
    assert C.theory(n, d).delta == pytest.approx(1 - (1 - 1 / n) ** R)


def test_unscaled_unbiased_inner_stays_unbiased_with_error_omega_to_the_r():
    d, R, T = 3, 2, 40000
    x = X0[:d]
    C = FCC(inner="iq", rounds=R, unbiased_scaling=False)
    X_hat, _ = C.apply(x.expand(T, d).contiguous(), 1)
    assert_mean(X_hat, x)
    errs = (X_hat - x).pow(2).sum(1)
    assert abs(zscore(errs, (d - 1) ** R * x.pow(2).sum().item()).item()) <= 5
    t = C.theory(T, d)
    assert t.kind == "unbiased" and t.omega == pytest.approx((d - 1) ** R)


@pytest.mark.skipif("topk" not in cp.compressors.names(), reason="topk not registered yet")
def test_topk_default_keeps_the_r_k_largest():
    d = 40
    x = torch.randn(d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    C = FCC(inner={"name": "topk", "k": 3}, rounds=2)
    err = (C.apply(x[None], 0)[0][0] - x).pow(2).sum().item()
    exact = x.pow(2).sort().values[: d - 6].sum().item()
    assert err == pytest.approx(exact, rel=1e-5)
    assert FCC().params()["inner"]["name"] == "topk"


@pytest.mark.parametrize("inner", ["iq", "cq", "permk", {"name": "permk+cq", "blocks": 2}])
def test_payload_is_the_concatenation_of_the_rounds(inner):
    n, d, R = 5, 11, 3
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    C = FCC(inner=inner, rounds=R)
    payloads = C.encode(X, 9)
    X_hat, bits = C.apply(X, 9)
    assert bits.tolist() == [8 * len(p) for p in payloads]
    assert torch.equal(C.decode(payloads, 9, d, dtype=X.dtype), X_hat)
    # round 0 compresses x itself with the seed derive_seed(seed, "fcc", 0): its payload leads
    first = C.inner.encode(X, cp.derive_seed(9, "fcc", 0))
    assert all(p.startswith(f) for p, f in zip(payloads, first))


def test_inner_without_finite_omega_cannot_be_scaled():
    C = FCC(inner={"name": "iq", "range": "fixed", "low": -3.0, "high": 3.0})
    with pytest.raises(ConfigError, match="unbiased_scaling=False"):
        C.apply(X0[None], 0)
    FCC(inner={"name": "iq", "range": "fixed"}, unbiased_scaling=False).apply(X0[None], 0)


@pytest.mark.parametrize(
    "kwargs", [{"rounds": 0}, {"rounds": 1.5}, {"unbiased_scaling": "yes"}, {"inner": 7}],
    ids=["zero-rounds", "float-rounds", "scaling-str", "inner-int"],
)
def test_bad_parameters_are_rejected(kwargs):
    kwargs = {"inner": "iq", **kwargs}
    with pytest.raises(ConfigError):
        cp.compressors.make("fcc", **kwargs)


@pytest.mark.parametrize(
    "params",
    [{"inner": "iq"}, {"inner": "cq", "rounds": 3}, {"inner": {"name": "permk", "scaled": False}},
     {"inner": {"name": "iscc", "inner": "iq", "tau": 3}}, {"inner": {"name": "compose", "outer": "qsgd"}, "rounds": 1}],
    ids=["iq", "cq", "permk", "iscc", "compose"],
)
def test_contract_with_various_inners(params):
    check_compressor(cp.compressors.make("fcc", **params), n=6, d=37, shapes=NESTED_SHAPES,
                     properties=EXACT_PROPERTIES)
