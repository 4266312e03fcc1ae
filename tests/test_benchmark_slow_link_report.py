"""benchmarks/slow_link.py --report-from: a file that is not a --save file gets one line and exit 2."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "slow_link.py"


def _main():
    spec = importlib.util.spec_from_file_location("slow_link_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("content", ["not json {", json.dumps({"rows": [], "probe": {}}), json.dumps([1, 2])])
def test_report_from_a_malformed_file_says_so_in_one_line(tmp_path, capsys, content):
    bad = tmp_path / "saved.json"
    bad.write_text(content)
    assert _main()(["--report-from", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a measurements file written by --save" in err[0]


def test_report_from_a_missing_file_says_so(tmp_path, capsys):
    assert _main()(["--report-from", str(tmp_path / "absent.json")]) == 2
    assert "FileNotFoundError" in capsys.readouterr().err


def test_the_committed_measurements_are_a_valid_save_file():
    """The file the closing note reports from has what --report-from reads (negative control above)."""
    saved = json.loads((SCRIPT.parent / "results" / "slow_link_100mbit_2026-12-06.json").read_text())
    rows = saved["rows"][0]
    assert {"methods", "params", "target_loss"} <= set(rows) and saved["probe"]["bandwidth"] > 0
    assert {"world", "rate", "steps", "batch_size", "params", "lr", "seed", "shaped_delay"} <= set(saved["args"])
