"""Claims of the local-training reproductions (``proxskip``, ``gradskip``, ``tamuna``) on fabricated numbers: every claim
is tested held, not held and unmeasurable (no optimiser runs here)."""

from __future__ import annotations

import math

import pytest

from commpress.reproductions import gradskip, proxskip
from commpress.reproductions import tamuna as tamuna_mod
from tests.reproductions._fake import data_results, held, measured


# ----------------------------------------------------------------------------- proxskip
def _ps_seed(rounds, zeta=1e-3, psi=None, seed=0):
    psi = psi if psi is not None else [[0, 1.0], [500, 0.5 * (1 - zeta) ** 500], [1000, 0.5 * (1 - zeta) ** 1000]]
    return {"seed": seed, "rounds": rounds, "iterations": None if rounds is None else 30 * rounds, "p": 0.03,
            "gamma": 1.0, "zeta": zeta, "psi": psi, "final": 1e-7, "curve": [[0, 1.0], [rounds or 1, 1e-7]]}


def _ps_data(ps_rounds=(100, 110, 120), gd_rounds=2000, psi=None, p1=1e-15):
    return {"problem": {"dataset": "fake", "n": 20, "d": 10, "L_minus": 1.0, "L_max": 1.0, "mu": 1e-3,
                        "kappa_max": 1e3},
            "gd": {"rounds": gd_rounds, "iterations": gd_rounds, "gamma": 1.0, "final": 1e-7, "curve": [[0, 1.0]]},
            "proxskip": [_ps_seed(r, psi=psi, seed=k) for k, r in enumerate(ps_rounds)],
            "reduction": {"iterations": 30, "max_rel_diff": {"p=1": p1, "p=0.9": 0.3}}}


def _ps(**kw):
    return proxskip.check(data_results("proxskip", _ps_data(**kw)))


def test_proxskip_all_claims_hold_on_good_numbers():
    assert held(_ps()) == [True, True, True]
    assert all(measured(_ps()))


def test_proxskip_rounds_claim():
    assert held(_ps(ps_rounds=(300, 310, 320)))[0] is False              # ratio 0.155 > 0.1
    assert measured(_ps(ps_rounds=(300, 310, 320)))[0] is True
    claims = _ps(ps_rounds=(100, None, None))                            # median seed never reached it
    assert held(claims)[0] is False and measured(claims)[0] is False
    claims = _ps(gd_rounds=None)
    assert held(claims)[0] is False and "GD did not reach" in claims[0].unmeasurable


def test_proxskip_lyapunov_claim():
    slow = [[0, 1.0], [500, 0.9], [1000, 0.8]]                           # above (1 - 1e-3)^t
    claims = _ps(psi=slow)
    assert held(claims)[1] is False and measured(claims)[1] is True
    claims = _ps(psi=[[0, 1.0]])                                         # nothing recorded after t = 0
    assert held(claims)[1] is False and measured(claims)[1] is False


def test_proxskip_reduction_claim():
    assert held(_ps(p1=1e-9))[2] is False
    assert held(_ps(p1=math.nan))[2] is False


def test_proxskip_pure_verdicts():
    assert proxskip.rounds_verdict([10, 20, 30], 1000, 0.1)[:2] == (True, 0.02)
    assert proxskip.lyapunov_verdict([0, 10, 20], [1.0, 0.5, 0.25], 0.01)[0]
    assert not proxskip.lyapunov_verdict([0, 10, 20], [1.0, 0.99, 0.99], 0.01)[0]
    assert proxskip.reduction_verdict(1e-14, 1e-12) and not proxskip.reduction_verdict(1e-6, 1e-12)


# ----------------------------------------------------------------------------- gradskip
def _gs_run(rounds, grads, p=0.1, q=(1.0, 0.5, 0.5, 0.5), seed=0):
    pred = [1.0 / (1.0 - qi * (1.0 - p)) for qi in q]
    return {"seed": seed, "rounds": rounds, "iterations": None if rounds is None else 10 * rounds,
            "grads": grads, "p": p, "gamma": 1.0, "q": list(q), "predicted_per_round": pred, "final": 1e-9,
            "curve": [[0, 1.0], [rounds or 1, 1e-9]]}


def _gs_data(sc_rounds=100, gs_rounds=100, top=1000, small=182, reached=True):
    # Scaffnew: 1/p = 10 gradients per round on every device; GradSkip: the kappa = 10 devices (q = 0.5)
    # 1/(1 - 0.5 * 0.9) = 1.82 per round, 0.18x Scaffnew's.
    sc = [_gs_run(sc_rounds, [10 * sc_rounds + 1] * 4, q=(1, 1, 1, 1), seed=k) for k in range(3)]
    gs = [_gs_run(gs_rounds if reached else None, [top + 1, small + 1, small + 1, small + 1] if reached else None,
                  seed=k) for k in range(3)]
    return {"kappas": [1e3, 10.0, 10.0, 10.0], "d": 20, "mu": 1.0, "scaffnew": sc, "gradskip": gs}


