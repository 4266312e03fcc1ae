"""examples/int8_compressor.py: a user compressor written with public names only passes the
conformance suite and runs with MARINA at the theoretical stepsize and p it declares."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "int8_compressor.py"


def test_the_example_runs_checks_and_trains_at_the_theoretical_stepsize():
    # a fresh interpreter: the example registers "int8", which must not leak into this session's registry
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])}
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "check_compressor: 15/15 properties hold" in out.stdout
    assert "from theory" in out.stdout


def test_the_example_uses_public_names_only():
    plugin = EXAMPLE.parent / "plugin" / "commpress_int8" / "__init__.py"
    tree = ast.parse(plugin.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not any(alias.name.startswith("_") for alias in node.names), ast.dump(node)
        if isinstance(node, ast.Attribute):  # no private attribute of ours (self._x, cp._y, ctx._z)
            assert not node.attr.startswith("_") or node.attr.startswith("__"), node.attr
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_"):
            raise AssertionError(f"the example implements the private hook {node.name}")


def test_the_compressor_docstring_points_at_the_example():
    from commpress.compressors import Compressor

    doc = Compressor.__doc__
    root = EXAMPLE.parents[1]
    for path in ("examples/plugin/commpress_int8/__init__.py", "examples/int8_compressor.py"):
        assert path in doc and (root / path).is_file(), path
