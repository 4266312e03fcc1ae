"""The CQ-paper reproductions: each --quick version runs and writes report.md, claims.json and the figure;
the claim checks follow the numbers (a fabricated table flips their verdicts)."""

from __future__ import annotations

import json

import pytest

from commpress import reproductions
from commpress.cli import main
from commpress.experiments import load_config
from commpress.reproductions import Panel, Results
from commpress.reproductions._spec import load_spec

PNG = b"\x89PNG\r\n\x1a\n"


def _check_outputs(out, name, results, claims):
    data = json.loads((out / "claims.json").read_text())
    assert isinstance(data, list) and data
    assert len(data) == len(claims)
    for entry, claim in zip(data, claims):
        assert set(entry) >= {"claim", "held", "numbers"} and set(entry) <= {"claim", "held", "numbers", "note"}
        assert isinstance(entry["held"], bool) and entry["held"] == bool(claim.held)
        assert isinstance(entry["numbers"], dict) and entry["numbers"]
        if not entry["held"]:
            assert entry.get("note"), f"{name}: a claim that did not hold needs the reading of why"
    report = (out / "report.md").read_text()
    spec = load_spec(name, quick=True)
    assert report.startswith(f"# Reproduction `{name}`")
    assert " ".join(spec.claim.split()[:8]) in " ".join(report.split())      # states the claim
    assert "![" in report and "(figure.png)" in report                       # shows the figure
    assert (out / "figure.png").read_bytes()[:8] == PNG
    held = sum(e["held"] for e in data)
    assert f"Verdict: {held} of {len(data)} claims held" in report
    for entry in data:
        assert entry["claim"] in report
    assert not spec.quick or ("--quick" in report and "What --quick changes" in report)
    for panel in results.panels.values():
        assert (out / "panels" / panel.name / "summary.json").is_file()


def test_cq_quadratic_quick_runs_and_resumes(tmp_path):
    out = tmp_path / "cq-quadratic"
    results, claims = reproductions.run("cq-quadratic", quick=True, out=out, quiet=True)
    _check_outputs(out, "cq-quadratic", results, claims)
    assert results.computed == 36 and results.resumed == 0
    assert list(results.panels) == ["s0", "s0.1", "s0.4"]
    again, claims2 = reproductions.run("cq-quadratic", quick=True, out=out, quiet=True)
    assert again.computed == 0 and again.resumed == 36           # resumable like any sweep
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


# ----------------------------------------------------------------------------- the checks can fail
def _fake_results(name, bits_by_panel, noise):
    """Results whose panels have the given bits to target per method (one seed, straight curves)."""
    spec = load_spec(name, quick=True)
    res = Results(name=name, spec=spec, out=None, quick=True)
    for k, (pname, bits) in enumerate(bits_by_panel.items()):
        cfg = load_config({"problem": {"name": "quadratic", "n_clients": 4, "dim": 8, "noise_scale": noise[k]},
                           "run": {"algorithm": "gd", "target": 1e-4}})
        methods, runs = {}, {}
        for label, b in bits.items():
            rid = f"{pname}-{label}"
            reached = b is not None
            methods[label] = {"stepsize_multiplier": 1.0, "bits_to_target": b, "final_grad_norm_sq": 1e-5,
                              "reached_target": reached, "status": ["target_reached"], "run_ids": [rid]}
            runs[rid] = {"spec": {"run_id": rid}, "summary": {"params": {"p": 0.1}},
                         "metrics": {"bits_up": [0.0, float(b or 1e9)], "grad_norm_sq": [1.0, 1e-5 if reached else 1.0]}}
        res.panels[pname] = Panel(pname, pname, cfg, {"methods": methods, "target": 1e-4}, None, runs)
    return res


def test_cq_quadratic_check_follows_the_numbers():
    from commpress.reproductions import cq_quadratic as q

    good = {"s0": {q.CQ: 100.0, q.IQ: 300.0, q.DRIVE: 200.0, q.GD: 1000.0},
            "s1": {q.CQ: 250.0, q.IQ: 300.0, q.DRIVE: 260.0, q.GD: 1000.0}}
    claims = q.check(_fake_results("cq-quadratic", good, [0.0, 0.4]))
    assert [c.held for c in claims] == [True, True, True, True]
    bad = {"s0": {q.CQ: 250.0, q.IQ: 300.0, q.DRIVE: 200.0, q.GD: 1000.0},     # DRIVE beats CQ at L± = 0
           "s1": {q.CQ: None, q.IQ: 300.0, q.DRIVE: 200.0, q.GD: 1000.0}}      # CQ never reaches the target
    claims = q.check(_fake_results("cq-quadratic", bad, [0.0, 0.4]))
    assert [c.held for c in claims] == [False, False, False, True]
    assert all(c.note for c in claims if not c.held)
    assert claims[0].numbers["bits MARINA + CQ"] == 250 and claims[1].numbers["CQ / IQ per panel"]
    shrink = {"s0": {q.CQ: 100.0, q.IQ: 300.0, q.DRIVE: 200.0, q.GD: 1000.0},
              "s1": {q.CQ: 100.0, q.IQ: 600.0, q.DRIVE: 400.0, q.GD: 1000.0}}   # the advantage grows instead
    assert not q.check(_fake_results("cq-quadratic", shrink, [0.0, 0.4]))[3].held


def test_cq_weighted_check_follows_the_numbers():
    from commpress.reproductions import cq_weighted as w

    spread = [0.0, 4.0]  # quadratic (Algorithm 5) noise: L_QM/L_AM grows with it too
    good = {"s0": {w.ISCC: 100.0, w.DRIVE: 150.0}, "s4": {w.ISCC: 100.0, w.DRIVE: 400.0}}
    assert [c.held for c in w.check(_fake_results("cq-weighted", good, spread))] == [True, True]
    bad = {"s0": {w.ISCC: 200.0, w.DRIVE: 150.0}, "s4": {w.ISCC: 400.0, w.DRIVE: 300.0}}
    claims = w.check(_fake_results("cq-weighted", bad, spread))
    assert [c.held for c in claims] == [False, False] and all(c.note for c in claims)


def test_reports_say_not_held_with_numbers(tmp_path):
    from commpress.reproductions import cq_quadratic as q
    from commpress.reproductions._report import write_report

    bad = {"s0": {q.CQ: 250.0, q.IQ: 300.0, q.DRIVE: 200.0, q.GD: 1000.0},
           "s1": {q.CQ: 280.0, q.IQ: 300.0, q.DRIVE: 200.0, q.GD: 1000.0}}
    res = _fake_results("cq-quadratic", bad, [0.0, 0.4])
    res.panels = {}  # the fake panels have no sweep folders to tabulate
    claims = q.check(_fake_results("cq-quadratic", bad, [0.0, 0.4]))
    write_report(res, claims, [], tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "| **NO** |" in text and "did NOT hold" in text and "*Reading:*" in text
    assert "bits MARINA + CQ = 250" in text
