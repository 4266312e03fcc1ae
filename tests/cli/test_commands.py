"""``commpress config show``, ``plot``, ``list`` and ``--help`` on every command."""

from __future__ import annotations

import tomllib

import pytest

from commpress.cli import build_parser, main
from commpress.experiments import load_config, run
from commpress.experiments.config import resolved_dict
from tests.experiments._stub import stub_runner

MINIMAL = """
[problem]
name = "quadratic"
n_clients = 4
dim = 64

[run]
algorithm = "marina"
compressor = "cq"
iterations = 200
seed = 3
"""
PNG = b"\x89PNG\r\n\x1a\n"


def test_config_show_prints_every_default(tmp_path, capsys):
    cfg = tmp_path / "mini.toml"
    cfg.write_text(MINIMAL)
    assert main(["config", "show", str(cfg)]) == 0
    out = capsys.readouterr().out
    for line in ('noise_scale = 0.05', 'reg = 1e-06', 'stepsize_multipliers = [1.0]', 'select = "auto"',
                 '# target = (not set)', '# stepsize = (not set)', 'record_every = 1', 'seeds = [3]',
                 'x = ["bits", "iterations"]'):
        assert line in out, line
    assert "# 1 method x 1 stepsize multiplier x 1 seed = 1 run:" in out and "#   MARINA + CQ" in out
    # the output is a config, the same one
    assert resolved_dict(load_config(tomllib.loads(out))) == resolved_dict(load_config(cfg))


def test_config_show_without_a_file_shows_the_main_experiment(capsys):
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "built-in main experiment" in out and 'name = "main"' in out
    assert "= 60 runs:" in out


def test_config_show_rejects_bad_configs_in_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(MINIMAL.replace("dim = 64", "dim = -1"))
    assert main(["config", "show", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dim=-1" in err


def test_plot_command(tmp_path, capsys):
    out = tmp_path / "sweep"
    run({"problem": {"name": "quadratic", "n_clients": 4, "dim": 8},
         "run": {"algorithms": ["marina", "gd"], "compressors": ["cq"], "stepsize_multipliers": [1, 4],
                 "iterations": 20, "target": 1e-6}}, out=out, quiet=True, plots=False, runner=stub_runner)
    png = tmp_path / "gap.png"
    assert main(["plot", str(out), "--x", "iterations", "--y", "loss_gap", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG and f"wrote {png}" in capsys.readouterr().out
    assert main(["plot", str(out), "--all"]) == 0
    assert (out / "grad_norm_sq_vs_bits.png").read_bytes()[:8] == PNG
    assert main(["plot", str(tmp_path / "nothing-here")]) == 2
    assert "neither a sweep folder" in capsys.readouterr().err


@pytest.mark.parametrize("kind,name", [("algorithms", "marina"), ("problems", "quadratic"), ("compressors", "cq")])
def test_list(capsys, kind, name):
    assert main(["list", kind]) == 0
    assert name in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["run"], ["config"], ["config", "show"], ["plot"], ["dme"], ["list"]])
def test_every_command_has_help_with_an_example(capsys, argv):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*argv, "--help"])
    assert info.value.code == 0
    assert "Example" in capsys.readouterr().out
