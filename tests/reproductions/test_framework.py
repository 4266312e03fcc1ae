"""The reproduction framework: files, quick overrides, listing, the CLI, the measurements a check reads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from commpress import reproductions
from commpress.cli import main
from commpress.errors import ConfigError
from commpress.experiments import load_config
from commpress.reproductions import Claim, MethodResult, Panel
from commpress.reproductions._spec import FOLDER, deep_merge, load_spec

CQ_NAMES = ["cq-dn-plane", "cq-logreg", "cq-permk", "cq-quadratic", "cq-weighted"]
ISSUE_NAMES = CQ_NAMES + ["neolithic-images", "neolithic-synthetic", "vrdiana", "vrdiana-alpha"]
#: issue 13: bidirectional, partial participation, lazy aggregation, local training
ISSUE_NAMES += ["ef21-bc", "ef21-p", "marina-p", "pp", "3pc-clag", "dasha", "proxskip", "gradskip", "tamuna"]
#: issue 14: second order, smoothness, compressors at the limit, MicroAdam
ISSUE_NAMES += ["fednl", "newton-3pc", "basis-learn", "smoothness-matrices", "smoothness-aware-quantization",
                "kashin", "microadam"]


def test_names_are_the_toml_files_with_a_module():
    names = reproductions.names()
    assert set(CQ_NAMES) <= set(names)
    assert names == sorted(names)
    on_disk = sorted(p.stem for p in FOLDER.glob("*.toml"))
    assert names == on_disk  # every file has its module (no half-added reproduction)
    assert set(names) <= set(ISSUE_NAMES), "a reproduction not named by an issue"


def test_list_reproductions_lists_every_name_with_its_title(capsys):
    assert main(["list", "reproductions"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in out]
    assert listed == reproductions.names()
    for line in out:
        name = line.split()[0]
        assert reproductions.describe(name) in line and len(line.split()) > 3, line


@pytest.mark.parametrize("name", CQ_NAMES)
@pytest.mark.parametrize("quick", [False, True])
def test_every_file_validates_and_builds_its_sweeps(name, quick):
    spec = load_spec(name, quick=quick)
    assert spec.title and spec.source and spec.claim and spec.notes
    assert spec.is_quick == quick
    configs = spec.panel_configs()
    for panel, config in configs:
        assert config.name.startswith(name) and config.name.endswith(panel.name)
        assert ("-quick-" in config.name) == quick


def test_quick_replaces_sizes_and_lists():
    full, quick = load_spec("cq-quadratic"), load_spec("cq-quadratic", quick=True)
    assert [p.name for p in full.panels] == ["s0", "s0.05", "s0.1", "s0.2", "s0.4"]
    assert [p.name for p in quick.panels] == ["s0", "s0.1", "s0.4"]  # a list in [quick] replaces
    f_cfg, q_cfg = full.panel_configs()[0][1], quick.panel_configs()[0][1]
    assert (f_cfg.problem.params["dim"], q_cfg.problem.params["dim"]) == (64, 32)
    assert q_cfg.run.seeds == [0, 1] and len(f_cfg.run.seeds) == 5
    assert q_cfg.problem.params["reg"] == 1e-6  # a table in [quick] merges: keys not given are kept
    assert len(q_cfg.methods) == len(f_cfg.methods) == 4


#: reproductions whose numbers involve no random draw (formulas only)
DETERMINISTIC = {"cq-dn-plane"}
DETERMINISTIC |= {"basis-learn"}  # Top-K runs: no random draw
#: sweeps of deterministic methods (Top-k both ways, full gradients): one seed is every outcome
ONE_SEED = {"ef21-bc", "3pc-clag"}


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_random_reproductions_decide_from_several_seeds(name):
    """At least 5 seeds in the full version and 2 in --quick wherever a method is random; none for theory."""
    for quick, least in ((False, 5), (True, 2)):
        spec = load_spec(name, quick=quick)
        if "seeds" in spec.params:  # a module that runs its sweeps itself (neolithic-images)
            counts = {len(spec.params["seeds"])}
        else:
            counts = {len(config.run.seeds) for _, config in spec.panel_configs()}
        if name in DETERMINISTIC:
            assert counts == set(), f"{name} is theory only"
        elif name in ONE_SEED:
            assert counts == {1}, (name, quick, counts)
        else:
            assert counts and min(counts) >= least, (name, quick, counts)


def test_deep_merge_merges_tables_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2, "c": [{"k": 1}]}
    out = deep_merge(base, {"a": {"y": [3]}, "c": [{"k": 2}, {"k": 3}]})
    assert out == {"a": {"x": 1, "y": [3]}, "b": 2, "c": [{"k": 2}, {"k": 3}]}
    assert base["a"]["y"] == [1, 2]  # the input is not modified


def test_unknown_keys_and_bad_values_are_config_errors(tmp_path, monkeypatch):
    import commpress.reproductions._spec as spec_mod

    monkeypatch.setattr(spec_mod, "FOLDER", tmp_path)
    (tmp_path / "bad.toml").write_text('title = "t"\nsource = "s"\nclaim = "c"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="colour"):
        spec_mod.load_spec("bad")
    (tmp_path / "bad2.toml").write_text('title = "t"\nsource = "s"\nclaim = "c"\n[figure]\nx = "time"\n')
    with pytest.raises(ConfigError, match="figure.x"):
        spec_mod.load_spec("bad2")
    (tmp_path / "bad3.toml").write_text('title = "t"\nsource = "s"\nclaim = "c"\n[sweep]\nproblem = { name = "quadratc" }\n')
    with pytest.raises(ConfigError, match="quadratc"):
        spec_mod.load_spec("bad3").panel_configs()
    with pytest.raises(ConfigError, match="no file"):
        spec_mod.load_spec("missing")


def test_reproduce_unknown_name_suggests_the_closest(capsys):
    assert main(["reproduce", "cq-quadratc", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "unknown reproduction 'cq-quadratc'" in err and "Did you mean 'cq-quadratic'" in err


def test_reproduce_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = capsys.readouterr().out
    assert "commpress reproduce cq-quadratic --quick" in out and "--jobs" in out


def test_claim_as_dict_is_plain_json():
    c = Claim("x", np.bool_(True), {"a": np.float64(0.5), "b": math.inf, "c": {"d": np.int64(3)}}, note="why")
    out = c.as_dict()
    assert out == {"claim": "x", "held": True, "numbers": {"a": 0.5, "b": "inf", "c": {"d": 3}}, "note": "why"}
    assert isinstance(out["held"], bool)
    json.dumps(out, allow_nan=False)
    assert "note" not in Claim("x", False, {}).as_dict()


def _run(curve_bits, curve_g2, seed=0):
    return {"spec": {"run_id": f"r{seed}"}, "summary": {"params": {"p": 0.1}},
            "metrics": {"bits_up": curve_bits, "grad_norm_sq": curve_g2}}


def test_method_measurements_average_over_seeds():
    runs = [_run([0, 10, 20, 30], [1.0, 0.1, 0.01, 0.001], 0), _run([0, 20, 40, 60], [1.0, 0.5, 0.05, 0.005], 1)]
    m = MethodResult("M", {"stepsize_multiplier": 2.0, "bits_to_target": None, "final_grad_norm_sq": 0.003,
                           "status": ["max_iterations"], "reached_target": False}, runs)
    assert m.bits_to(0.1) == (10 + 40) / 2       # first recorded point at or below the level, per seed
    assert m.bits_to(0.001) is None                # one seed never got there
    assert m.value_at(25) == pytest.approx(math.sqrt(0.01 * 0.5))  # geometric mean of the last values <= 25 bits
    assert m.value_at(-1) == pytest.approx(1.0)
    assert m.multiplier == 2.0 and m.p == 0.1 and not m.reached and not m.diverged


def test_panel_method_lookup_names_the_choices():
    cfg = load_config({"problem": {"name": "quadratic", "n_clients": 4, "dim": 8, "noise_scale": 0.0},
                       "run": {"algorithm": "gd"}})
    panel = Panel("p", "label", cfg, {"methods": {"GD": {"run_ids": []}}, "target": None}, FOLDER, {})
    with pytest.raises(ConfigError, match="has no method 'CQ'.*GD"):
        panel.method("CQ")
    c = panel.constants()
    assert c["L_pm"] == 0.0 and c["exact"] and (c["n"], c["d"]) == (4, 8)  # round-off of L± = 0 is shown as 0


def _docstring_block(start: str, end: str) -> str:
    import textwrap

    doc = reproductions.__doc__
    block = doc[doc.index(start) + len(start):doc.index(end)]
    return textwrap.dedent(block.strip("\n"))


def test_the_how_to_example_is_a_valid_reproduction(tmp_path, monkeypatch):
    import commpress.reproductions._spec as spec_mod

    toml_text = _docstring_block("1. Write ``commpress/reproductions/NAME.toml``::", "   A theory-only")
    (tmp_path / "example.toml").write_text(toml_text)
    monkeypatch.setattr(spec_mod, "FOLDER", tmp_path)
    for quick in (False, True):
        spec = spec_mod.load_spec("example", quick=quick)
        [(panel, config)] = spec.panel_configs()
        assert panel.name == "s0" and [m.label for m in config.methods] == ["MARINA + CQ", "MARINA + IQ"]
        assert config.problem.params["dim"] == (16 if quick else 64)
    code = _docstring_block("2. Write ``commpress/reproductions/NAME.py`` (dashes -> underscores) with::",
                            "   ``results`` is a")
    namespace: dict = {}
    exec(compile(code, "<how-to example>", "exec"), namespace)
    assert callable(namespace["check"])


def test_the_seeds_line_names_the_seeds_of_a_reproduction_that_runs_its_methods_itself():
    from types import SimpleNamespace

    from commpress.reproductions._report import seeds_text

    own = seeds_text(SimpleNamespace(panels={}, spec=SimpleNamespace(params={"seeds": [0, 1]})))
    assert own.startswith("2 (0, 1), run by the reproduction's own code")
    theory = seeds_text(SimpleNamespace(panels={}, spec=SimpleNamespace(params={})))
    assert theory.startswith("none (no random draws")
