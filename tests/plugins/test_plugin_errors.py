"""Plugins that go wrong get one clear ConfigError line naming their package and the fix, and never
break the others: an entry point that fails to import, a class of the wrong kind, a name taken by a
built-in, a bad ``"module:Class"`` name. Plugin parameters are checked like the built-ins'.

The entry points are faked in this process (``commpress._registry.plugin_entry_points``) for a
package ``commpress-broken`` whose module is written to a temporary folder; the registries are
refreshed before and after each test, so no other test sees them.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from types import SimpleNamespace

import pytest

import commpress._registry as registry_module
from commpress import ConfigError
from commpress.algorithms.registry import REGISTRY as ALGORITHMS
from commpress.cli import main
from commpress.compressors.registry import REGISTRY as COMPRESSORS
from commpress.problems.registry import REGISTRY as PROBLEMS

MODULE = "commpress_broken_plugin"
SOURCE = '''
import torch
from commpress.algorithms.gd import GD
from commpress.compressors import Compressor, CompressorTheory
from commpress.compressors.base import uniform_layout
from commpress.wire import F32, Field


class Scaled(Compressor):
    """Multiplies by 1 (a test plugin with one parameter)."""

    def __init__(self, levels: int = 3) -> None:
        self.levels = levels

    def _layout(self, ctx, message):
        return uniform_layout([Field("v", F32, 32, ctx.d)], ctx.rows)

    def _encode(self, X, ctx):
        return {"v": X.to(torch.float32)}

    def _decode(self, message, ctx):
        return message["v"].to(ctx.dtype)

    def theory(self, n, d):
        return CompressorTheory("unbiased", omega=0.0, delta=None, A=0.0, B=0.0, bits=32 * d)


class NotACompressor:
    """A plain class."""


class MyGD(GD):
    """Gradient descent, as a plugin."""


def not_a_class():
    pass
'''
ENTRY_POINTS = {
    "commpress.compressors": {"scaled": f"{MODULE}:Scaled", "missing": "no_such_module_xyz:Thing",
                              "notacomp": f"{MODULE}:NotACompressor", "function": f"{MODULE}:not_a_class",
                              "cq": f"{MODULE}:Scaled"},
    "commpress.algorithms": {"mygd": f"{MODULE}:MyGD", "wrongkind": f"{MODULE}:Scaled"},
    "commpress.problems": {},
}
DIST = "commpress-broken"


@dataclass
class FakeEntryPoint:
    """An installed entry point: name, value, its distribution, ``load()``."""

    name: str
    value: str
    group: str
    dist: object

    def load(self):
        return EntryPoint(self.name, self.value, self.group).load()


@pytest.fixture
def plugins(monkeypatch, tmp_path):
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = SimpleNamespace(name=DIST)
    monkeypatch.setattr(registry_module, "plugin_entry_points", lambda group: [
        FakeEntryPoint(name, value, group, dist) for name, value in ENTRY_POINTS.get(group, {}).items()])
    for reg in (COMPRESSORS, ALGORITHMS, PROBLEMS):
        reg.refresh()
    yield
    for reg in (COMPRESSORS, ALGORITHMS, PROBLEMS):
        reg.refresh()
    sys.modules.pop(MODULE, None)


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_good_plugins_load_beside_broken_ones(plugins):
    names = COMPRESSORS.names()  # no error: the broken ones are left out
    assert "scaled" in names and not {"missing", "notacomp", "function"} & set(names)
    assert COMPRESSORS.origin("scaled") == f"plugin {DIST}" and COMPRESSORS.origin("cq") == "builtin"
    assert "mygd" in ALGORITHMS.names() and ALGORITHMS.get("mygd").name == "mygd"
    assert ALGORITHMS.get("gd").name == "gd"  # the plugin's base class keeps its own name


@pytest.mark.parametrize("name,says", [
    ("missing", ["cannot be imported", "ModuleNotFoundError", "no_such_module_xyz", DIST, f"pip uninstall {DIST}"]),
    ("notacomp", ["is not a subclass of commpress.compressors.Compressor", DIST, "pyproject.toml"]),
    ("function", ["is a function, not a class", DIST]),
])
def test_a_broken_plugin_is_one_line_naming_its_package_and_the_fix(plugins, name, says):
    with pytest.raises(ConfigError) as err:
        COMPRESSORS.get(name)
    text = _one_line(err)
    assert f"plugin {name!r}" in text and all(s in text for s in says), text
    with pytest.raises(ConfigError, match="is not a subclass of commpress.algorithms.Algorithm"):
        ALGORITHMS.get("wrongkind")


def test_a_plugin_cannot_take_a_builtin_name(plugins):
    from commpress.compressors.cq import CQ

    assert COMPRESSORS.get("cq") is CQ and CQ.name == "cq"
    clash = [e for e in COMPRESSORS.entries() if e.name == "cq" and e.error]
    assert len(clash) == 1 and clash[0].origin == f"plugin {DIST}"
    assert "taken by the built-in compressor" in clash[0].error and DIST in clash[0].error
    assert f"{MODULE}:Scaled" in clash[0].error  # the way to use it anyway


def test_an_unknown_name_mentions_the_broken_plugins_and_the_module_class_form(plugins):
    with pytest.raises(ConfigError) as err:
        COMPRESSORS.get("scaledd")
    text = _one_line(err)
    assert "Did you mean 'scaled'" in text and "failed to load: function, missing, notacomp" in text
    assert "'package.module:Class'" in text


@pytest.mark.parametrize("name,says", [
    ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
    (f"{MODULE}:Missing", f"'{MODULE}' has no attribute 'Missing'. It defines: Scaled."),
    (f"{MODULE}:NotACompressor", "is not a subclass of commpress.compressors.Compressor"),
    (f"{MODULE}:not_a_class", "is a function, not a class"),
    (f"{MODULE}:", "not of that form"),
    ("a b:C", "not of that form"),
])
def test_bad_module_class_names(plugins, name, says):
    with pytest.raises(ConfigError) as err:
        COMPRESSORS.get(name)
    assert says in _one_line(err)


def test_module_class_names_resolve_by_import(plugins, tmp_path):
    (tmp_path / "my_unregistered.py").write_text(
        f"from {MODULE} import Scaled\n\nclass Other(Scaled):\n    pass\n")
    try:
        cls = COMPRESSORS.get("my_unregistered:Other")
        assert cls.name == "my_unregistered:Other"  # its canonical name: any process can import it
        assert COMPRESSORS.get(f"{MODULE}:Scaled").name == "scaled"  # a registered plugin keeps its name
        import commpress as cp

        assert type(cp.compressors.make("my_unregistered:Other", levels=2)) is cls
    finally:
        sys.modules.pop("my_unregistered", None)


def test_plugin_parameters_are_checked_from_the_signature(plugins):
    from commpress.experiments.config import load_config

    ok = load_config({"problem": {"name": "quadratic", "n_clients": 2, "dim": 4},
                      "run": {"algorithm": "mygd"}})
    assert ok.run.algorithms == ["mygd"]
    base = {"problem": {"name": "quadratic", "n_clients": 2, "dim": 4}, "run": {"algorithm": "marina"}}
    ok = load_config({**base, "run": {"algorithm": "marina", "compressor": {"name": f"{MODULE}:Scaled", "levels": 5}}})
    assert ok.run.compressors == [{"name": "scaled", "levels": 5}]
    with pytest.raises(ConfigError, match=r"has no parameter 'levls'\. Did you mean 'levels'\?"):
        load_config({**base, "run": {"algorithm": "marina", "compressor": {"name": "scaled", "levls": 5}}})
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config({**base, "run": {"algorithm": "marina", "compressor": {"name": "scaled", "levels": "x"}}})
    with pytest.raises(ConfigError, match=f"plugin 'missing'.*{DIST}"):
        load_config({**base, "run": {"algorithm": "marina", "compressor": "missing"}})


def test_list_shows_plugins_and_their_errors_and_never_fails(plugins, capsys):
    assert main(["list", "compressors", "--n", "4", "--d", "16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {}
    for line in lines[2:]:
        rows.setdefault(line.split()[0], []).append(line)
    assert "unbiased" in rows["scaled"][0] and f"plugin {DIST}" in rows["scaled"][0]
    assert " error " in rows["missing"][0] and f"pip uninstall {DIST}" in rows["missing"][0]
    assert any("builtin" in r for r in rows["cq"]) and any("taken by the built-in" in r for r in rows["cq"])
    assert main(["list", "algorithms"]) == 0  # plugins installed: read through the registry, not the sources
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert f"plugin {DIST}" in rows["mygd"] and "Gradient descent, as a plugin." in rows["mygd"]
    assert "is not a subclass of commpress.algorithms.Algorithm" in rows["wrongkind"]
    assert "builtin" in rows["marina"]


def test_the_cli_reports_a_broken_plugin_in_one_line(plugins, capsys, tmp_path):
    assert main(["dme", "--compressors", "missing", "--out", str(tmp_path / "dme"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("commpress: error: compressor plugin 'missing'") and "\n" not in err and DIST in err
