"""Claims of ``smoothness-matrices`` and ``smoothness-aware-quantization`` on fabricated numbers: each claim
held, not held, and not measurable."""

from __future__ import annotations

import math

import pytest

from commpress.reproductions import smoothness_aware_quantization as saq
from commpress.reproductions import smoothness_matrices as sm
from tests.reproductions._fake import data_results, held, measured, method, panels


def _sm(diana_plus, diana, dcgd_plus_final, dcgd_final):
    table = {"diana-mushrooms": {"DIANA+": method(bits=diana_plus), "DIANA": method(bits=diana)},
             "dcgd-mushrooms": {"DCGD+": method(final=dcgd_plus_final), "DCGD": method(final=dcgd_final)}}
    return sm.check(panels("smoothness-matrices", table, [0.0, 0.0]))


def test_smoothness_matrices_held():
    claims = _sm([100, 120], [200, 220], [1e-6, 2e-6], [1e-4, 2e-4])
    assert held(claims) == [True, True] and measured(claims) == [True, True]


def test_smoothness_matrices_not_held():
    claims = _sm([300, 320], [200, 220], [1e-3, 2e-3], [1e-4, 2e-4])
    assert held(claims) == [False, False] and measured(claims) == [True, True]
    assert "DIANA did at least as well" in claims[0].note


def test_smoothness_matrices_unmeasurable():
    claims = _sm([None, None], [None, None], [math.inf, math.inf], [math.inf, math.inf])
    assert held(claims) == [False, False] and measured(claims) == [False, False]


def _row(nu_bn=0.3, nu_b1=0.8, saq_proxy=1.0, dither=5.0, sparse=2.0, b1_proxy=3.0):
    return {"dataset": "splice", "n": 10, "d": 60, "L": 1.0,
            "nu": {saq.SAQ_BLOCK_N: nu_bn, saq.SAQ_BLOCK_1: nu_b1, saq.SAQ_STEPS: 0.5, saq.DITHER: 9.0, saq.SPARSE: 4.0},
            "bits": {k: 200.0 for k in (saq.SAQ_BLOCK_N, saq.SAQ_BLOCK_1, saq.SAQ_STEPS, saq.DITHER, saq.SPARSE)},
            "proxy": {saq.SAQ_BLOCK_N: saq_proxy, saq.SAQ_BLOCK_1: b1_proxy, saq.SAQ_STEPS: 2 * saq_proxy,
                      saq.DITHER: dither, saq.SPARSE: sparse},
            "nu_mc_at_x0": {saq.SAQ_BLOCK_N: 0.1, saq.SAQ_BLOCK_1: 0.2, saq.SAQ_STEPS: 0.1}}


def _saq(row):
    return saq.check(data_results("smoothness-aware-quantization", {"rows": [row]}))


def test_smoothness_aware_quantization_held():
    claims = _saq(_row())
    assert held(claims) == [True, True, False] and measured(claims) == [True, True, False]


def test_smoothness_aware_quantization_not_held():
    claims = _saq(_row(nu_bn=0.9, saq_proxy=3.0, b1_proxy=2.5))
    assert held(claims) == [False, False, False] and measured(claims) == [True, True, False]
    assert "SM sparsification" in claims[0].note


def test_smoothness_aware_quantization_unmeasurable():
    claims = _saq(_row(nu_bn=math.nan, saq_proxy=math.inf, b1_proxy=math.inf))
    assert held(claims) == [False, False, False] and measured(claims) == [False, False, False]


def test_saq_proxy_is_the_dcgd_plus_rate_times_bits():
    assert saq.proxy(1.0, 5.0, 10, 100.0) == pytest.approx(200.0)
    assert saq.proxy(1.0, math.inf, 10, 100.0) == math.inf


# ----------------------------------------------------------------------------- basis-learn
from commpress.reproductions import basis_learn as bl  # noqa: E402


def _bl(data_bits, standard_bits, full_rounds, newton_rounds):
    row = {"dataset": "splice", "n": 20, "d": 60, "r_max": 50,
           "bits": {"data K=50": data_bits, "standard K=50": standard_bits},
           "rounds": {"data K=50": 9.0, "standard K=50": 9.0, "data full": full_rounds, "newton": newton_rounds}}
    return bl.check(data_results("basis-learn", {"rows": [row]}))


def test_basis_learn_held():
    claims = _bl(1e5, math.inf, 8.0, 8.0)
    assert held(claims) == [True, True] and measured(claims) == [True, True]


def test_basis_learn_not_held():
    claims = _bl(3e5, 2e5, 9.0, 8.0)
    assert held(claims) == [False, False] and measured(claims) == [True, True]


def test_basis_learn_unmeasurable():
    claims = _bl(math.inf, math.inf, math.inf, math.inf)
    assert held(claims) == [False, False] and measured(claims) == [False, False]


def test_figures_write_a_png_from_fabricated_data(tmp_path):
    curve = {"bits": [1e4, 2e4, 3e4], "gap": [1.0, 1e-4, 1e-11]}
    row = {"dataset": "splice", "n": 20, "d": 60, "r_max": 50,
           "bits": {"data K=50": 3e4, "standard K=50": math.inf}, "rounds": {},
           "curves": {"data K=50": curve, "standard K=50": {"bits": [0.0, 5e4], "gap": [1.0, 0.5]},
                      "data full": curve, "newton": curve}}
    for module, name, data in ((bl, "basis-learn", {"rows": [row]}),
                               (saq, "smoothness-aware-quantization", {"rows": [_row(), {**_row(), "dataset": "phishing"}]})):
        out = module.figure(data_results(name, data), tmp_path / f"{name}.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
