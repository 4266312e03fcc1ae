"""Configs: the issue's minimal form, sweeps, defaults, one-line errors, TOML round trip, run ids."""

from __future__ import annotations

import tomllib

import pytest

from commpress.errors import ConfigError
from commpress.experiments import check, expand, load_config, methods
from commpress.experiments._toml import dumps
from commpress.experiments.config import MAIN_CONFIG, resolved_dict
from commpress.experiments.sweep import RunSpec

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


def _write(tmp_path, text, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_config_from_the_issue(tmp_path):
    cfg = load_config(_write(tmp_path, MINIMAL))
    assert cfg.name == "cfg"  # from the file name
    assert cfg.problem.params["n_clients"] == 4 and cfg.problem.params["dim"] == 64
    assert cfg.problem.params["noise_scale"] == 0.05  # the problem's default, filled in
    assert cfg.run.algorithms == ["marina"] and cfg.run.seeds == [3] and cfg.run.iterations == 200
    assert cfg.run.compressors == [{"name": "cq", "levels": 1, "range": "norm", "low": -1.0, "high": 1.0}]
    assert cfg.run.stepsize_multipliers == [1.0] and cfg.run.stepsize is None and cfg.run.target is None
    check(cfg)
    (spec,) = expand(cfg)
    assert (spec.algorithm, spec.compressor["name"], spec.seed, spec.iterations) == ("marina", "cq", 3, 200)
    assert spec.label == "MARINA + CQ"


def test_sweep_is_the_product_and_gd_runs_once():
    cfg = load_config({
        "problem": {"name": "quadratic", "n_clients": 4, "dim": 16},
        "run": {"algorithms": ["marina", "gd"], "compressors": ["cq", {"name": "iq", "levels": 2}],
                "stepsize_multipliers": [1, 2, 4], "seeds": [0, 1], "target": 1e-3, "bits_budget": 1e5},
    })
    labels = [m.label for m in methods(cfg)]
    assert labels == ["MARINA + CQ", "MARINA + IQ(levels=2)", "GD"]
    specs = expand(cfg)
    assert len(specs) == 3 * 3 * 2
    assert len({s.run_id for s in specs}) == len(specs)
    gd = [s for s in specs if s.algorithm == "gd"]
    assert len(gd) == 6 and all(s.compressor is None for s in gd)
    assert all(s.target == 1e-3 and s.bits_budget == 1e5 for s in specs)


def test_methods_tables_with_labels_and_params():
    cfg = load_config({
        "problem": {"name": "quadratic", "n_clients": 4, "dim": 16},
        "methods": [{"algorithm": "marina", "compressor": "cq", "params": {"p": 0.1}, "label": "fast"},
                    {"algorithm": "marina", "compressor": "cq", "params": {"p": 0.5}},
                    {"algorithm": "marina", "compressor": "cq", "params": {"p": 0.9}}],
    })
    ms = methods(cfg)
    assert [m.label for m in ms] == ["fast", "MARINA(p=0.5) + CQ", "MARINA(p=0.9) + CQ"]
    assert [m.params["p"] for m in ms] == [0.1, 0.5, 0.9]


def test_run_params_are_the_defaults_of_every_listed_method():
    cfg = load_config({
        "problem": {"name": "quadratic", "n_clients": 4, "dim": 16},
        "run": {"params": {"p": 0.3}},
        "methods": [{"algorithm": "marina", "compressor": "cq"},                       # takes [run.params]
                    {"algorithm": "marina", "compressor": "iq", "params": {"p": 0.7}},  # its own value wins
                    {"algorithm": "gd"}],                                               # has no p: not given one
    })
    ms = methods(cfg)
    assert ms[0].params["p"] == 0.3 and ms[1].params["p"] == 0.7
    assert "p" not in ms[2].params


def test_a_parameter_annotated_float_or_str_takes_a_string():
    # dithering's p: float | str, default 2: p = "inf" (the max-norm) is a valid value, s = "two" is not
    cfg = load_config({"problem": {"name": "quadratic", "n_clients": 4, "dim": 16},
                       "run": {"algorithm": "marina", "compressor": {"name": "dithering", "p": "inf", "s": 2}}})
    assert methods(cfg)[0].compressor["p"] == "inf"
    check(cfg)
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config({"problem": {"name": "quadratic", "n_clients": 4, "dim": 16},
                     "run": {"algorithm": "marina", "compressor": {"name": "dithering", "s": "two"}}})
    with pytest.raises(ConfigError, match="Dithering needs a number p; got 'max'"):
        check(load_config({"problem": {"name": "quadratic", "n_clients": 4, "dim": 16},
                           "run": {"algorithm": "marina", "compressor": {"name": "dithering", "p": "max"}}}))


def test_run_id_is_a_hash_of_what_the_run_computes():
    spec = RunSpec(problem={"name": "quadratic", "params": {"n_clients": 4}}, algorithm="marina",
                   compressor={"name": "cq"}, params={"p": 0.5}, downlink_compressor=None, stepsize=None,
                   stepsize_multiplier=2.0, seed=1, iterations=10, bits_budget=None, target=1e-3, record_every=1,
                   label="A", method_key="k")
    assert spec.run_id == "4cb9e07bcfdf19e0"  # pinned: a changed recipe would orphan every stored run
    relabelled = RunSpec(**{**spec.__dict__, "label": "B", "method_key": "other"})
    assert relabelled.run_id == spec.run_id
    assert RunSpec(**{**spec.__dict__, "seed": 2}).run_id != spec.run_id
    assert RunSpec(**{**spec.__dict__, "stepsize_multiplier": 4.0}).run_id != spec.run_id


def test_ints_and_floats_give_the_same_run():
    a = load_config({"problem": {"name": "quadratic", "dim": 8, "noise_scale": 0},
                     "run": {"algorithm": "gd", "stepsize_multipliers": [1, 2]}})
    b = load_config({"problem": {"name": "quadratic", "dim": 8, "noise_scale": 0.0},
                     "run": {"algorithm": "gd", "stepsize_multipliers": [1.0, 2.0]}})
    assert [s.run_id for s in expand(a)] == [s.run_id for s in expand(b)]


def test_resolved_toml_round_trips():
    for source in (None, {"problem": {"name": "quadratic", "dim": 8},
                          "methods": [{"algorithm": "marina", "compressor": {"name": "iq", "levels": 2}}],
                          "run": {"target": 1e-3}}):
        cfg = load_config(source)
        text = dumps(resolved_dict(cfg))
        again = load_config(tomllib.loads(text))
        assert resolved_dict(again) == resolved_dict(cfg)
        assert [s.run_id for s in expand(again)] == [s.run_id for s in expand(cfg)]


def test_main_config_is_the_issue_experiment():
    cfg = load_config(MAIN_CONFIG)
    assert cfg.problem.name == "quadratic" and cfg.problem.params["noise_scale"] == 0.0
    assert [m.label for m in methods(cfg)] == ["MARINA + CQ", "MARINA + IQ", "MARINA + DRIVE", "GD"]
    assert cfg.run.stepsize_multipliers == [1.0, 2.0, 4.0, 8.0, 16.0] and cfg.run.target is not None


BASE = {"name": "quadratic", "n_clients": 4, "dim": 8}
BAD = [
    # (config, what the one-line message must contain)
    ({"problem": BASE, "run": {"algorithm": "marinaa"}}, ["run.algorithm", "'marinaa'", "Did you mean 'marina'"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "iteratons": 5}},
     ["run.iteratons", "unknown key", "Did you mean 'iterations'"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "iterations": "many"}},
     ["run.iterations", "'many'", "must be an integer"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "iterations": 0}}, ["run.iterations", "0", ">= 1"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "compressor": "cqq"}}, ["'cqq'", "Did you mean 'cq'"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "compressor": {"name": "iq", "level": 2}}},
     ["level", "Did you mean 'levels'"]),
    ({"problem": BASE, "runn": {"algorithm": "marina"}}, ["runn", "Did you mean 'run'"]),
    ({"problem": {"name": "quadratc"}, "run": {"algorithm": "gd"}}, ["'quadratc'", "Did you mean 'quadratic'"]),
    ({"problem": {"name": "quadratic", "n_client": 4}, "run": {"algorithm": "gd"}},
     ["n_client", "Did you mean 'n_clients'"]),
    ({"problem": {"name": "quadratic", "dim": "8"}, "run": {"algorithm": "gd"}}, ["problem.dim", "'8'", "integer"]),
    ({"problem": BASE, "run": {"algorithm": "gd", "seed": 1, "seeds": [2]}}, ["'seeds' or 'seed', not both"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "stepsize_multipliers": [1, -2]}}, ["-2", "positive"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "target": -1.0}}, ["run.target", "-1", "> 0"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "select": "best"}}, ["run.select", "'best'", "'auto'"]),
    ({"problem": BASE, "run": {"algorithm": "marina", "params": {"pp": 0.1}}}, ["pp", "Did you mean 'p'"]),
    ({"problem": BASE, "run": {"algorithm": "gd", "compressor": "cq"}}, ["takes a compressor"]),
    ({"problem": BASE}, ["nothing to run"]),
    ({"run": {"algorithm": "gd"}}, ["problem", "missing"]),
    ({"problem": BASE, "methods": [{"algorithm": "marina", "params": {"gamma": 1.0}}]}, ["run.stepsize"]),
]


@pytest.mark.parametrize("data,needles", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_configs_give_one_line_naming_field_and_value(data, needles):
    with pytest.raises(ConfigError) as info:
        load_config(data)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize("problem,method,needles", [
    ({"name": "quadratic", "dim": -3}, {"algorithm": "gd"}, ["problem", "dim", "-3"]),
    ({"name": "quadratic", "dim": 8}, {"algorithm": "marina", "compressor": "cq", "params": {"p": 2.0}},
     ["MARINA + CQ", "p", "2.0"]),
])
def test_values_rejected_by_the_constructors_are_caught_before_running(problem, method, needles):
    cfg = load_config({"problem": problem, "methods": [method]})
    with pytest.raises(ConfigError) as info:
        check(cfg)
    assert all(n in str(info.value) for n in needles), str(info.value)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[run\nalgorithm = 1\n", "broken.toml"))
    with pytest.raises(ConfigError, match="broken2.toml: run.iterations"):
        load_config(_write(tmp_path, MINIMAL.replace("iterations = 200", "iterations = -1"), "broken2.toml"))
