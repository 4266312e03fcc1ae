"""The results store: atomic files, done markers with checksums, nothing trusted unverified."""

from __future__ import annotations

import json
import math

import pytest

from commpress.errors import DataFileError
from commpress.experiments import store

COLUMNS = {"iteration": [0, 1, 2], "bits_up": [10.0, 20.0, 30.0], "bits_down": [0.0, 5.0, 10.0],
           "grad_norm_sq": [1.0, 0.1 + 0.2, math.inf], "loss": [0.5, 1e-300, math.nan], "wall_time": [0.0, 0.1, 0.2]}


def _write(run_dir, run_id="abc"):
    store.write_run(run_dir, {"run_id": run_id, "x": 1}, COLUMNS, {"status": "ok", "value": math.inf})


def test_a_complete_run_verifies_and_reads_back_exactly(tmp_path):
    run_dir = tmp_path / "abc"
    _write(run_dir)
    assert store.check_run(run_dir, "abc") is None
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "done.json", "metrics.csv", "summary.json"]
    run = store.load_run(run_dir)
    m = run["metrics"]
    assert m["iteration"] == [0, 1, 2]
    assert m["grad_norm_sq"][:2] == [1.0, 0.1 + 0.2] and math.isinf(m["grad_norm_sq"][2])  # repr round trip
    assert m["loss"][1] == 1e-300 and math.isnan(m["loss"][2])
    assert run["summary"]["value"] == "inf"  # valid JSON, read back with store.as_float
    assert store.as_float(run["summary"]["value"]) == math.inf


def test_truncated_metrics_are_detected(tmp_path):
    run_dir = tmp_path / "abc"
    _write(run_dir)
    path = run_dir / "metrics.csv"
    path.write_bytes(path.read_bytes()[:-7])
    reason = store.check_run(run_dir, "abc")
    assert reason is not None and "metrics.csv" in reason and "checksum" in reason
    with pytest.raises(DataFileError, match="not complete"):
        store.load_run(run_dir)


@pytest.mark.parametrize("damage,needle", [
    (lambda d: (d / "done.json").unlink(), "no done.json"),
    (lambda d: (d / "done.json").write_text("{not json"), "damaged"),
    (lambda d: (d / "summary.json").unlink(), "summary.json is missing"),
    (lambda d: (d / "config.json").write_text("{}"), "config.json does not match"),
])
def test_damaged_run_folders_are_not_trusted(tmp_path, damage, needle):
    run_dir = tmp_path / "abc"
    _write(run_dir)
    damage(run_dir)
    reason = store.check_run(run_dir, "abc")
    assert reason is not None and needle in reason


def test_a_done_marker_of_another_run_is_not_trusted(tmp_path):
    run_dir = tmp_path / "abc"
    _write(run_dir, run_id="other")
    assert "belongs to run 'other'" in store.check_run(run_dir, "abc")
    assert store.check_run(tmp_path / "never", "never") == "not run yet"


def test_rewriting_clears_the_old_folder_and_leaves_no_temporary_files(tmp_path):
    run_dir = tmp_path / "abc"
    _write(run_dir)
    (run_dir / "stale.txt").write_text("left over by a crash")
    (run_dir / "done.json").unlink()
    _write(run_dir)
    assert store.check_run(run_dir, "abc") is None
    assert not (run_dir / "stale.txt").exists()
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_atomic_write_replaces_whole_files(tmp_path):
    path = tmp_path / "f.json"
    store.atomic_write(path, "first")
    store.atomic_write(path, json.dumps({"a": 1}))
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_metrics_reject_ragged_columns():
    with pytest.raises(ValueError, match="different lengths"):
        store.metrics_csv({"iteration": [0, 1], "bits_up": [1.0]})


def test_a_valid_folder_stored_meanwhile_by_another_process_is_kept(tmp_path):
    run_dir = tmp_path / "abc"
    _write(run_dir)
    first = (run_dir / "summary.json").read_text()
    store.write_run(run_dir, {"run_id": "abc", "x": 1}, COLUMNS, {"status": "other"})
    assert (run_dir / "summary.json").read_text() == first
    assert store.check_run(run_dir, "abc") is None and [p.name for p in tmp_path.iterdir()] == ["abc"]


def test_staging_folders_of_dead_processes_are_removed(tmp_path):
    import os

    dead = tmp_path / ".abc.tmp-99999999"  # above any pid_max: no such process
    alive = tmp_path / f".def.tmp-{os.getppid()}"
    for d in (dead, alive):
        d.mkdir()
        (d / "metrics.csv").write_text("iteration\n0\n")
    store.clean_stale(tmp_path)
    assert not dead.exists() and alive.exists()
