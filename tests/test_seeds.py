"""Round seeds (commpress._rng.derive_seed): no collisions, independent run seeds.

The earlier rule mixed the first label as ``SM(seed xor part)``, so ``derive_seed(0, 1) ==
derive_seed(1, 0)`` and run seeds 0..3 replayed each other's rounds. It is kept here, as
``_old_rule``, as the negative control that the independence test must reject.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import commpress as cp
from commpress import _rng
from commpress.algorithms import base as algorithms_base

MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _old_rule(seed: int, *parts: int | str) -> int:
    k = int(seed) & _rng._MASK64
    for part in parts:
        mixed = _rng._fnv1a64(part) if isinstance(part, str) else (int(part) & _rng._MASK64)
        k = _rng._splitmix64(k ^ mixed)
    return k % _rng.SEED_LIMIT


def _sm(x: np.ndarray) -> np.ndarray:
    """splitmix64 on uint64 arrays (wrapping arithmetic), equal to _rng._splitmix64 elementwise."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _label_hash(values: np.ndarray, position: int, is_string: bool) -> np.ndarray:
    v = values ^ np.uint64(_rng._STRING_SALT) if is_string else values
    with np.errstate(over="ignore"):
        return _sm(_sm(v) + np.uint64(position) * np.uint64(_rng._GOLDEN))


def _derive_grid(seeds: np.ndarray, rounds: np.ndarray, role: int | str) -> np.ndarray:
    """derive_seed(seed, round, role) for every (seed, round), vectorised: (len(seeds), len(rounds))."""
    k = _sm(seeds.astype(np.uint64))[:, None]
    k = _sm(k ^ _label_hash(rounds.astype(np.uint64), 1, False)[None, :])
    role_value = np.array([_rng._fnv1a64(role) if isinstance(role, str) else role], dtype=np.uint64)
    k = _sm(k ^ _label_hash(role_value, 2, isinstance(role, str)))
    return k % np.uint64(_rng.SEED_LIMIT)


def test_the_vectorised_rule_is_the_library_rule():
    seeds, rounds = np.array([0, 1, 7, 255]), np.array([0, 1, 2, 4095])
    for role in ("coin", "uplink", 3):
        grid = _derive_grid(seeds, rounds, role)
        for a, s in enumerate(seeds):
            for b, t in enumerate(rounds):
                assert int(grid[a, b]) == cp.derive_seed(int(s), int(t), role)


def test_the_collisions_of_the_old_rule_are_gone():
    assert _old_rule(0, 1) == _old_rule(1, 0) and _old_rule(2, 3) == _old_rule(3, 2)  # the defect
    assert cp.derive_seed(0, 1) != cp.derive_seed(1, 0)
    assert cp.derive_seed(2, 3) != cp.derive_seed(3, 2)
    assert cp.derive_seed(0, 1, "coin") != cp.derive_seed(1, 0, "coin")
    assert cp.derive_seed(5, 1) != cp.derive_seed(5, "1")  # a round is not the string of its number
    assert cp.derive_seed(5, 1, 2) != cp.derive_seed(5, 2, 1)  # positions matter
    assert cp.derive_seed(5) != cp.derive_seed(5, 0)


def test_no_collision_over_seeds_rounds_and_roles():
    # Every round seed an algorithm or a DDP hook derives: seeds 0..255 x rounds 0..4095 x
    # the algorithms' roles and the hooks' bucket indices 0..3.
    seeds, rounds = np.arange(256), np.arange(4096)
    roles: list[int | str] = ["uplink", "downlink", "oracle", "coin", 0, 1, 2, 3]
    values = np.concatenate([_derive_grid(seeds, rounds, role).ravel() for role in roles])
    assert values.size == 256 * 4096 * len(roles)
    assert np.unique(values).size == values.size
    # the old rule, on the same grid, collides massively (negative control of the check itself)
    old = np.array([_old_rule(s, t, "coin") for s in range(16) for t in range(16)])
    assert np.unique(old).size <= 16


def _marina(seed: int):
    prob = cp.problems.make("quadratic", n_clients=2, dim=4, noise_scale=0.0, seed=0)
    return cp.algorithms.make("marina", prob, compressor="cq", p=0.5, seed=seed)


def _coins(seed: int, rounds: int) -> np.ndarray:
    alg = _marina(seed)
    return np.array([alg.coin(t) for t in range(rounds)], dtype=np.float64)


def _max_window_correlation_z(sequences: list[np.ndarray], window: int) -> float:
    """Largest |z| over pairs of sequences of the Pearson correlation of their counts per window.

    Independent Bernoulli sequences: each z = r sqrt(m) is about N(0, 1) over m windows.
    """
    counts = [s.reshape(-1, window).sum(1) for s in sequences]
    m = counts[0].size
    worst = 0.0
    for a in range(len(counts)):
        for b in range(a + 1, len(counts)):
            r = float(np.corrcoef(counts[a], counts[b])[0, 1])
            worst = max(worst, abs(r) * math.sqrt(m))
    return worst


#: Max |z| over 28 pairs of 8 run seeds: P(max > 4.5) <= 28 * 6.8e-6 under independence.
Z_BAR = 4.5


def test_the_coin_is_the_one_the_step_uses():
    # coin(t) is what step() decides on: dense rounds (32 d bits per client) are exactly its True rounds.
    prob = cp.problems.make("quadratic", n_clients=2, dim=4, noise_scale=0.0, seed=0)
    hist = cp.simulate(prob, "marina", compressor="cq", p=0.5, iterations=64, seed=3)
    per_round = torch.diff(hist.bits_up).numpy()  # uplink bits per client of rounds 0..63
    dense = per_round == 32 * 4
    assert dense.any() and (~dense).any()
    assert np.array_equal(dense, _coins(3, 64).astype(bool))


def test_marina_coin_sequences_of_different_run_seeds_are_independent(monkeypatch):
    rounds, window = 4096, 8
    seqs = [_coins(s, rounds) for s in range(8)]
    for s in seqs:  # each is Bernoulli(1/2): 5 standard errors
        assert abs(s.mean() - 0.5) <= 5 * math.sqrt(0.25 / rounds)
    assert _max_window_correlation_z(seqs, window) < Z_BAR
    # Negative control: the old rule makes run seed s replay seed 0's round s xor t, so the
    # counts per aligned window of 8 rounds coincide for seeds 0..7 and the test must fail.
    monkeypatch.setattr(algorithms_base, "derive_seed", _old_rule)
    old = [_coins(s, rounds) for s in range(8)]
    assert _max_window_correlation_z(old, window) > Z_BAR
