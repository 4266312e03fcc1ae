"""``commpress run``: a sweep killed with SIGKILL resumes to the uninterrupted result; bad configs
give one error line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commpress.cli import main
from commpress.experiments import expand, load_config, run
from commpress.experiments import store

ROOT = Path(__file__).resolve().parents[2]

KILL_CFG = """
name = "kill"

[problem]
name = "quadratic"
n_clients = 4
dim = 32
noise_scale = 0.0

[run]
algorithms = ["marina"]
compressors = ["cq", "iq"]
params = { p = 0.3 }
stepsize_multipliers = [1, 2, 4]
seeds = [0, 1]
iterations = 400
"""


def _cli(args, cwd, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "commpress", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _done(out: Path) -> list[Path]:
    runs = out / "runs"
    return [d for d in runs.iterdir() if (d / "done.json").exists()] if runs.is_dir() else []


def _metrics(out: Path) -> dict:
    found = {}
    for d in (out / "runs").iterdir():
        m = store.read_metrics(d / "metrics.csv")
        m.pop("wall_time")
        found[d.name] = m
    return found


def test_a_sweep_killed_mid_way_resumes_to_the_uninterrupted_result(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(KILL_CFG)
    out = tmp_path / "killed"
    expected_ids = sorted(s.run_id for s in expand(load_config(cfg)))
    assert len(expected_ids) == 12

    proc = _cli(["run", str(cfg), "--out", str(out), "--quiet"], tmp_path)
    deadline = time.monotonic() + 120
    while not _done(out):
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "no run finished within 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = len([d for d in _done(out) if store.check_run(d, d.name) is None])
    assert 1 <= done_at_kill < 12, done_at_kill

    again = _cli(["run", str(cfg), "--out", str(out), "--quiet"], tmp_path)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert f"12 runs: {12 - done_at_kill} computed, {done_at_kill} already done" in stdout

    reference = tmp_path / "reference"
    run(cfg, out=reference, quiet=True, plots=False)
    # every run exactly once, complete, and identical to the uninterrupted sweep
    assert sorted(d.name for d in (out / "runs").iterdir()) == expected_ids
    assert all(store.check_run(out / "runs" / i, i) is None for i in expected_ids)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert _metrics(out) == _metrics(reference)
    assert json.loads((out / "summary.json").read_text()) == json.loads((reference / "summary.json").read_text())


def test_a_truncated_metrics_file_is_redone_by_the_cli(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(KILL_CFG.replace("seeds = [0, 1]", "seeds = [0]").replace("[1, 2, 4]", "[1]"))
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--no-plots"]) == 0
    before = _metrics(out)
    victim = sorted(before)[0]
    path = out / "runs" / victim / "metrics.csv"
    path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(out), "--no-plots"]) == 0
    captured = capsys.readouterr()
    assert f"redoing run {victim}" in captured.err and "checksum" in captured.err
    assert "2 runs: 1 computed, 1 already done" in captured.out
    assert _metrics(out) == before


BASE = '[problem]\nname = "quadratic"\nn_clients = 4\ndim = 8\n'
BAD = {
    "unknown algorithm": (BASE + '[run]\nalgorithm = "marinaa"\n', "Did you mean 'marina'"),
    "negative dim": ('[problem]\nname = "quadratic"\ndim = -4\n[run]\nalgorithm = "gd"\n', "dim=-4"),
    "typo in a key": (BASE + '[run]\nalgorithm = "gd"\niteratons = 5\n', "Did you mean 'iterations'"),
    "wrong type": (BASE + '[run]\nalgorithm = "gd"\niterations = "5"\n', "must be an integer"),
    "unknown compressor": (BASE + '[run]\nalgorithm = "marina"\ncompressor = "zip"\n', "unknown compressor 'zip'"),
    "broken TOML": (BASE + '[run\n', "not valid TOML"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_configs_give_one_error_line_and_exit_code_2(tmp_path, capsys, name):
    text, needle = BAD[name]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("commpress: error: bad.toml"), captured.err
    assert needle in lines[0] and "Traceback" not in captured.err
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_the_real_entry_point_exits_2_without_a_traceback(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BASE + '[run]\nalgorithm = "gd"\niteratons = 5\n')
    proc = _cli(["run", str(cfg), "--quiet"], tmp_path)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert stderr.count("\n") == 1 and "Traceback" not in stderr and "iteratons" in stderr
    assert proc.returncode == 2 and not (tmp_path / "runs").exists()
