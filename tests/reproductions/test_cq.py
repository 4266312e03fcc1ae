"""The CQ-paper reproductions: each --quick version runs and writes report.md, claims.json and the figure;
the claim checks follow the numbers (a fabricated table flips their verdicts)."""

from __future__ import annotations

import json
import re

import pytest

from commpress import reproductions
from commpress.cli import main
from commpress.reproductions._spec import load_spec

PNG = b"\x89PNG\r\n\x1a\n"


def _check_outputs(out, name, results, claims):
    data = json.loads((out / "claims.json").read_text())
    assert isinstance(data, list) and data
    assert len(data) == len(claims)
    for entry, claim in zip(data, claims):
        assert set(entry) >= {"claim", "held", "numbers"}
        assert set(entry) <= {"claim", "held", "numbers", "note", "unmeasurable"}
        assert isinstance(entry["held"], bool) and entry["held"] == bool(claim.held)
        assert isinstance(entry["numbers"], dict) and entry["numbers"]
        if not entry["held"]:
            assert entry.get("note") or entry.get("unmeasurable"), \
                f"{name}: a claim that did not hold needs the reading of why (or why it could not be measured)"
    report = (out / "report.md").read_text()
    spec = load_spec(name, quick=True)
    assert report.startswith(f"# Reproduction `{name}`")
    assert " ".join(spec.claim.split()[:8]) in " ".join(report.split())      # states the claim
    assert "![" in report and "(figure.png)" in report                       # shows the figure
    assert (out / "figure.png").read_bytes()[:8] == PNG
    held = sum(e["held"] for e in data)
    assert f"Verdict: {held} of {len(data)} claims held" in report
    if results.panels:  # random methods: several seeds, medians decide, the spread is shown
        assert "**Seeds:** 2 per method" in report and "## Medians and spread over seeds" in report
        assert re.search(r"\d \[[\d.,e+-]+–[\d.,e+-]+\]", report), "no median [min–max] in the report"
    for entry in data:
        assert entry["claim"] in report
    assert not spec.quick or ("--quick" in report and "What --quick changes" in report)
    for panel in results.panels.values():
        assert (out / "panels" / panel.name / "summary.json").is_file()


def test_cq_quadratic_quick_runs_and_resumes(tmp_path):
    out = tmp_path / "cq-quadratic"
    results, claims = reproductions.run("cq-quadratic", quick=True, out=out, quiet=True)
    _check_outputs(out, "cq-quadratic", results, claims)
    assert results.computed == 48 and results.resumed == 0       # 3 panels x 4 methods x 2 multipliers x 2 seeds
    assert list(results.panels) == ["s0", "s0.1", "s0.4"]
    assert all(results.panel("s0").method(m).seeds == 2 for m in results.panel("s0").methods)
    again, claims2 = reproductions.run("cq-quadratic", quick=True, out=out, quiet=True)
    assert again.computed == 0 and again.resumed == 48           # resumable like any sweep
    assert [c.as_dict() for c in claims2] == [c.as_dict() for c in claims]


def test_cq_logreg_quick_runs(tmp_path):
    out = tmp_path / "cq-logreg"
    results, claims = reproductions.run("cq-logreg", quick=True, out=out, quiet=True)
    _check_outputs(out, "cq-logreg", results, claims)
    assert list(results.panels) == ["splice"]
    assert results.panel("splice").problem().n == 16 and results.panel("splice").problem().d == 60


def test_cq_permk_quick_runs(tmp_path):
    out = tmp_path / "cq-permk"
    results, claims = reproductions.run("cq-permk", quick=True, out=out, quiet=True)
    _check_outputs(out, "cq-permk", results, claims)
    used = results.data["permk_cq_p"]
    assert used["b=2: p used"] == pytest.approx(used["b=2: p* formula"], abs=1e-5)  # the TOML's p is the rule's


def test_cq_weighted_quick_runs(tmp_path):
    out = tmp_path / "cq-weighted"
    results, claims = reproductions.run("cq-weighted", quick=True, out=out, quiet=True)
    _check_outputs(out, "cq-weighted", results, claims)


def test_cq_dn_plane_quick_runs_from_the_cli(tmp_path, capsys):
    out = tmp_path / "dn"
    assert main(["reproduce", "cq-dn-plane", "--quick", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "cq-dn-plane (quick):" in text and "claims held" in text and str(out / "report.md") in text
    claims = json.loads((out / "claims.json").read_text())
    assert claims[0]["held"] is True and "0.23" in claims[0]["claim"]
    assert "**Seeds:** none (no random draws" in (out / "report.md").read_text()  # theory: nothing to repeat
    data = json.loads((out / "data.json").read_text())
    assert len(data["d"]) == 41 and len(data["if_iq"]) == 41 and len(data["if_iq"][0]) == 41


def test_permk_cq_p_in_the_file_is_the_paper_rule():
    from commpress.reproductions.cq_permk import paper_rule_p

    spec = load_spec("cq-permk")
    for key, p in spec.params["permk_cq_p"].items():
        n, rest = key.split("x")
        d, b = rest.split("b")
        assert paper_rule_p(int(n), int(d), int(b)) == pytest.approx(p, abs=1e-6), key
    used = {(m.compressor or {}).get("blocks"): m.params.get("p") for m in spec.panel_configs()[0][1].methods
            if m.compressor and m.compressor.get("name") == "permk+cq"}
    assert used == {2: spec.params["permk_cq_p"]["16x64b2"], 4: spec.params["permk_cq_p"]["16x64b4"]}


# ----------------------------------------------------------------------------- the report shows the verdicts
def test_reports_say_not_held_with_numbers(tmp_path):
    from commpress.reproductions import cq_quadratic as q
    from commpress.reproductions._report import write_report
    from tests.reproductions._fake import panels

    labels = (q.CQ, q.IQ, q.DRIVE, q.GD)
    bad = {"s0": dict(zip(labels, ([240.0, 250.0, 260.0], 300.0, 200.0, 1000.0))),
           "s1": dict(zip(labels, (280.0, 300.0, 200.0, 1000.0)))}
    claims = q.check(panels("cq-quadratic", bad, [0.0, 0.4]))
    res = panels("cq-quadratic", bad, [0.0, 0.4])
    res.panels = {}  # the fake panels have no sweep folders to tabulate
    write_report(res, claims, [], tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "| **NO** |" in text and "did NOT hold" in text and "*Reading:*" in text
    assert "bits MARINA + CQ = 250 [240–260]" in text  # median [min–max] over the seeds


def test_reports_say_why_a_claim_could_not_be_measured(tmp_path):
    from commpress.reproductions import cq_quadratic as q
    from commpress.reproductions._report import write_claims, write_report
    from tests.reproductions._fake import panels

    nothing = dict.fromkeys((q.CQ, q.IQ, q.DRIVE, q.GD))
    res = panels("cq-quadratic", {"s0": nothing, "s1": nothing}, [0.0, 0.4])
    claims = q.check(res)
    write_claims(tmp_path / "claims.json", claims)
    data = json.loads((tmp_path / "claims.json").read_text())
    assert all(not c["held"] and c["unmeasurable"] for c in data)
    res.panels = {}
    write_report(res, claims, [], tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "Verdict: 0 of 4 claims held (4 not measurable)" in text
    assert text.count("| **NO** (not measurable) |") == 4 and text.count("*Not measurable:*") == 4