def _gs(**kw):
    return gradskip.check(data_results("gradskip", _gs_data(**kw), params={"grad_ratio": 0.3}))


def test_gradskip_all_claims_hold_on_good_numbers():
    claims = _gs()
    assert held(claims) == [True, True, True, True] and all(measured(claims))


def test_gradskip_each_claim_can_fail_and_be_unmeasurable():
    claims = _gs(gs_rounds=130)                                          # 1.3x the rounds
    assert held(claims)[0] is False and measured(claims)[0] is True
    claims = _gs(small=400)                                              # 1203 / 3003 = 0.4 > 0.3
    assert held(claims)[1] is False and measured(claims)[1] is True
    claims = _gs(top=700)                                                # 0.7x a Scaffnew device
    assert held(claims)[2] is False and measured(claims)[2] is True
    claims = _gs(small=100)                                              # 1.0 per round vs 1.82 predicted
    assert held(claims)[3] is False and measured(claims)[3] is True
    claims = _gs(reached=False)                                          # GradSkip never reached the target
    assert not any(held(claims)) and not any(measured(claims))


@pytest.mark.parametrize("value,ref,ok", [(100, 100, True), (119, 100, True), (121, 100, False),
                                           (83, 100, False), (math.inf, 100, False)])
def test_gradskip_band_verdict(value, ref, ok):
    assert gradskip.band_verdict(value, ref, 1.2) is ok


def test_gradskip_per_round_verdict():
    assert gradskip.per_round_verdict([10.0, 2.0], [10.5, 2.1], 0.15)[0]
    assert not gradskip.per_round_verdict([10.0, 1.0], [10.5, 2.1], 0.15)[0]
    assert not gradskip.per_round_verdict([], [], 0.15)[0]


# ----------------------------------------------------------------------------- tamuna
def _tm_run(reals, seed=0, rounds=100):
    return {"seed": seed, "p": 0.1, "gamma": 1.0, "eta": 0.05, "c": 10, "reals_up": reals, "rounds": rounds,
            "iterations": 1000, "reached": reals is not None, "curve": [[0, 1.0], [rounds, 1e-9]], "final": 1e-9}


def _tm(scaffnew=(1000, 1100), compressed=(600, 650), tamuna=(500, 520)):
    data = {"n": 10, "d": 100, "kappa_max": 100.0,
            **{label: [_tm_run(v, seed=k) for k, v in enumerate(vals)]
               for label, vals in (("Scaffnew", scaffnew), ("CompressedScaffnew", compressed), ("TAMUNA", tamuna))}}
    return tamuna_mod.check(data_results("tamuna", data))


def test_tamuna_claims_held_not_held_unmeasurable():
    assert held(_tm()) == [True, True, True] and all(measured(_tm()))
    claims = _tm(compressed=(1000, 1000))                                 # 0.95x: not fewer
    assert held(claims)[0] is False and measured(claims)[0] is True
    claims = _tm(tamuna=(None, None))                                     # never reached the target
    assert held(claims)[1] is False and measured(claims)[1] is False and held(claims)[2] is False
    claims = _tm(scaffnew=(None, None))                                   # no reference
    assert not any(held(claims)[:2]) and not any(measured(claims)[:2])
    assert tamuna_mod.reals_verdict([1.0], [2.0], 0.8)[:2] == (True, 0.5)
    assert not tamuna_mod.linear_verdict([]) and tamuna_mod.linear_verdict([True, True])


# ----------------------------------------------------------------------------- the registry's three cases
def test_proxskip_held():
    test_proxskip_all_claims_hold_on_good_numbers()


def test_proxskip_not_held():
    assert held(_ps(ps_rounds=(300, 310, 320)))[0] is False
    assert held(_ps(psi=[[0, 1.0], [500, 0.9], [1000, 0.8]]))[1] is False
    assert held(_ps(p1=1e-9))[2] is False


def test_proxskip_unmeasurable():
    assert measured(_ps(ps_rounds=(100, None, None)))[0] is False
    assert measured(_ps(psi=[[0, 1.0]]))[1] is False


def test_gradskip_held():
    test_gradskip_all_claims_hold_on_good_numbers()


def test_gradskip_not_held():
    assert held(_gs(gs_rounds=130))[0] is False and measured(_gs(gs_rounds=130))[0] is True


def test_gradskip_unmeasurable():
    claims = _gs(reached=False)
    assert not any(held(claims)) and not any(measured(claims))


def test_tamuna_held():
    assert held(_tm()) == [True, True, True]


def test_tamuna_not_held():
    claims = _tm(compressed=(1000, 1000))
    assert held(claims)[0] is False and measured(claims)[0] is True


def test_tamuna_unmeasurable():
    claims = _tm(scaffnew=(None, None))
    assert not any(held(claims)[:2]) and not any(measured(claims)[:2])
