"""NEOLITHIC reproductions: the --quick runs write their report and verdicts; the claim checks on
synthetic numbers (held and not held)."""

from __future__ import annotations

import json
import math

import pytest

from commpress import reproductions
from commpress.reproductions import neolithic_images as images
from commpress.reproductions import neolithic_synthetic as synthetic


def _check_outputs(out, results, claims, n_claims: int) -> list[dict]:
    assert len(claims) == n_claims
    data = json.loads((out / "claims.json").read_text())
    assert [c["claim"] for c in data] == [c.claim for c in claims]
    for c in data:
        assert isinstance(c["held"], bool) and isinstance(c["numbers"], dict) and c["numbers"]
    report = (out / "report.md").read_text()
    assert "## The paper's claim" in report and "figure.png" in report and "--quick" in report
    assert "**Seeds:** 2 per method" in report and "median" in report  # medians over 2 seeds, min–max
    for c in claims:
        assert c.claim in report
    assert (out / "figure.png").stat().st_size > 10_000
    return data


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("neolithic-synthetic")
    results, claims = reproductions.run("neolithic-synthetic", quick=True, out=out, quiet=True)
    return out, results, claims


def test_synthetic_quick_writes_report_and_verdicts(synthetic_run):
    out, results, claims = synthetic_run
    _check_outputs(out, results, claims, 6)
    assert "least squares" in claims[0].claim and "logistic regression" in claims[3].claim
    report = (out / "report.md").read_text()
    assert "ε(T) per budget" in report and "lower bound" in report
    data = results.data["ls"]
    # NEOLITHIC's iterations count R rounds each: all methods end at the same budget T
    assert data["constants"]["R"] == 4 and data["constants"]["delta"] == pytest.approx(0.1)
    lb = data["lower_bound"]
    assert all(a > b for a, b in zip(lb, lb[1:]))  # the lower bound decreases in T


def test_synthetic_quick_resumes(synthetic_run):
    out, results, claims = synthetic_run
    again, claims2 = reproductions.run("neolithic-synthetic", quick=True, out=out, quiet=True)
    assert again.computed == 0 and again.resumed == results.computed + results.resumed
    assert [c.held for c in claims2] == [c.held for c in claims]


def test_images_quick_writes_report_and_verdicts(tmp_path):
    results, claims = reproductions.run("neolithic-images", quick=True, out=tmp_path, quiet=True)
    data = _check_outputs(tmp_path, results, claims, 8)
    table = results.data["table"]
    assert list(table) == ["top-k 5%", "top-k 1%", "4-bit quantization"]
    for row in table.values():
        for v in row.values():
            assert len(v["values"]) == 2 and 0.0 <= v["mean"] <= 100.0 and v["std"] >= 0.0
    report = (tmp_path / "report.md").read_text()
    assert "Scaled down" in report and "94.63 ± 0.09" in report  # the paper's table beside ours
    assert any("EF21-SGD is the least accurate" in c["claim"] for c in data)


# ----------------------------------------------------------------------------- claim checks on synthetic numbers
def test_match_verdict():
    assert synthetic.match_verdict(1.5e-3, 1e-3, 2.0) == (True, pytest.approx(1.5))
    assert synthetic.match_verdict(2.5e-3, 1e-3, 2.0)[0] is False
    assert synthetic.match_verdict(math.inf, 1e-3, 2.0)[0] is False


def test_beats_verdict():
    assert synthetic.beats_verdict(1.0, {"QSGD": 2.0, "EF21-SGD": 1.5}) == (True, [])
    assert synthetic.beats_verdict(1.0, {"QSGD": 2.0, "EF21-SGD": 0.5}) == (False, ["EF21-SGD"])
    assert synthetic.beats_verdict(math.inf, {"QSGD": math.inf})[0] is False


def test_lower_bound_verdict():
    bound = [1.0, 0.5, 0.25]
    assert synthetic.lower_bound_verdict([2.0, 1.0, 0.5], bound, 2.0) == (True, pytest.approx(1.0))
    held, worst = synthetic.lower_bound_verdict([2.0, 1.5, 1.2], bound, 2.0)  # decays slower than the bound
    assert not held and worst == pytest.approx(2.4)
    assert synthetic.lower_bound_verdict([2.0, math.inf, 1.0], bound, 2.0)[0] is False


def test_lower_bound_uses_theorem_2():
    c = {"n": 10, "delta": 0.1, "sigma2": 4.0, "Delta": 2.0, "L": 3.0}
    T = 400.0
    expected = math.sqrt(2.0 * 3.0 * 4.0 / (10 * T)) + 2.0 * 3.0 / (0.1 * T)
    assert float(synthetic.lower_bound(T, c)) == pytest.approx(expected)


def test_image_verdicts():
    assert images.on_par(93.5, 94.0, 1.0) == (True, pytest.approx(-0.5))
    assert images.on_par(92.5, 94.0, 1.0)[0] is False
    means = {"P-SGD": 94.0, "MEM-SGD": 94.3, "EF21-SGD": 87.4, "NEOLITHIC": 94.6}
    assert images.least_accurate(means, "EF21-SGD") == (True, 4)
    assert images.least_accurate(means, "MEM-SGD") == (False, 2)
    assert images.least_accurate({"a": 1.0, "b": 1.0}, "a")[0] is False  # a tie is not "the least"
    table = {"MEM-SGD": (94.35, 0.01), "DoubleSqueeze": (94.11, 0.14), "NEOLITHIC": (94.63, 0.09)}
    assert images.best_or_within_std(table, "NEOLITHIC") == (True, "NEOLITHIC", 0.0)
    assert images.best_or_within_std(table, "DoubleSqueeze")[0] is False  # 0.52 points > max(0.09, 0.14)
    assert images.best_or_within_std({"a": (94.0, 0.5), "b": (93.7, 0.1)}, "b")[0] is True


def test_paper_table_verdicts():
    """The checks applied to the paper's own ResNet-18 numbers give the paper's verdicts."""
    for setting, row in images.PAPER.items():
        assert images.on_par(row["NEOLITHIC"][0], row["P-SGD"][0], 1.0)[0]
    for setting in ("top-k 5%", "top-k 1%"):
        row = images.PAPER[setting]
        assert images.least_accurate({m: v[0] for m, v in row.items()}, "EF21-SGD")[0]
        compressed = {m: v[:2] for m, v in row.items() if m != "P-SGD"}
        assert images.best_or_within_std(compressed, "NEOLITHIC")[0]
    q4 = images.PAPER["4-bit quantization"]
    assert images.least_accurate({m: v[0] for m, v in q4.items()}, "QSGD")[0]
