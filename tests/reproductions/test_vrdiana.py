"""VR-DIANA reproductions: the --quick runs write their report and verdicts; the claim checks on
synthetic numbers (held and not held)."""

from __future__ import annotations

import json
import math

import pytest

from commpress import reproductions
from commpress.reproductions import vrdiana
from commpress.reproductions import vrdiana_alpha as alpha


def _check_outputs(out, claims, n_claims: int) -> None:
    assert len(claims) == n_claims
    data = json.loads((out / "claims.json").read_text())
    assert [c["claim"] for c in data] == [c.claim for c in claims]
    for c in data:
        assert isinstance(c["held"], bool) and isinstance(c["numbers"], dict) and c["numbers"]
    report = (out / "report.md").read_text()
    assert "## The paper's claim" in report and "figure.png" in report and "## Measured numbers" in report
    assert "**Seeds:** 2 per method" in report and "seeds (diverged)" in report  # medians over 2 seeds, min–max
    for c in claims:
        assert c.claim in report
    assert (out / "figure.png").stat().st_size > 10_000


def test_vrdiana_quick_writes_report_and_verdicts(tmp_path):
    results, claims = reproductions.run("vrdiana", quick=True, out=tmp_path, quiet=True)
    _check_outputs(tmp_path, claims, 3)
    rows = results.data["phishing"]
    assert set(rows) == set(vrdiana.METHODS)
    for r in rows.values():  # relative measures start at 1
        assert r["final_rel_gap"] >= 0.0 and r["bits"] > 0
    # QSVRG pays a dense gradient per epoch on top of the quantized steps: more bits than VR-DIANA
    assert rows["QSVRG"]["bits"] > rows["VR-DIANA (L-SVRG)"]["bits"]


def test_alpha_quick_writes_report_and_verdicts(tmp_path):
    results, claims = reproductions.run("vrdiana-alpha", quick=True, out=tmp_path, quiet=True)
    _check_outputs(tmp_path, claims, 3)
    rows = results.data["rows"]
    assert {r["variant"] for r in rows} == {"lsvrg", "saga"}
    star = [r for r in rows if abs(r["ratio"] - 1.0) < 1e-4]
    assert len(star) == 2  # α* = 1/(ω+1) for both variants, ω from the block quantizer's theory
    assert len({round(r["stepsize"], 12) for r in rows}) == 1  # one γ for every α


# ----------------------------------------------------------------------------- claim checks on synthetic numbers
def test_linear_verdict():
    assert vrdiana.linear_verdict(1e-9, 1e-8, 1e-6)
    assert not vrdiana.linear_verdict(1e-9, 1e-5, 1e-6)
    assert not vrdiana.linear_verdict(math.nan, 1e-9, 1e-6)


def test_floor_verdict():
    held, ratio, above = vrdiana.floor_verdict(1e-3, 8e-4, 1e-9, 0.1, 100.0)
    assert held and ratio == pytest.approx(0.8) and above == pytest.approx(8e5)
    assert not vrdiana.floor_verdict(1e-3, 1e-5, 1e-9, 0.1, 100.0)[0]  # still descending: no floor yet
    assert not vrdiana.floor_verdict(1e-3, 9e-4, 1e-4, 0.1, 100.0)[0]  # only 9x above VR-DIANA
    assert vrdiana.floor_verdict(1e-3, 9e-4, 0.0, 0.1, 100.0)[0]       # VR-DIANA at the round-off floor


def test_bits_verdict():
    assert vrdiana.bits_verdict(1e5, {"QSVRG": 3e5, "DIANA-SGD": None}) == (True, [])
    assert vrdiana.bits_verdict(1e5, {"QSVRG": 0.9e5, "DIANA-SGD": None}) == (False, ["QSVRG"])
    assert vrdiana.bits_verdict(None, {"QSVRG": None})[0] is False


def test_monotone_verdict():
    assert alpha.monotone_verdict([0.01, 0.1, 0.05], [900.0, 300.0, 400.0]) == (True, [])
    held, bad = alpha.monotone_verdict([0.01, 0.1, 0.05], [900.0, 500.0, 400.0])
    assert not held and bad == [(0.05, 0.1)]
    assert alpha.monotone_verdict([0.01, 0.1], [400.0, 420.0], tol=50.0)[0]
    assert alpha.monotone_verdict([0.01, 0.1], [None, 300.0])[0]        # never reached -> infinite
    assert not alpha.monotone_verdict([0.01, 0.1], [300.0, None])[0]


def test_breaks_verdict():
    assert alpha.breaks_verdict(1e-2, False, 1e-6)
    assert alpha.breaks_verdict(1e-12, True, 1e-6)
    assert alpha.breaks_verdict(math.nan, False, 1e-6)
    assert not alpha.breaks_verdict(1e-9, False, 1e-6)
