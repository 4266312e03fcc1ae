"""Bidirectional reproductions (ef21-p, marina-p, ef21-bc): every claim held, not held and unmeasurable on
hand-chosen numbers (no optimiser run); the pure verdicts; ``commpress plot --x bits_total``."""

from __future__ import annotations

import math

import pytest

from commpress.reproductions import ef21_bc, ef21_p, marina_p
from commpress.reproductions._bidirectional import fewer_verdict, order_verdict, series, to_level
from commpress.reproductions._curves import Curve
from tests.reproductions._fake import data_results, held, measured, spread

INF = math.inf


def _reasons(claims) -> bool:
    return all(c.unmeasurable or c.held or c.note for c in claims)


# ----------------------------------------------------------------------------- pure pieces
def test_verdicts_and_bits_total_series():
    assert fewer_verdict(1.0, 2.0) == (True, "") and fewer_verdict(3.0, 2.0) == (False, "")
    assert fewer_verdict(1.0, INF) == (True, "")          # the other never reached the level
    assert not fewer_verdict(INF, INF)[0] and fewer_verdict(INF, INF)[1]
    assert order_verdict([1, 2, 3]) == (True, "") and order_verdict([1, 3, 2]) == (False, "")
    assert order_verdict([1, 2, INF]) == (True, "") and order_verdict([INF, 1, 2])[1]
    assert marina_p.decrease_verdict([10.0, 5.0]) == (True, "") and marina_p.decrease_verdict([5.0, 10.0]) == (False, "")
    assert marina_p.decrease_verdict([INF, 5.0])[1]
    run = {"metrics": {"bits_up": [0, 10, 20], "bits_down": [5, 25, 45], "grad_norm_sq": [1.0, 0.1, 0.01],
                       "iteration": [0, 1, 2]}, "summary": {"status": "target_reached"}}
    c = series(run)
    assert c.x == [5.0, 35.0, 65.0] and to_level(c, 0.1) == 35.0 and to_level(c, 1e-3) == INF
    assert to_level(Curve([0, 1], [1.0, math.nan], True), 0.5) == INF
    assert ef21_p.linear_verdict(120.0) and not ef21_p.linear_verdict(INF)
    assert ef21_p.reduction_verdict(1e-13, 1e-10) and not ef21_p.reduction_verdict(1e-3, 1e-10)
    assert ef21_bc.reduction_verdict(0.0, 1e-10) and not ef21_bc.reduction_verdict(math.nan, 1e-10)


# ----------------------------------------------------------------------------- ef21-p
def _ef21_p_row(bits_total, rounds, mult=4.0):
    return {"multiplier": mult, "edge": False, "stepsize": 0.1, "bits_total": spread(*bits_total),
            "bits_up": spread(*[b / 2 for b in bits_total]), "rounds": spread(*rounds),
            "final_rel_gap": spread(1e-9, 1e-9)}


def _ef21_p_results(ef_bits, dense_bits, ef_rounds=(100, 110), diff=1e-14, why=""):
    rows = {} if why else {ef21_p.EF: _ef21_p_row(ef_bits, ef_rounds), ef21_p.DENSE: _ef21_p_row(dense_bits, (50, 60))}
    return data_results("ef21-p", {"q": {"rows": rows, "unmeasurable": why, "reduction_max_diff": diff}},
                        panel_labels={"q": "quadratic"})


def test_ef21_p_held():
    claims = ef21_p.check(_ef21_p_results((7e4, 8e4), (1.9e5, 2e5)))
    assert held(claims) == [True, True, True] and all(measured(claims))


def test_ef21_p_not_held():
    claims = ef21_p.check(_ef21_p_results((3e5, 4e5), (1.9e5, 2e5), ef_rounds=(INF, INF), diff=1e-3))
    assert held(claims) == [False, False, False] and all(measured(claims)) and _reasons(claims)
    # EF21-P + DIANA reaching the level while DIANA never does is held
    assert held(ef21_p.check(_ef21_p_results((7e4, 8e4), (INF, INF))))[1]


def test_ef21_p_unmeasurable():
    claims = ef21_p.check(_ef21_p_results((INF, INF), (INF, INF)))
    assert held(claims)[1] is False and not measured(claims)[1]
    claims = ef21_p.check(_ef21_p_results((1.0,), (2.0,), why="f* is not known"))
    assert held(claims)[:2] == [False, False] and measured(claims) == [False, False, True] and _reasons(claims)


# ----------------------------------------------------------------------------- marina-p
_ORDER = ["MARINA-P + PermK", "MARINA-P + RandK (independent)", "MARINA-P + RandK (same)"]


