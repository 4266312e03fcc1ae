"""The d = n numbers of the CQ paper (App. B.2) match the paper to two significant digits; the matching
rule itself rejects numbers that do not match (the rigorous constants, a finite d)."""

from __future__ import annotations

import pytest

from commpress.reproductions.cq_dn_plane import decimals_of, matches_paper, round_sig, significant_of
from commpress.theory import dn_equal_analysis

PAPER = {"if_iq": 0.23, "if_cq": 0.03, "ratio": 7.29}


def test_d_equals_n_numbers_match_the_paper_to_two_significant_digits():
    a = dn_equal_analysis()  # d = n -> infinity, the paper's convention
    assert round_sig(a.if_iq, 2) == 0.23
    assert round_sig(a.ratio, 2) == round_sig(7.29, 2) == 7.3 and round_sig(a.ratio, 3) == 7.29
    # the paper prints 0.03 (one significant digit): ours, 1/32, is 0.03 at the paper's precision
    assert a.if_cq == 1 / 32 and round_sig(a.if_cq, 1) == 0.03 and round(a.if_cq, 2) == 0.03
    for key, printed in PAPER.items():
        m = matches_paper(getattr(a, key), printed)
        assert m["match at the paper's decimals"], (key, m)
        assert m.get("match to 2 significant digits", True), (key, m)


def test_other_readings_do_not_match():
    rigorous = dn_equal_analysis(convention="rigorous")  # A four times larger: 0.40 / 12.9
    assert not matches_paper(rigorous.if_iq, 0.23)["match at the paper's decimals"]
    assert not matches_paper(rigorous.ratio, 7.29)["match at the paper's decimals"]
    finite = dn_equal_analysis(1024)  # a finite d = n: 0.232 / 0.045 / 5.16
    assert matches_paper(finite.if_iq, 0.23)["match at the paper's decimals"]
    assert not matches_paper(finite.if_cq, 0.03)["match at the paper's decimals"]
    assert not matches_paper(finite.ratio, 7.29)["match to 2 significant digits"]


@pytest.mark.parametrize("x,digits,out", [(0.2277, 2, 0.23), (7.2873, 2, 7.3), (0.03125, 2, 0.031),
                                          (0.03125, 1, 0.03), (12.859, 2, 13.0), (0.0451, 2, 0.045)])
def test_round_sig(x, digits, out):
    assert round_sig(x, digits) == out


def test_printed_precision():
    assert [decimals_of(v) for v in (0.23, 0.03, 7.29, 7.3, 12.0)] == [2, 2, 2, 1, 0]
    assert [significant_of(v) for v in (0.23, 0.03, 7.29, 12.0)] == [2, 1, 3, 2]
