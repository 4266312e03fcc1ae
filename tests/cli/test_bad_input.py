"""Bad input gives one ``commpress: error:`` line, exit code 2, no traceback, and nothing lost:
an output folder that is a file, lies under a file or cannot be written (checked before any work,
for ``run``, ``dme``, ``reproduce`` and ``plot``), a failed write, ``dim = 1``, the algorithms'
hints (each one, followed, must work) and ambiguous bandwidth units of ``advise``.

Tests run as root on CI, and root writes into a chmod 0o555 folder; the read-only case is then
made by refusing write access in ``os.access`` for that one folder (the check asks it first), and
``/proc/1`` (a folder nobody can create files in) exercises a real refusal.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import commpress as cp
from commpress.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = '[problem]\nname = "quadratic"\nn_clients = 4\ndim = 8\n[run]\nalgorithm = "gd"\niterations = 5\n'


def _snapshot(path: Path) -> dict:
    """Every file and folder under ``path`` (and ``path`` itself): bytes, mode and mtime."""
    paths = [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]
    return {str(p): (p.read_bytes() if p.is_file() else None, p.stat().st_mode, p.stat().st_mtime_ns)
            for p in paths}


def _one_error_line(capsys, *needles: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("commpress: error: "), captured.err
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Every command's computation fails the test if it starts: the check must come first."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the command started computing before checking its output folder")

    import commpress.experiments.dme as dme
    import commpress.experiments.plots as plots
    import commpress.experiments.runner as runner
    import commpress.reproductions._run as reproduce

    monkeypatch.setattr(runner, "_execute_all", forbidden)
    monkeypatch.setattr(dme, "run_dme", forbidden)
    monkeypatch.setattr(reproduce, "run_sweep", forbidden)
    monkeypatch.setattr(plots, "plot_dirs", forbidden)


def _argv(command: str, out: Path, tmp_path: Path) -> list[str]:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    return {
        "run": ["run", str(cfg), "--out", str(out), "--quiet"],
        "dme": ["dme", "--n", "2", "--d", "8", "--repetitions", "2", "--compressors", "cq", "--out", str(out),
                "--quiet"],
        "reproduce": ["reproduce", "cq-quadratic", "--quick", "--out", str(out), "--quiet"],
        "plot": ["plot", str(tmp_path), "--out", str(out / "plot.png")],
    }[command]


COMMANDS = ["run", "dme", "reproduce", "plot"]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_folder_that_is_a_file(tmp_path, capsys, no_work, command):
    out = tmp_path / "taken"
    out.write_text("precious\n")
    before = _snapshot(out)
    assert main(_argv(command, out, tmp_path)) == 2
    _one_error_line(capsys, repr(str(out)), "is a file, not a folder")
    assert _snapshot(out) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_folder_under_a_file(tmp_path, capsys, no_work, command):
    blocker = tmp_path / "taken"
    blocker.write_text("precious\n")
    before = _snapshot(blocker)
    assert main(_argv(command, blocker / "sub" / "out", tmp_path)) == 2
    _one_error_line(capsys, f"inside {str(blocker)!r}, which is a file")
    assert _snapshot(blocker) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_output_folder_is_untouched(tmp_path, capsys, monkeypatch, no_work, command):
    out = tmp_path / "finished"
    (out / "runs" / "0123456789abcdef").mkdir(parents=True)  # a previous sweep: must survive as it is
    (out / "runs" / "0123456789abcdef" / "metrics.csv").write_text("iteration,loss\n0,1.0\n")
    (out / "summary.json").write_text("{}\n")
    out.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores the mode bits: refuse write access for this folder only
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == out and mode & os.W_OK
                                else real_access(p, mode, **kw))
        before = _snapshot(out)
        argv = _argv(command, out, tmp_path)
        if command == "plot":
            argv = ["plot", str(out)]  # the default PNG goes into the first RUN_DIR
        assert main(argv) == 2
        _one_error_line(capsys, repr(str(out)), "read-only")
        assert _snapshot(out) == before
    finally:
        out.chmod(0o755)


@pytest.mark.skipif(not os.path.isdir("/proc/1"), reason="needs Linux /proc")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_nobody_can_write_in(tmp_path, capsys, no_work, command):
    """/proc/1 exists and is a folder, but not even root can create a file in it."""
    out = Path("/proc/1")
    argv = _argv(command, out, tmp_path)
    if command == "plot":
        argv = ["plot", str(tmp_path), "--out", "/proc/1/plot.png"]
    assert main(argv) == 2
    _one_error_line(capsys, "'/proc/1'")
    assert not Path("/proc/1/runs").exists() and not Path("/proc/1/plot.png").exists()


def test_plot_out_that_is_a_folder(tmp_path, capsys, no_work):
    assert main(["plot", str(tmp_path), "--out", str(tmp_path)]) == 2
    _one_error_line(capsys, "is a folder; give the PNG's file name")


def test_a_failed_write_is_one_line(tmp_path, capsys, monkeypatch):
    """A disk that fills up while writing: the OSError becomes one line naming the file."""
    import commpress.experiments.dme as dme

    def full(results, path, title):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(dme, "plot_dme", full)
    out = tmp_path / "dme"
    assert main(["dme", "--n", "2", "--d", "8", "--repetitions", "2", "--compressors", "cq", "--out", str(out),
                 "--quiet"]) == 2
    _one_error_line(capsys, "No space left on device", repr(str(out / "dme.png")))


def test_the_entry_point_reports_a_bad_out_without_a_traceback(tmp_path):
    (tmp_path / "taken").write_text("precious\n")
    (tmp_path / "tiny.toml").write_text(TINY)
    proc = subprocess.run([sys.executable, "-m", "commpress", "run", "tiny.toml", "--out", "taken", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("commpress: error: ") and proc.stdout == ""
    assert (tmp_path / "taken").read_text() == "precious\n"


# ------------------------------------------------------------------ dim = 1
@pytest.mark.parametrize("name", ["quadratic", "quadratic_spread"])
def test_a_one_dimensional_quadratic_has_its_optimum(name):
    problem = cp.problems.make(name, dim=1, n_clients=4)
    f_star, x_star = problem.optimum()
    grad = problem.client_grads(x_star).mean(0)
    assert x_star.shape == (1,) and abs(float(grad)) <= 1e-9 * max(1.0, abs(float(x_star)))
    assert f_star == pytest.approx(float(problem.client_losses(x_star).mean()), rel=1e-9)  # reg 1e-6: ill-conditioned


def test_run_with_dim_1(tmp_path, capsys):
    cfg = tmp_path / "d1.toml"
    cfg.write_text(TINY.replace("dim = 8", "dim = 1").replace('"gd"', '"marina"\ncompressor = "cq"'))
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet", "--no-plots"]) == 0
    assert "MARINA + CQ" in capsys.readouterr().out and (tmp_path / "out" / "summary.json").is_file()


# ------------------------------------------------------------------ the algorithms' hints, followed
def _method_cfg(tmp_path: Path, algorithm: str, compressor: str, run_extra: str = "") -> Path:
    cfg = tmp_path / f"{algorithm}.toml"
    cfg.write_text(f'[problem]\nname = "quadratic"\nn_clients = 4\ndim = 8\n[run]\nalgorithm = "{algorithm}"\n'
                   f'compressor = "{compressor}"\niterations = 5\n{run_extra}')
    return cfg


def test_ef21_without_delta_says_what_works(tmp_path, capsys):
    problem = cp.problems.make("quadratic", dim=8, n_clients=4)
    with pytest.raises(cp.ConfigError) as info:  # ISCC states no contraction constant
        cp.simulate(problem, "ef21", compressor="iscc", iterations=3)
    assert "delta=..." not in str(info.value) and "gamma=<stepsize>" in str(info.value)
    with pytest.raises(cp.ConfigError, match="EF21 has no parameter 'delta'.*gamma=<stepsize>"):
        cp.simulate(problem, "ef21", compressor="iscc", iterations=3, delta=0.9)  # was a raw TypeError
    with pytest.raises(cp.ConfigError, match="no parameter 'nois'. Did you mean 'noise'"):
        cp.simulate(problem, "ef21", compressor="topk", iterations=3, nois=0.1)
    cp.simulate(problem, "ef21", compressor="iscc", iterations=3, stepsize=1e-3)  # the hint, followed

    assert main(["run", str(_method_cfg(tmp_path, "ef21", "iscc")), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    _one_error_line(capsys, "[run] stepsize")
    cfg = _method_cfg(tmp_path, "ef21", "iscc", "stepsize = 0.001\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "b"), "--quiet", "--no-plots"]) == 0


def test_marina_without_ab_constants_says_what_works(tmp_path, capsys):
    problem = cp.problems.make("quadratic", dim=8, n_clients=4)
    with pytest.raises(cp.ConfigError) as info:  # TopK is biased: no AB constants
        cp.simulate(problem, "marina", compressor="topk", iterations=3)
    message = str(info.value)
    assert "A=..." not in message and "p=<probability in (0, 1]> and gamma=<stepsize>" in message
    cp.simulate(problem, "marina", compressor="topk", iterations=3, p=0.5, stepsize=1e-3)

    assert main(["run", str(_method_cfg(tmp_path, "marina", "topk")), "--out", str(tmp_path / "a"),
                 "--quiet"]) == 2
    _one_error_line(capsys, "[run] params = {p = ...} and [run] stepsize")
    cfg = _method_cfg(tmp_path, "marina", "topk", "stepsize = 0.001\nparams = {p = 0.5}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "b"), "--quiet", "--no-plots"]) == 0


# ------------------------------------------------------------------ advise: units
@pytest.mark.parametrize("bandwidth,needle", [
    ("100mbps", "ambiguous bandwidth unit 'mbps'"),  # tc: megabytes/s; most people: megabits/s
    ("1gbps", "ambiguous bandwidth unit 'gbps'"),
    ("100MB", "unknown bandwidth unit 'MB'"),  # a size
    ("100MBPS", "unknown bandwidth unit 'MBPS'"),
])
def test_advise_refuses_ambiguous_bandwidths(capsys, bandwidth, needle):
    assert main(["advise", "--bandwidth", bandwidth, "--latency", "1ms"]) == 2
    _one_error_line(capsys, needle)


@pytest.mark.parametrize("bandwidth,bytes_per_s", [("100Mbps", 12.5e6), ("100Mbit", 12.5e6), ("100mbit/s", 12.5e6),
                                                   ("12.5MB/s", 12.5e6), ("1Gbit", 1.25e8)])
def test_advise_reads_megabits_as_megabits(capsys, monkeypatch, bandwidth, bytes_per_s):
    import commpress.integrations.advise as adv

    seen = {}
    monkeypatch.setattr(adv, "make_model", lambda *a, **k: (None, None))
    monkeypatch.setattr(adv, "advise", lambda model, batch, link, **k: seen.setdefault("link", link))
    monkeypatch.setattr(adv, "format_advice", lambda advice: "ok")
    assert main(["advise", "--bandwidth", bandwidth, "--latency", "1ms"]) == 0
    assert seen["link"].bandwidth == pytest.approx(bytes_per_s)  # not 8x: "100Mbps" is 100 megabits/s


def test_advise_takes_collective_factors_with_a_given_link(capsys, monkeypatch):
    import commpress.integrations.advise as adv

    seen = {}
    monkeypatch.setattr(adv, "make_model", lambda *a, **k: (None, None))
    monkeypatch.setattr(adv, "advise", lambda model, batch, link, **k: seen.setdefault("link", link))
    monkeypatch.setattr(adv, "format_advice", lambda advice: "ok")
    assert main(["advise", "--bandwidth", "100Mbit", "--latency", "0us", "--factors",
                 "all_gather=1.6,reduce_scatter=2.1,all_gather_tensor=1.5"]) == 0
    link = seen["link"]
    assert (link.all_reduce_factor, link.all_gather_factor, link.reduce_scatter_factor,
            link.gather_tensor_factor) == (1.0, 1.6, 2.1, 1.5)
    # without a given link the probe times them; a bad key, a non-number or a factor <= 0: one line
    assert main(["advise", "--factors", "all_gather=1.6"]) == 2
    _one_error_line(capsys, "--factors goes with --bandwidth")
    for bad, needle in (("broadcast=2", "is not KEY=X with KEY one of all_reduce, all_gather"),
                        ("all_gather", "is not KEY=X"), ("all_gather=fast", "all_gather='fast' is not a number"),
                        ("all_gather=0", "all_gather_factor must be a positive finite number")):
        assert main(["advise", "--bandwidth", "100Mbit", "--latency", "0us", "--factors", bad]) == 2
        _one_error_line(capsys, needle)
