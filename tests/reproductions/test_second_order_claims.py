"""The `fednl` and `newton-3pc` reproductions: every claim is held, not held or unmeasurable on fake numbers."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from commpress.reproductions import fednl, newton_3pc


def tr(bits=None, rounds=None, dist2=(1.0, 0.1, 1e-3), hess=(1.0, 0.01), diverged=False, hessians=None):
    out = {"bits_to_target": bits, "rounds_to_target": rounds, "dist2": list(dist2), "bits": [1.0],
           "hess_err": list(hess), "diverged": diverged}
    if hessians is not None:
        out["hessians"] = hessians
    return out


def fednl_results(**over):
    runs = {
        "rank1": tr(100.0, 10), "rank1_ill": tr(120.0, 12), "rank1_conservative": tr(300.0, 30),
        "rank1_option2": tr(150.0, 15), "topd": tr(200.0, 12), "randd": tr(None, None), "n0": tr(500.0, 40),
        "ls_far": tr(400.0, 25), "cr_far": tr(900.0, 90), "plain_far": tr(None, None, diverged=True),
        "pp": tr(800.0, 100), "bc": tr(90.0, 20), "bc_full": tr(110.0, 15),
        "gd_at_budget": {"rounds": 20, "dist2": 0.5, "best_dist2": 0.5},
        "diana_at_budget": {"rounds": 10, "dist2": 0.6, "best_dist2": 0.6},
    }
    for k, v in over.items():
        runs[k] = v
    data = {"runs": runs, "kappa": 1000.0, "kappa_ill": 10000.0, "budget": 100.0, "n": 16, "d": 123}
    return SimpleNamespace(data=data, params={"target": 1e-10}, quick=True)


def verdicts(claims):
    return [("unmeasurable" if c.unmeasurable else c.held) for c in claims]


def test_fednl_held():
    assert verdicts(fednl.check(fednl_results())) == [True] * 11


FEDNL_CASES = [
    (0, {"n0": tr(50.0, 5)}, False),
    (0, {"rank1": tr(None, None)}, "unmeasurable"),
    (1, {"gd_at_budget": {"rounds": 9, "dist2": 1e-12, "best_dist2": 1e-12}}, False),
    (2, {"rank1_ill": tr(500.0, 50)}, False),
    (2, {"rank1_ill": tr(None, None)}, "unmeasurable"),
    (3, {"rank1": tr(100.0, 10, dist2=(1.0, 0.1, 0.01))}, False),
    (3, {"rank1": tr(100.0, 10, dist2=(1.0,))}, "unmeasurable"),
    (4, {"rank1": tr(100.0, 10, hess=(1.0, 0.5))}, False),
    (5, {"rank1_conservative": tr(50.0, 5)}, False),
    (6, {"topd": tr(10.0, 5)}, False),
    (7, {"rank1_option2": tr(900.0, 60)}, False),
    (7, {"rank1_option2": tr(None, None)}, "unmeasurable"),
    (8, {"plain_far": tr(10.0, 3)}, False),
    (9, {"pp": tr(None, None)}, False),
    (10, {"bc": tr(200.0, 20)}, False),
    (10, {"bc": tr(None, None)}, "unmeasurable"),
]


@pytest.mark.parametrize("index,over,expected", [c for c in FEDNL_CASES if c[2] is False])
def test_fednl_not_held(index, over, expected):
    assert verdicts(fednl.check(fednl_results(**over)))[index] is False


@pytest.mark.parametrize("index,over,expected", [c for c in FEDNL_CASES if c[2] == "unmeasurable"])
def test_fednl_unmeasurable(index, over, expected):
    claims = fednl.check(fednl_results(**over))
    assert claims[index].unmeasurable and not claims[index].held


def n3pc_results(**over):
    runs = {}
    for tag in ("", "near_"):
        runs[tag + "fednl_rank1"] = tr(300.0, 15)
        runs[tag + "cbag_0.5"] = tr(200.0, 20, hessians=11)
        runs[tag + "cbag_0.75"] = tr(220.0, 20, hessians=16)
        runs[tag + "cbag_1.0"] = tr(260.0, 20, hessians=21)
    runs.update(ef21_topd=tr(250.0, 20), thr_ef21=tr(300.0, 20), thr_cbag=tr(260.0, 20), topd_clag=tr(240.0, 20))
    runs.update(over)
    return SimpleNamespace(data={"runs": runs, "n": 16, "d": 123}, params={"target": 1e-10}, quick=True)


def test_newton_3pc_held():
    assert verdicts(newton_3pc.check(n3pc_results())) == [True] * 6


N3PC_CASES = [
    (0, {"cbag_0.75": tr(400.0, 20, hessians=16)}, False),
    (0, {"cbag_0.75": tr(None, None, diverged=True)}, "unmeasurable"),
    (1, {"near_cbag_0.75": tr(None, None)}, "unmeasurable"),
    (2, {"near_cbag_0.5": tr(300.0, 20, hessians=21), "near_cbag_0.75": tr(300.0, 20, hessians=16)}, False),
    (2, {"near_cbag_1.0": tr(None, None)}, "unmeasurable"),
    (3, {"thr_ef21": tr(600.0, 20)}, False),
    (4, {"ef21_topd": tr(None, None)}, "unmeasurable"),
    (5, {"topd_clag": tr(None, None)}, "unmeasurable"),
]


@pytest.mark.parametrize("index,over,expected", [c for c in N3PC_CASES if c[2] is False])
def test_newton_3pc_not_held(index, over, expected):
    assert verdicts(newton_3pc.check(n3pc_results(**over)))[index] is False


@pytest.mark.parametrize("index,over,expected", [c for c in N3PC_CASES if c[2] == "unmeasurable"])
def test_newton_3pc_unmeasurable(index, over, expected):
    claims = newton_3pc.check(n3pc_results(**over))
    assert claims[index].unmeasurable and not claims[index].held


def test_the_figures_write_pngs_from_fabricated_data(tmp_path):
    """Both figures draw from fabricated results (budget runs without curves, short traces) and
    return the PNG's path; with the first-order curves recorded as well."""
    res = fednl_results()
    res.params["dataset"] = "a9a"
    out = fednl.figure(res, tmp_path / "fednl.png")
    assert out == tmp_path / "fednl.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = {"rounds": 2, "dist2": 0.5, "best_dist2": 0.5, "curve_bits": [0.0, 10.0, 20.0],
             "curve_dist2": [1.0, 0.7, 0.5]}
    assert fednl.figure(fednl_results(gd_at_budget=curve), tmp_path / "fednl2.png").stat().st_size > 0
    out = newton_3pc.figure(n3pc_results(), tmp_path / "n3pc.png")
    assert out == tmp_path / "n3pc.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