def _marina_p_results(coords: dict[str, list[float]], equal=True):
    data = {"reduction_p1_equals_gd": equal}
    labels = {}
    for pname, cs in coords.items():
        data[pname] = {m: {"coordinates": spread(c), "bits_down": spread(32 * c), "rounds": spread(10.0),
                           "bits_total": spread(64 * c), "stepsize": 0.5} for m, c in zip(_ORDER, cs)}
        labels[pname] = pname
    res = data_results("marina-p", data, panel_labels=labels)
    for p in res.panels.values():
        p.summary["target"] = 1e-10
    return res


def test_marina_p_held():
    claims = marina_p.check(_marina_p_results({"s0.05-n10": [890, 2920, 7008], "s0-n10": [684, 2710, 6820],
                                               "s0-n20": [351, 1880, 7144]}))
    assert held(claims) == [True] * 5 and all(measured(claims))


def test_marina_p_not_held():
    claims = marina_p.check(_marina_p_results({"s0.05-n10": [3000, 2920, 7008], "s0-n10": [684, 2710, 6820],
                                               "s0-n20": [700, 1880, 7144]}, equal=False))
    assert held(claims) == [False, True, True, False, False] and all(measured(claims)) and _reasons(claims)


def test_marina_p_unmeasurable():
    claims = marina_p.check(_marina_p_results({"s0.05-n10": [INF, INF, INF], "s0-n10": [INF, 2710, 6820],
                                               "s0-n20": [351, 1880, 7144]}))
    assert held(claims)[:4] == [False, False, True, False]
    assert measured(claims)[:4] == [False, False, True, False] and _reasons(claims)


# ----------------------------------------------------------------------------- ef21-bc
def _ef21_bc_row(total, mult=16.0):
    return {"multiplier": mult, "edge": True, "stepsize": 0.07, "bits_total": spread(total),
            "bits_up": spread(total / 2), "bits_down": spread(total / 2), "rounds": spread(80.0)}


def _ef21_bc_results(bc, ef21, diff=0.0):
    rows = {ef21_bc.BC: _ef21_bc_row(bc), ef21_bc.EF21: _ef21_bc_row(ef21)}
    res = data_results("ef21-bc", {"s": {"rows": rows, "reduction_max_diff": diff}}, panel_labels={"s": "synthetic"})
    res.panels["s"].summary["target"] = 1.2e-4
    return res


def test_ef21_bc_held():
    claims = ef21_bc.check(_ef21_bc_results(7680.0, 55040.0))
    assert held(claims) == [True, True] and all(measured(claims))


def test_ef21_bc_not_held():
    claims = ef21_bc.check(_ef21_bc_results(60000.0, 55040.0, diff=1e-4))
    assert held(claims) == [False, False] and all(measured(claims)) and _reasons(claims)


def test_ef21_bc_unmeasurable():
    claims = ef21_bc.check(_ef21_bc_results(INF, INF))
    assert held(claims) == [False, True] and measured(claims) == [False, True] and _reasons(claims)


# ----------------------------------------------------------------------------- commpress plot --x bits_total
def test_plot_bits_total_is_uplink_plus_downlink(tmp_path):
    from commpress.cli import main
    from commpress.experiments import run
    from commpress.experiments.plots import sweep_curves

    config = {"name": "bidir", "problem": {"name": "quadratic", "n_clients": 4, "dim": 8, "reg": 0.1},
              "run": {"stepsize_multipliers": [1], "iterations": 12, "record_every": 4},
              "methods": [{"algorithm": "ef21_bc", "compressor": {"name": "topk", "k": 1},
                           "downlink_compressor": {"name": "topk", "k": 2}, "label": "EF21-BC"}]}
    run(config, out=tmp_path / "s", quiet=True)
    total, _ = sweep_curves(tmp_path / "s", "bits_total", "grad_norm_sq")
    up, _ = sweep_curves(tmp_path / "s", "bits", "grad_norm_sq")
    assert len(total) == 1 and len(total[0].x) == len(up[0].x) >= 3
    # up: 32 d (g~^0) + Top-1 per round (32 + 3 index bits -> 40); down: 32 d (g^0) + Top-2 (64 + 6 -> 72)
    for t, u, it in zip(total[0].x, up[0].x, range(0, 13, 4)):
        assert u == 32 * 8 + it * 40 and t == u + 32 * 8 + it * 72
    assert main(["plot", str(tmp_path / "s"), "--x", "bits_total", "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path / "s"), "--x", "bits_sum"])
