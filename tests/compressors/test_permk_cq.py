"""PermK+CQ against its closed forms (spec compressors.md §10, §18) and against CQ (b = 1) and PermK∘IQ (b = n)."""

import pytest
import torch

import commpress as cp
from commpress.compressors.base import f32_up
from commpress.errors import ConfigError

from ._stats import assert_mean, zscore
from .test_cq import exact_cq_mse


def _phi(t):
    f = t - t.floor()
    return f * (1 - f)


def _data(n, d, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.5


def _partition(X_hat):
    """(client groups, coordinate blocks) of a round, read off its output (+-r is never 0 for r > 0)."""
    support = X_hat != 0
    n = X_hat.shape[0]
    blocks: dict[tuple, list[int]] = {}
    for i in range(n):
        blocks.setdefault(tuple(support[i].nonzero().flatten().tolist()), []).append(i)
    return [(clients, list(coords)) for coords, clients in blocks.items()]


def _homogeneous_mse(x, n, parts, full):
    """sum_g (q_g/n)^2 (2 r_g)^2 phi(q_g u_j) / q_g^2 with the float32 header r_g actually sent."""
    total = 0.0
    for clients, coords in parts:
        q = len(clients)
        y = (n / q) * x[coords]
        r = f32_up(((n / q) * x.norm() if full else y.norm()).reshape(1)).double()
        u = (y + r) / (2 * r)
        total += (4 * r**2 / n**2 * _phi(q * u)).sum().item()
    return total


@pytest.mark.parametrize("n,d,b,range_", [(5, 7, 2, "block"), (4, 3, 3, "full")])
def test_rows_are_individually_unbiased(n, d, b, range_):
    X = _data(n, d)
    C = cp.compressors.make("permk+cq", blocks=b, range=range_)
    T = 1500
    S = torch.stack([C.apply(X, s)[0] for s in range(T)])
    assert_mean(S.reshape(T, -1), X.reshape(-1))


@pytest.mark.parametrize("n,d,b,full", [(5, 7, 2, False), (6, 9, 3, True)])
def test_homogeneous_mse_given_the_partition(n, d, b, full):
    x = torch.linspace(-0.4, 1.0, d, dtype=torch.float64)  # no zero entry: the support shows the blocks
    X = x.expand(n, d).contiguous()
    C = cp.compressors.make("permk+cq", blocks=b, range="full" if full else "block")
    T = 1200
    diffs, errs = [], []
    for s in range(T):
        X_hat = C.apply(X, s)[0]
        parts = _partition(X_hat)
        assert sorted(len(c) for c, _ in parts) == sorted([-(-n // b)] * (n % b) + [n // b] * (b - n % b))
        err = (X_hat.mean(0) - x).pow(2).sum().item()
        errs.append(err)
        diffs.append(err - _homogeneous_mse(x, n, parts, full))
    assert abs(zscore(torch.tensor(diffs), 0.0).item()) <= 5
    # the bound of theory() holds, and the naive formula (CQ's d||x||^2/n^2 bound) is beaten by the real one
    assert torch.tensor(errs).mean().item() <= C.theory(n, d).extras["A_homogeneous"] * x.pow(2).sum().item()


def test_b_1_is_cq_stratification_and_mse():
    n, d, T = 5, 6, 2000
    C = cp.compressors.make("permk+cq", blocks=1)
    x = torch.linspace(-0.5, 1.0, d, dtype=torch.float64)
    r = f32_up(x.norm().reshape(1)).double()
    u = (x + r) / (2 * r)
    ups = torch.stack([(C.apply(x.expand(n, d).contiguous(), s)[0] > 0).sum(0) for s in range(300)])
    # CQ: the number of clients rounding up is floor(n u) or ceil(n u), never anything else
    assert ((ups == (n * u).floor()) | (ups == (n * u).ceil())).all()
    iq = cp.compressors.make("iq")
    ups_iq = torch.stack([(iq.apply(x.expand(n, d).contiguous(), s)[0] > 0).sum(0) for s in range(300)])
    assert not ((ups_iq == (n * u).floor()) | (ups_iq == (n * u).ceil())).all()  # negative control
    # heterogeneous inputs: the exact CQ error (spec §8.4)
    X = _data(n, d, seed=4)
    errs = torch.stack([(C.apply(X, s)[0].mean(0) - X.mean(0)).pow(2).sum() for s in range(T)])
    assert abs(zscore(errs, exact_cq_mse(X)).item()) <= 5
    t, tc = C.theory(n, d), cp.compressors.make("cq").theory(n, d)
    assert t.omega == pytest.approx(tc.omega) and t.A == pytest.approx(tc.A) and t.B == pytest.approx(tc.B)
    assert t.bits == tc.bits


def test_ab_inequality_holds_on_heterogeneous_inputs():
    n, d, b, T = 6, 8, 2, 1500
    X = _data(n, d, seed=5) * torch.linspace(0.2, 2.0, n, dtype=torch.float64)[:, None]
    C = cp.compressors.make("permk+cq", blocks=b)
    t = C.theory(n, d)
    q = n // b
    assert t.B == pytest.approx((n - q) / (q * (n - 1)))
    assert t.A == pytest.approx((n - q) / (q * (n - 1)) + (d - b) / n)
    errs = torch.stack([(C.apply(X, s)[0].mean(0) - X.mean(0)).pow(2).sum() for s in range(T)])
    bound = t.A * X.pow(2).sum(1).mean().item() - t.B * X.mean(0).pow(2).sum().item()
    assert zscore(errs, bound).item() <= 5  # one-sided: the mean error is not above the bound


def test_b_n_is_permk_then_iq_on_the_block():
    n, d, T = 3, 9, 1500
    X = _data(n, d, seed=6)
    C = cp.compressors.make("permk+cq", blocks=n)
    P = cp.compressors.compose("iq", "permk")
    t, tp = C.theory(n, d), P.theory(n, d)
    assert (t.A, t.B, t.omega) == pytest.approx((tp.A, tp.B, tp.omega))
    a = torch.stack([(C.apply(X, s)[0].mean(0) - X.mean(0)).pow(2).sum() for s in range(T)])
    p = torch.stack([(P.apply(X, s)[0].mean(0) - X.mean(0)).pow(2).sum() for s in range(T)])
    z = (a.mean() - p.mean()) / (a.var() / T + p.var() / T).sqrt()
    assert abs(z.item()) <= 5


def test_bits_are_block_size_plus_32():
    n, d, b = 5, 7, 2  # client groups (3, 2), coordinate blocks (4, 3)
    C = cp.compressors.make("permk+cq", blocks=b)
    X = _data(n, d)
    for s in range(5):
        X_hat, bits = C.apply(X, s)
        kept = (X_hat != 0).sum(1)
        assert torch.equal(bits, 8 * ((kept + 32 + 7) // 8))
        assert sorted(kept.tolist()) == [3, 3, 4, 4, 4]
    assert C.theory(n, d).bits == pytest.approx(40.0)
    assert cp.compressors.make("permk+cq", blocks=2).theory(4, 64).bits == 64


def test_default_blocks_resolve_per_call():
    C = cp.compressors.make("permk+cq")
    assert C.theory(8, 64).extras["blocks"] == 2
    assert C.theory(1, 64).extras["blocks"] == 1 and C.theory(8, 1).extras["blocks"] == 1
    X = _data(1, 5)
    assert torch.isfinite(C.apply(X, 0)[0]).all()


@pytest.mark.parametrize("params", [{"blocks": 0}, {"blocks": 2.5}, {"blocks": "2"}, {"range": "norm"}],
                         ids=["zero", "float", "str", "range"])
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError) as info:
        cp.compressors.make("permk+cq", **params)
    assert next(iter(params)) in str(info.value)


def test_too_many_blocks_for_the_round_is_rejected_at_call_time():
    C = cp.compressors.make("permk+cq", blocks=4)
    with pytest.raises(ConfigError, match="blocks <= 3"):
        C.apply(_data(3, 10), 0)
    with pytest.raises(ConfigError, match="min"):
        C.apply(_data(6, 2), 0)
    assert C.apply(_data(4, 4), 0)[0].shape == (4, 4)
