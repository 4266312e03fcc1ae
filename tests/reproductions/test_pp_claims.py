"""Claim checks of the ``pp`` reproduction (PP-MARINA, DASHA-PP) on fabricated numbers: held, not held,
and not measurable (then not held, with the reason); plus the pure verdicts."""

from __future__ import annotations

import math

from commpress.reproductions import pp
from tests.reproductions._fake import data_results, held, measured, spread

MARINA = ["MARINA (full)", "PP-MARINA τ = n/2", "PP-MARINA τ = n/4"]
DASHA = ["DASHA-PP p_a = 1", "DASHA-PP p_a = 1/2", "DASHA-PP p_a = 1/4"]
INF = math.inf


def _row(bits, rounds):
    bits = bits if isinstance(bits, (list, tuple)) else [bits]
    rounds = rounds if isinstance(rounds, (list, tuple)) else [rounds]
    return {"bits_up": spread(*bits), "rounds": spread(*rounds), "multiplier": 4.0, "edge": False, "stepsize": 0.1}


def _results(marina, dasha, reductions=None):
    rows = {**{m: _row(*v) for m, v in zip(MARINA, marina)}, **{m: _row(*v) for m, v in zip(DASHA, dasha)}}
    red = {"PP-MARINA full = MARINA": True, "DASHA-PP p_a = 1 = DASHA": True} if reductions is None else reductions
    return data_results("pp", {"main": rows, "reductions": red}, panel_labels={"main": "fake panel"})


def test_pp_held():
    # rounds grow with fewer clients; bits per client do not; DASHA-PP's bits grow slower than 1/p_a
    # (one bad seed out of three does not flip a median)
    claims = pp.check(_results([(1000, 50), ([900, 950, 5000], 100), (800, [200, 210, 9])],
                               [(1000, 100), (1500, 200), (3000, 400)]))
    assert held(claims) == [True, True, True, True]
    assert all(measured(claims))


def test_pp_not_held():
    claims = pp.check(_results([(1000, 50), (1200, 40), (1300, 300)], [(1000, 100), (2500, 200), (3000, 400)],
                               {"PP-MARINA full = MARINA": True, "DASHA-PP p_a = 1 = DASHA": False}))
    assert held(claims) == [False, False, False, False]
    assert all(measured(claims)) and all(c.note for c in claims)
    assert claims[1].numbers["bits(τ)/bits(full)"] == [1.2, 1.3]


def test_pp_unmeasurable():
    claims = pp.check(_results([(INF, INF), (INF, INF), (INF, INF)], [(INF, INF), (1500, 200), (3000, 400)]))
    assert held(claims)[:3] == [False, False, False]
    assert not any(measured(claims)[:3])
    assert all(c.unmeasurable for c in claims[:3])
    # a method missing from the panel
    res = _results([(1000, 50)], [])
    claims = pp.check(res)
    assert not claims[0].held and "not run" in claims[0].unmeasurable


def test_pure_verdicts():
    assert pp.increasing_verdict([1, 2, INF]) == (True, "")
    assert pp.increasing_verdict([1, INF, INF])[1]          # two infs are not ordered
    assert pp.increasing_verdict([2, 1, 3]) == (False, "")
    assert pp.not_more_verdict(10, [10, 9]) == (True, "") and pp.not_more_verdict(10, [11, 9]) == (False, "")
    assert pp.not_more_verdict(INF, [INF, INF])[1]
    held_, scaled, un = pp.sublinear_verdict(100, [150, 390], [0.5, 0.25])
    assert held_ and scaled == [0.75, 0.975] and not un
    assert pp.sublinear_verdict(100, [200, 100], [0.5, 0.25])[0] is False   # exactly 1/p_a is not "less"
    assert pp.sublinear_verdict(INF, [1, 2], [0.5, 0.25])[2]


def test_pp_files_validate_and_build_their_sweeps():
    from commpress.experiments.config import check
    from commpress.reproductions._spec import load_spec

    for quick in (False, True):
        spec = load_spec("pp", quick=quick)
        assert spec.title and spec.source and spec.claim and spec.notes
        ((panel, config),) = spec.panel_configs()
        labels = [m.label for m in config.methods]
        assert labels == MARINA + DASHA
        check(config)  # every method builds: the samplers fit n, p = "bits_ratio" resolves
