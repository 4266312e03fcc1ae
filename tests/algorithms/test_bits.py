"""The ledger equals the sum of the real payload lengths of every message a method sends."""

from __future__ import annotations

import math
import re

import pytest
import torch

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress.network import LocalNetwork

from tests.algorithms._cases import CASES, check
from tests.algorithms._toy import toy


@pytest.mark.parametrize("case", sorted(CASES))
def test_ledger_equals_the_sum_of_payload_lengths(case):
    # commpress.testing's ledger audit: over init and 12 rounds the ledger holds exactly
    # 8 * len(payload) of every real wire message, per client and direction, and nothing is
    # compressed outside the network.
    result = check(case, properties=["ledger_bits"])["ledger_bits"]
    sent = re.search(r"\((\d+) up, (\d+) down", result.message)
    assert int(sent[1]) > 0 and int(sent[2]) > 0, result.message  # both directions were exercised


def test_marina_coin_is_shared_and_has_frequency_p():
    # Every round, all clients send the same kind of message (dense or compressed): the coin is
    # shared. The number of dense rounds is Binomial(T, p): z-test, with a negative control.
    problem = toy(n=3, d=40)
    net = LocalNetwork(problem.n)
    p, T = 0.3, 1500
    alg = cp.algorithms.make("marina", problem, net, compressor="cq", p=p, gamma=1e-3, seed=11)
    state = alg.init()
    for _ in range(T):
        state = alg.step(state)
    rounds, table = net.ledger.by_round("up")
    assert rounds == [-1] + list(range(T))
    table = table[1:]
    assert torch.all(table == table[:, :1])  # same bits for every client in a round
    dense = 8 * math.ceil(32 * problem.d / 8)
    zeta = cp.compressors.make("cq").theory(problem.n, problem.d).bits
    assert set(table[:, 0].tolist()) == {dense, zeta}
    k = int((table[:, 0] == dense).sum())
    z = (k - T * p) / math.sqrt(T * p * (1 - p))
    assert abs(z) < 5, z
    z_wrong = (k - T * 0.5) / math.sqrt(T * 0.25)
    assert abs(z_wrong) > 5
    # init round: one dense message each
    assert torch.all(net.ledger.round_bits("up", -1) == dense)


def test_weighted_marina_charges_only_the_drawn_clients():
    # ISCC with tau = 1: in a compressed round exactly one client sends (tau * inner bits in total).
    problem = toy(n=5, d=16)
    net = LocalNetwork(problem.n)
    alg = cp.algorithms.make("weighted_marina", problem, net, compressor="iq", p=1e-9, gamma=1e-3, seed=4)
    state = alg.init()
    for _ in range(30):
        state = alg.step(state)
    _, table = net.ledger.by_round("up")
    compressed = table[1:]  # p ~ 0: every round is compressed
    inner_bits = cp.compressors.make("iq").theory(1, problem.d).bits
    assert torch.all((compressed > 0).sum(1) == 1)
    assert torch.all(compressed.sum(1) == inner_bits)
    assert len(set(compressed.argmax(1).tolist())) > 1  # different clients are drawn
