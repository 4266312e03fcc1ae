"""LocalNetwork: uplink/downlink equal the compressor's fast path; the ledger counts exact payloads."""

from __future__ import annotations

import pytest
import torch

import commpress as cp
from commpress._rng import private_rand
from commpress.errors import InputError, InputTypeError
from commpress.network import LocalNetwork, NonFiniteError
from commpress.testing import PermutedNetwork

COMPRESSORS = ["identity", "iq", "cq"]


def _X(n=5, d=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", COMPRESSORS)
def test_uplink_is_one_apply_call_and_bits_are_payload_lengths(name):
    comp = cp.compressors.make(name)
    X = _X()
    net = LocalNetwork(5)
    X_hat = net.uplink(X, comp, seed=123, round=0)
    ref, bits = comp.apply(X, 123)
    assert torch.equal(X_hat, ref)
    payload_bits = torch.tensor([8 * len(p) for p in comp.encode(X, 123)])
    assert torch.equal(net.ledger.total("up"), payload_bits)
    assert torch.equal(bits, payload_bits)
    assert torch.equal(net.ledger.total("down"), torch.zeros(5, dtype=torch.int64))


@pytest.mark.parametrize("name", COMPRESSORS)
def test_ledger_sums_payloads_over_rounds_and_keeps_the_breakdown(name):
    comp = cp.compressors.make(name)
    net = LocalNetwork(4)
    expected = torch.zeros(4, dtype=torch.int64)
    per_round = []
    for r in range(3):
        X = _X(4, 9 + r, seed=r)  # d changes: the payload size changes per round
        net.uplink(X, comp, seed=r, round=r)
        b = torch.tensor([8 * len(p) for p in comp.encode(X, r)])
        expected += b
        per_round.append(b)
    net.uplink(_X(4, 9), comp, seed=7, round=2)  # two messages in one round add up
    extra = torch.tensor([8 * len(p) for p in comp.encode(_X(4, 9), 7)])
    expected += extra
    per_round[2] = per_round[2] + extra
    assert torch.equal(net.ledger.total("up"), expected)
    rounds, table = net.ledger.by_round("up")
    assert rounds == [0, 1, 2]
    assert torch.equal(table, torch.stack(per_round))
    assert torch.equal(net.ledger.messages("up"), torch.full((4,), 4))
    assert net.ledger.mean_total("up") == pytest.approx(float(expected.double().mean()))
    assert net.ledger.grand_total("up") == int(expected.sum())


@pytest.mark.parametrize("name", COMPRESSORS)
def test_downlink_compresses_once_and_charges_every_client(name):
    comp = cp.compressors.make(name)
    x = _X(1, 17)[0]
    net = LocalNetwork(6)
    got = net.downlink(x, comp, seed=5, round=3)
    ref, bits = comp.apply(x[None], 5)
    assert torch.equal(got, ref[0])
    assert torch.equal(net.ledger.total("down"), bits.expand(6))
    assert torch.equal(net.ledger.round_bits("down", 3), bits.expand(6))
    assert net.ledger.mean_total("up") == 0


def test_reductions_are_over_the_client_axis():
    X = _X(5, 7)
    net = LocalNetwork(5)
    assert torch.equal(net.mean(X), X.mean(0))
    assert torch.equal(net.allmean(X), X.mean(0))
    assert torch.equal(net.sum(X), X.sum(0))
    assert torch.equal(net.max(X), X.max(0).values)
    assert torch.equal(net.local(X), X)


def test_private_rand_rows_are_keyed_by_client():
    net = LocalNetwork(5)
    assert torch.equal(net.private_rand(3, "t", (4,)), private_rand(3, "t", 5, (4,), None))
    perm = torch.tensor([3, 0, 4, 1, 2])
    sub = PermutedNetwork(5, perm)
    assert torch.equal(sub.private_rand(3, "t", (4,)), private_rand(3, "t", 5, (4,), None)[perm])


def test_permuted_network_gives_the_same_rows_for_correlated_compressors():
    # Row keyed by client, never by position: the permuted process decodes the same messages.
    X = _X(6, 11)
    perm = torch.tensor([5, 2, 0, 1, 4, 3])
    comp = cp.compressors.make("cq")
    a, b = LocalNetwork(6), PermutedNetwork(6, perm)
    full = a.uplink(X, comp, 9, round=0)
    part = b.uplink(X[perm], comp, 9, round=0)
    assert torch.equal(part, full[perm])
    assert torch.equal(a.ledger.total("up"), b.ledger.total("up"))


def test_bad_inputs_are_rejected_with_clear_errors():
    net = LocalNetwork(3)
    comp = cp.compressors.make("identity")
    with pytest.raises(InputError, match=r"shape \(3, d\)"):
        net.uplink(_X(2, 4), comp, 0, round=0)
    with pytest.raises(InputError, match=r"shape \(d,\)"):
        net.downlink(_X(2, 4), comp, 0, round=0)
    with pytest.raises(InputTypeError, match="Compressor"):
        net.uplink(_X(3, 4), "identity", 0, round=0)
    with pytest.raises(InputTypeError):
        net.uplink(_X(3, 4).numpy(), comp, 0, round=0)
    bad = _X(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="diverged"):
        net.uplink(bad, comp, 0, round=0)
    with pytest.raises(NonFiniteError):
        net.downlink(torch.tensor([1.0, float("inf")]), comp, 0, round=0)
    assert net.ledger.grand_total("up") == 0  # nothing was charged for rejected messages
    with pytest.raises(cp.ConfigError):
        LocalNetwork(0)
