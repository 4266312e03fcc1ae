"""``commpress reproduce`` prints each verdict: held, not held, or not held because not measurable."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import commpress.reproductions as reproductions
from commpress.cli import main
from commpress.reproductions._results import Claim


def test_the_summary_says_which_claims_could_not_be_measured(monkeypatch, capsys, tmp_path):
    claims = [
        Claim("A beats B", True, {}),
        Claim("B beats C", False, {}),
        Claim("C is monotone in alpha", False, {}, unmeasurable="no run reached the level"),
    ]
    results = SimpleNamespace(name="fake", quick=True, elapsed=1.0, out=Path(tmp_path))
    monkeypatch.setattr(reproductions, "run", lambda *a, **k: (results, claims))
    assert main(["reproduce", "cq-quadratic", "--quick", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("fake (quick): 1 of 3 claims held, 1 not measurable")
    assert "  [held] A beats B" in out
    assert "  [NOT held] B beats C" in out
    assert "  [NOT held: not measurable] C is monotone in alpha (no run reached the level)" in out
