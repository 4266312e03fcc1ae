"""Client samplers: specs, shared draws, inclusion probabilities and the unbiased aggregation's constants.

The Monte-Carlo checks compare sample means with their expectation within z standard errors (the
standard error from the sample variance); each has a negative control (a broken sampler or a wrong
formula) that the same check must reject.
"""

from __future__ import annotations

import pytest
import torch

import commpress as cp
from commpress._rng import derive_seed
from commpress.errors import ConfigError
from commpress.network import LocalNetwork
from commpress.network.sampling import Full, Independent, Nice, Sampler, make_sampler
from commpress.testing import zscore
from commpress.theory import partial_participation as pp

Z = 5.0  # two-sided, per entry; the entries checked at once are few (<= 49)


def _seeds(N: int, run: int = 0) -> list[int]:
    return [derive_seed(run, t, "sample") for t in range(N)]


def _indicators(sampler: Sampler, n: int, N: int, run: int = 0) -> torch.Tensor:
    return torch.stack([sampler.mask(n, s) for s in _seeds(N, run)]).double()


def _inclusion_ok(sampler: Sampler, n: int, N: int = 3000) -> bool:
    """Empirical p_i and p_ij within Z standard errors of the sampler's stated ones."""
    I = _indicators(sampler, n, N)
    pairs = I.unsqueeze(2) * I.unsqueeze(1)  # (N, n, n): 1{i in S} 1{j in S}
    ok_p = bool(zscore(I, sampler.probabilities(n)).abs().max() < Z)
    ref = sampler.pair_probability(n)
    z = zscore(pairs.reshape(N, -1), ref.reshape(-1)).reshape(n, n)
    constant = pairs.std(dim=0) == 0  # e.g. p_ij = 1 or 0: exact, no standard error
    exact = torch.equal(pairs[0][constant], ref[constant])
    return ok_p and exact and bool(z[~constant].abs().max() < Z) if (~constant).any() else ok_p and exact


# ------------------------------------------------------------------------------------------ specs
@pytest.mark.parametrize("spec, expected", [
    (None, Full()), ("full", Full()), ("nice:4", Nice(4)), ("nice(4)", Nice(4)), ({"name": "nice", "tau": 4}, Nice(4)),
    ("independent:0.5", Independent(0.5)), ({"name": "independent", "p": [0.5, 0.25, 1.0]}, Independent([0.5, 0.25, 1.0])),
    (Nice(2), Nice(2)),
])
def test_specs_parse_to_samplers(spec, expected):
    s = make_sampler(spec)
    assert s == expected
    assert make_sampler(s.describe()) == s  # the JSON-able description round-trips


@pytest.mark.parametrize("spec, words", [
    ("nce:3", "unknown sampler"), ("nice:x", "not a number"), ("nice:0", "tau >= 1"), ("independent:1.5", "(0, 1]"),
    ({"name": "nice"}, "'tau'"), ({"name": "full", "tau": 2}, "no parameter"), (3, "string, a dict"),
    ("full:2", "takes no parameter"),
])
def test_bad_specs_are_one_line_config_errors(spec, words):
    with pytest.raises(ConfigError) as err:
        make_sampler(spec)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_checks_against_n():
    with pytest.raises(ConfigError, match="tau <= n=3"):
        Nice(4).check(3)
    with pytest.raises(ConfigError, match="2 probabilities for n=3"):
        Independent([0.5, 0.5]).check(3)


def test_full_samplers_are_recognised():
    assert Full().is_full(5) and Nice(5).is_full(5) and Independent(1.0).is_full(5)
    assert not Nice(4).is_full(5) and not Independent([1.0, 0.5]).is_full(2)


# ------------------------------------------------------------------------------------------ shared draws
def test_draws_are_a_pure_function_of_the_round_seed():
    s = Nice(3)
    a = [s.sample(8, x).tolist() for x in _seeds(50)]
    assert a == [s.sample(8, x).tolist() for x in _seeds(50)]  # every process computes the same set
    assert a != [s.sample(8, x).tolist() for x in _seeds(50, run=1)]
    assert all(len(S) == 3 and S == sorted(set(S)) for S in a)
    ind = Independent(0.5)
    sizes = {len(ind.sample(6, x)) for x in _seeds(300)}
    assert 0 in sizes and 6 in sizes  # sizes vary, an empty round can happen


# ------------------------------------------------------------------------------------------ probabilities
@pytest.mark.parametrize("sampler", [Nice(3), Independent(0.4), Independent([0.9, 0.2, 0.5, 0.7, 0.35, 1.0, 0.6]),
                                     Full()], ids=str)
def test_inclusion_and_pair_probabilities(sampler):
    assert _inclusion_ok(sampler, 7)


def test_inclusion_check_has_power(monkeypatch):
    # Negative control: a sampler that never picks the last client (tau of n-1) must be rejected.
    original = Nice.sample

    def broken(self, n, seed):
        return original(self, n - 1, seed)

    monkeypatch.setattr(Nice, "sample", broken)
    assert not _inclusion_ok(Nice(3), 7)


def test_independent_pairs_negative_control():
    # Stated p_ij of nice sampling are wrong for independent draws with the same marginals.
    s = Independent(3 / 7)
    s.pair_probability = Nice(3).pair_probability  # type: ignore[method-assign]
    assert not _inclusion_ok(s, 7)


# ------------------------------------------------------------------------------------------ aggregation
N_AGG = 6000
N, D, K = 7, 12, 4  # RandK K=4 of d=12: omega = 2, variance exactly omega ||a||^2


