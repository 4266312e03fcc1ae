"""The runner: every run stored once, resume redoes exactly the incomplete ones, --jobs changes
nothing, the report picks the right multiplier."""

from __future__ import annotations

import json

import pytest

from commpress.experiments import expand, load_config, run
from commpress.experiments import store
from tests.experiments._stub import failing_runner, stub_runner

SWEEP = {
    "name": "stub",
    "problem": {"name": "quadratic", "n_clients": 4, "dim": 8, "noise_scale": 0.0},
    "run": {"algorithms": ["marina", "gd"], "compressors": ["cq", "iq"], "stepsize_multipliers": [1, 2, 4, 8],
            "seeds": [0, 1], "iterations": 60, "target": 1e-6},
}


def _metrics(out, keep_time=False):
    """{run_id: metrics without wall time} of every run folder in ``out``."""
    found = {}
    for d in sorted((out / "runs").iterdir()):
        m = store.read_metrics(d / "metrics.csv")
        if not keep_time:
            m.pop("wall_time")
        found[d.name] = m
    return found


def test_sweep_stores_every_run_and_picks_the_best_multiplier(tmp_path):
    result = run(SWEEP, out=tmp_path, quiet=True, plots=False, runner=stub_runner)
    specs = expand(load_config(SWEEP))
    assert len(specs) == 3 * 4 * 2 and result.computed == len(specs) and result.resumed == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(s.run_id for s in specs)
    assert all(store.check_run(tmp_path / "runs" / s.run_id, s.run_id) is None for s in specs)

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))  # what run() returns is what it wrote
    methods = summary["methods"]
    assert list(methods) == ["MARINA + CQ", "MARINA + IQ", "GD"]
    # stub: g_t = (1 + seed/100) / 5^t at multiplier 4 -> first t with g_t <= 1e-6 is t = 9 for both seeds
    for label, per_round in (("MARINA + CQ", 100.0), ("MARINA + IQ", 300.0), ("GD", 3200.0)):
        m = methods[label]
        assert m["stepsize_multiplier"] == 4.0 and m["selected_by"] == "bits_to_target"
        assert m["bits_to_target"] == 10 * per_round and m["iterations"] == 9
        assert m["stepsize"] == pytest.approx(0.4)
        assert m["final_grad_norm_sq"] <= 1e-6
        assert m["multipliers"]["8"]["reached_target"] is False
        assert set(m) >= {"bits_to_target", "final_grad_norm_sq", "iterations", "stepsize"}
    assert methods["MARINA + CQ"]["bits_to_target"] < methods["MARINA + IQ"]["bits_to_target"] < methods["GD"]["bits_to_target"]
    assert "MARINA + CQ" in result.table and "vs GD" in result.table
    assert (tmp_path / "config.toml").is_file() and (tmp_path / "summary.txt").is_file()


def test_without_a_target_the_smallest_final_gradient_wins(tmp_path):
    cfg = {**SWEEP, "run": {**SWEEP["run"], "target": None, "iterations": 5}}
    cfg["run"].pop("target")
    result = run(cfg, out=tmp_path, quiet=True, plots=False, runner=stub_runner)
    for m in result.summary["methods"].values():
        assert m["selected_by"] == "final_grad_norm_sq" and m["bits_to_target"] is None
        assert m["stepsize_multiplier"] == 4.0  # rate 1/5 beats 1/3, 1/2 and divergence


def test_resume_redoes_nothing_that_is_complete_and_everything_that_is_not(tmp_path):
    first = run(SWEEP, out=tmp_path, quiet=True, plots=False, runner=stub_runner)
    before = _metrics(tmp_path, keep_time=True)
    again = run(SWEEP, out=tmp_path, quiet=True, plots=False, runner=stub_runner)
    assert (again.computed, again.resumed) == (0, first.computed)
    assert _metrics(tmp_path, keep_time=True) == before

    ids = sorted(before)
    truncated, unmarked, removed = ids[0], ids[1], ids[2]
    path = tmp_path / "runs" / truncated / "metrics.csv"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # a crash mid-write of an old version
    (tmp_path / "runs" / unmarked / "done.json").unlink()
    store.clear_run(tmp_path / "runs" / removed)
    third = run(SWEEP, out=tmp_path, quiet=True, plots=False, runner=stub_runner)
    assert (third.computed, third.resumed) == (3, first.computed - 3)
    after = _metrics(tmp_path)
    assert after == _metrics_without_time(before)
    assert third.summary == first.summary


def _metrics_without_time(m):
    return {k: {c: v for c, v in cols.items() if c != "wall_time"} for k, cols in m.items()}


def test_a_failing_run_stops_the_sweep_and_keeps_the_finished_runs(tmp_path):
    with pytest.raises(RuntimeError, match="stub failure"):
        run(SWEEP, out=tmp_path, quiet=True, plots=False, runner=failing_runner)
    stored = [d for d in (tmp_path / "runs").iterdir() if store.check_run(d, d.name) is None]
    assert stored  # the runs before the failure are on disk
    result = run(SWEEP, out=tmp_path, quiet=True, plots=False, runner=stub_runner)
    assert result.resumed == len(stored) and result.computed == 24 - len(stored)


TINY = {
    "name": "tiny",
    "problem": {"name": "quadratic", "n_clients": 4, "dim": 16, "noise_scale": 0.0},
    "run": {"algorithms": ["marina", "gd"], "compressors": ["cq", "iq"], "params": {"p": 0.3},
            "stepsize_multipliers": [1, 4], "seeds": [0, 1], "iterations": 40},
}


def test_jobs_2_gives_the_same_results_as_jobs_1_with_the_simulator(tmp_path):
    a = run(TINY, out=tmp_path / "a", quiet=True, plots=False, jobs=1)
    b = run(TINY, out=tmp_path / "b", quiet=True, plots=False, jobs=2)
    assert a.computed == b.computed == 12
    ma, mb = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert ma == mb and len(ma) == 12
    # the random runs differ from each other (a comparison of identical curves would prove nothing)
    marina = [s.run_id for s in expand(load_config(TINY)) if s.algorithm == "marina"]
    assert len({tuple(ma[i]["grad_norm_sq"]) for i in marina}) == len(marina) == 8
    assert a.summary == b.summary


def test_bad_jobs_is_a_config_error(tmp_path):
    from commpress.errors import ConfigError

    with pytest.raises(ConfigError, match="jobs"):
        run(SWEEP, out=tmp_path, jobs=0, runner=stub_runner)
