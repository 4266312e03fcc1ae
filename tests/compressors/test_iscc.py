"""ISCC (spec compressors.md §14): exact MSE, unbiased rows, draws with probability q_i, payloads."""

import pytest
import torch

import commpress as cp
from commpress.compressors.base import f32_up
from commpress.compressors.iscc import ISCC
from commpress.errors import ConfigError
from commpress.testing import EXACT_PROPERTIES, check_compressor

from ._stats import assert_mean, zscore

#: Batches of the exact contract checks of the configurations below.
NESTED_SHAPES = [(6, 37), (1, 5), (4, 1), (9, 4)]

N, D, TAU = 4, 5, 2
WEIGHTS = [1.0, 1.0, 2.0, 8.0]


def _data():
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([2.0, 1.5, 1.0, 0.3], dtype=torch.float64)[:, None]
    return torch.randn(N, D, generator=g, dtype=torch.float64) * scale + 0.3


def _exact_mse(X, q, tau):
    """1/tau (sum_i (||a_i||^2 + V_i) / (n^2 q_i) - ||mean a||^2), V_i the exact 1-bit IQ error."""
    n, d = X.shape
    norm2 = X.pow(2).sum(1)
    V = d * f32_up(X.norm(dim=1)).double() ** 2 - norm2
    return (((norm2 + V) / (n * n * q)).sum() - X.mean(0).pow(2).sum()).item() / tau


@pytest.fixture(scope="module")
def runs():
    """T rounds of weighted ISCC(IQ) with tau = 2: outputs (T, n, d) and bits (T, n)."""
    X = _data()
    C = ISCC(inner="iq", tau=TAU, weights=WEIGHTS)
    outs, bits = zip(*(C.apply(X, s) for s in range(2500)))
    return X, C, torch.stack(outs), torch.stack(bits)


def test_mse_is_the_exact_importance_sampling_formula(runs):
    X, _, out, _ = runs
    errs = (out.mean(1) - X.mean(0)).pow(2).sum(1)
    q = torch.tensor(WEIGHTS, dtype=torch.float64) / sum(WEIGHTS)
    assert abs(zscore(errs, _exact_mse(X, q, TAU)).item()) <= 5
    # negative control: the same formula with uniform q (the weights ignored) is rejected
    uniform = torch.full((N,), 1 / N, dtype=torch.float64)
    assert abs(zscore(errs, _exact_mse(X, uniform, TAU)).item()) > 5


def test_rows_are_individually_unbiased(runs):
    X, _, out, _ = runs
    assert_mean(out.reshape(out.shape[0], -1), X.reshape(-1))


def test_clients_are_drawn_with_probability_q_and_send_one_payload_per_draw(runs):
    X, C, _, bits = runs
    one = 8 * ((D + 32 + 7) // 8)  # one IQ payload
    assert (bits % one == 0).all() and torch.equal(bits.sum(1), torch.full((bits.shape[0],), TAU * one))
    q = torch.tensor(WEIGHTS, dtype=torch.float64) / sum(WEIGHTS)
    assert_mean((bits / one).double(), TAU * q)  # E m_i = tau q_i
    payloads = C.encode(X, 3)
    assert [len(p) * 8 for p in payloads] == C.apply(X, 3)[1].tolist()
    m = (C.apply(X, 3)[1] // one).tolist()
    assert [len(p) for p in payloads] == [k * one // 8 for k in m]  # 0 bytes for a client never drawn
    assert 0 in m


def test_theory_reports_wab_and_ab_constants():
    C = ISCC(inner="iq", tau=TAU, weights=WEIGHTS)
    t = C.theory(N, D)
    q = torch.tensor(WEIGHTS) / sum(WEIGHTS)
    assert t.kind == "combinatorial"
    assert t.extras["WAB_A"] == pytest.approx(D / TAU) and t.extras["WAB_B"] == pytest.approx(1 / TAU)
    assert t.A == pytest.approx(D / (TAU * N * q.min().item())) and t.B == pytest.approx(1 / TAU)
    assert t.extras["weights"] == pytest.approx(q.tolist())
    assert t.bits == pytest.approx(TAU * 8 * ((D + 32 + 7) // 8) / N)


def test_single_client_averages_tau_independent_compressions():
    d, tau, T = 4, 3, 1500
    x = torch.tensor([0.5, -1.0, 0.25, 2.0], dtype=torch.float64)
    C = ISCC(inner="iq", tau=tau)
    outs = torch.stack([C.apply(x[None], s)[0][0] for s in range(T)])
    V = d * f32_up(x.norm().reshape(1)).double().item() ** 2 - x.pow(2).sum().item()
    assert abs(zscore((outs - x).pow(2).sum(1), V / tau).item()) <= 5
    assert len(C.encode(x[None], 0)[0]) == tau * ((d + 32 + 7) // 8)


def test_uniform_weights_by_default_and_params_round_trip():
    C = ISCC(inner={"name": "iq", "levels": 3}, tau=5)
    assert C.theory(6, 8).extras["weights"] == pytest.approx([1 / 6] * 6)
    D2 = cp.compressors.make("iscc", **C.params())
    X = _data()
    assert torch.equal(C.apply(X, 2)[0], D2.apply(X, 2)[0])


@pytest.mark.skipif("drive" not in cp.compressors.names(), reason="drive not registered yet")
def test_default_inner_is_drive():
    assert ISCC().params()["inner"]["name"] == "drive"


@pytest.mark.parametrize(
    "kwargs,match",
    [({"weights": [1.0, 0.0, 1.0, 1.0]}, "> 0"), ({"weights": [1.0, -2.0]}, "> 0"),
     ({"weights": [1.0, float("nan")]}, "finite"), ({"weights": [[1.0, 2.0]]}, "flat"), ({"weights": "abc"}, "weights"),
     ({"tau": 0}, "tau"), ({"tau": 1.5}, "tau"), ({"inner": 3}, "inner")],
    ids=["zero", "negative", "nan", "2-d", "str", "tau-0", "tau-float", "inner-int"],
)
def test_bad_parameters_are_rejected(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ISCC(**{"inner": "iq", **kwargs})


def test_weights_of_the_wrong_length_are_rejected_at_call_time():
    C = ISCC(inner="iq", weights=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="3 weights but the round has n=4"):
        C.apply(_data(), 0)
    with pytest.raises(ConfigError, match="3 weights"):
        C.theory(4, 5)


@pytest.mark.parametrize(
    "params",
    [{"inner": "iq", "tau": 3}, {"inner": "cq", "tau": 2}, {"inner": {"name": "fcc", "inner": "iq"}, "tau": 4},
     {"inner": {"name": "compose", "outer": "iq", "inner": "permk"}, "tau": 5}],
    ids=["iq", "cq", "fcc", "compose"],
)
def test_contract_with_various_inners(params):
    check_compressor(cp.compressors.make("iscc", **params), n=6, d=37, shapes=NESTED_SHAPES,
                     properties=EXACT_PROPERTIES)