def _rows() -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    return torch.randn(N, D, generator=g, dtype=torch.float64) + 0.7


_SETS: dict = {}


def _sets(key: str, sampler: Sampler, n: int) -> list[torch.Tensor]:
    """The participants of N_AGG rounds (drawn once per sampler: the draws are what is slow)."""
    if key not in _SETS:
        _SETS[key] = [sampler.sample(n, s) for s in _seeds(N_AGG, run=7)]
    return _SETS[key]


def _estimates(sampler: Sampler, a: torch.Tensor, *, compress: bool, reweight: bool = True) -> torch.Tensor:
    """``(N_AGG, d)`` reweighted means of the sampled (RandK-compressed) rows, one per round seed."""
    n = a.shape[0]
    sets = _sets(str(sampler), sampler, n)
    owner = torch.cat([torch.full((len(S),), j, dtype=torch.int64) for j, S in enumerate(sets)])
    idx = torch.cat(sets)
    rows = a[idx]
    if compress:  # independent compressors: every (round, client) message keyed as its own client
        M = rows.shape[0]
        rows, _ = cp.compressors.make("randk", k=K).apply(rows, 11, clients=torch.arange(M), n=M)
    w = sampler.weights(n)[idx] if reweight else torch.ones(idx.numel(), dtype=torch.float64)
    out = torch.zeros(N_AGG, a.shape[1], dtype=torch.float64)
    out.index_add_(0, owner, rows * w.unsqueeze(1))
    return out / n


def _aggregation_ok(sampler: Sampler, *, compress: bool, formula=pp.sampled_variance, reweight: bool = True) -> bool:
    a = _rows()
    est = _estimates(sampler, a, compress=compress, reweight=reweight)
    mean = a.mean(dim=0)
    err = (est - mean).pow(2).sum(dim=1)
    expected = formula(sampler.describe(), a, 2.0 if compress else 0.0)
    if bool((est == est[0]).all()):  # a deterministic estimate (full participation, exact rows)
        return torch.allclose(est[0], mean, rtol=0, atol=1e-12) and expected == 0.0
    unbiased = bool(zscore(est, mean).abs().max() < Z)
    return unbiased and abs(float(zscore(err, expected))) < Z


SAMPLERS = [Nice(3), Independent(0.4), Independent([0.9, 0.2, 0.5, 0.7, 0.35, 1.0, 0.6]), Full()]


@pytest.mark.parametrize("compress", [False, True], ids=["exact", "randk"])
@pytest.mark.parametrize("sampler", SAMPLERS, ids=str)
def test_reweighted_mean_is_unbiased_with_the_stated_variance(sampler, compress):
    assert _aggregation_ok(sampler, compress=compress)


def test_aggregation_check_rejects_a_wrong_variance_formula(monkeypatch):
    # Negative control: B_tau with n instead of n - 1 (the with-replacement factor) must be rejected.
    monkeypatch.setattr(pp, "nice_B", lambda n, tau: (n - tau) / (tau * n))
    assert not _aggregation_ok(Nice(3), compress=False)


def test_aggregation_check_rejects_the_unweighted_mean():
    assert not _aggregation_ok(Nice(3), compress=True, reweight=False)


def test_ab_constants_are_the_variance_formula():
    a = _rows()
    mean_sq, sq_mean = float(a.pow(2).sum(1).mean()), float(a.mean(0).pow(2).sum())
    for s in [Nice(3), Independent(0.4), Full()]:
        A, B = pp.sampled_ab(s.describe(), N, 2.0)
        assert A * mean_sq - B * sq_mean == pytest.approx(pp.sampled_variance(s.describe(), a, 2.0), rel=1e-12)
    # the spec's numbers (n=7, tau=3, omega=2): nice + RandK 20.39 for its a_i; here the formula's constants
    assert pp.nice_ab(7, 3, 2.0) == pytest.approx((2 / 3 + 4 / 18, 4 / 18))
    # non-uniform independent sampling: A bounds every client's term
    A, B = pp.sampled_ab({"name": "independent", "p": [0.5, 0.25]}, 2, 1.0)
    assert (A, B) == (pytest.approx((2 / 0.25 - 1) / 2), 0.0)


def test_network_uplink_with_participants_sends_and_charges_only_them():
    a = _rows()
    comp = cp.compressors.make("randk", k=K)
    net = LocalNetwork(N)
    S = torch.tensor([1, 4, 5])
    got = net.uplink(a, comp, 3, round=0, participants=S)
    ref, bits = comp.apply(a[S], 3, clients=S, n=N)
    assert torch.equal(got[S], ref) and not got[[0, 2, 3, 6]].any()
    assert net.ledger.total("up")[S].tolist() == bits.tolist()
    assert net.ledger.total("up")[[0, 2, 3, 6]].tolist() == [0, 0, 0, 0]
    assert net.ledger.messages("up").tolist() == [0, 1, 0, 0, 1, 1, 0]
    x = net.downlink(a[0], cp.compressors.make("identity"), 3, round=0, participants=torch.tensor([2]))
    assert torch.equal(x, a[0].float().double()) or torch.allclose(x, a[0])
    assert net.ledger.messages("down").tolist() == [0, 0, 1, 0, 0, 0, 0]
    empty = net.uplink(a, comp, 4, round=1, participants=torch.tensor([], dtype=torch.int64))
    assert not empty.any() and net.ledger.messages("up").sum() == 3
    with pytest.raises(cp.errors.InputError, match="sorted distinct"):
        net.uplink(a, comp, 4, round=1, participants=torch.tensor([3, 1]))
