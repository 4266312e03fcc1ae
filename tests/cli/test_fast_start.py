"""The command starts fast: ``import commpress`` and building the ``commpress`` parser load no torch
(``commpress --help`` took 3-7 s when they did), ``commpress list algorithms|problems`` reads the
sources instead of importing them, and ``commpress list`` prints plain text, not reST/LaTeX.

The package stays usable as if imported eagerly: attributes, ``from commpress import X``,
``__all__`` and ``dir()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from commpress.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


HEAVY = ("torch", "numpy", "scipy", "pydantic", "matplotlib", "tqdm")


def test_help_and_the_parser_import_nothing_heavy():
    out = _python(
        "import sys, json, contextlib, io\n"
        "import commpress\n"
        "from commpress.cli import build_parser, main\n"
        "build_parser()\n"
        "for argv in ([], ['--help'], ['run', '--help'], ['list', '--help'], ['advise', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    assert json.loads(out) == [], "these modules are imported by 'commpress --help'"


@pytest.mark.parametrize("kind", ["algorithms", "problems"])
def test_list_algorithms_and_problems_import_no_torch(kind):
    out = _python(
        "import sys, json, contextlib, io\n"
        "from commpress.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    assert main(['list', {kind!r}]) == 0\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'out': buf.getvalue()}))\n"
    )
    result = json.loads(out)
    assert not result["torch"] and ("marina" in result["out"] if kind == "algorithms" else "quadratic" in result["out"])


@pytest.mark.parametrize("kind", ["algorithms", "problems", "compressors"])
def test_the_static_catalog_is_the_registry(kind):
    """``list`` reads names and texts from the sources; they must be what the registry says."""
    import importlib

    from commpress._registry import static_catalog

    module = importlib.import_module(f"commpress.{kind}")
    assert static_catalog(f"commpress.{kind}") == {name: module.describe(name) for name in module.names()}


@pytest.mark.parametrize("kind", ["algorithms", "problems", "compressors", "reproductions"])
def test_list_prints_plain_text(capsys, kind):
    assert main(["list", kind, "--n", "4", "--d", "16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 3
    for line in lines:
        assert ":math:" not in line and "\\" not in line and "`" not in line, line


def test_plain_turns_markup_into_text():
    from commpress._registry import plain, summary

    assert plain(r"Class: unbiased, :math:`\omega = d/k - 1`.") == "Class: unbiased, ω = d/k - 1."
    assert plain(r":math:`\mathcal{C}(x) = \tfrac{d}{k} \sum_{j \in S} x_j e_j`") == "C(x) = d/k Σ_(j ∈ S) x_j e_j"
    assert plain(r":math:`\sqrt{\frac{1-p}{p}}` and :math:`\tfrac1n`") == "sqrt((1-p)/p) and 1/n"
    assert plain(r"see :func:`~commpress.simulate`, ``gamma`` and `x`") == "see commpress.simulate, gamma and x"
    assert plain(r":math:`\{0, 2^{1-s}, \dots, 1\}`") == "{0, 2^(1-s), …, 1}"
    assert plain(r":math:`\frac{\|x\|_1}{d}\operatorname{sign}(x)`") == "(‖x‖_1)/d sign(x)"
    assert summary("First line\ngoes on.\n\nSecond paragraph.") == "First line goes on."


def test_the_lazy_package_behaves_as_an_eager_one():
    out = _python(
        "import sys, json\n"
        "import commpress as cp\n"
        "lazy = 'torch' not in sys.modules\n"
        "import commpress.simulate  # the submodule first: cp.simulate must stay the function\n"
        "from commpress import *\n"
        "import commpress\n"
        "names = {n: type(getattr(cp, n)).__name__ for n in cp.__all__}\n"
        "ok = (callable(cp.simulate) and cp.simulate is commpress.simulate and 'simulate' in dir(cp)\n"
        "      and set(cp.__all__) <= set(dir(cp)) and cp.compressors.make('cq').name == 'cq'\n"
        "      and issubclass(cp.ConfigError, ValueError) and cp.derive_seed(0, 1) == cp.derive_seed(0, 1))\n"
        "try:\n"
        "    cp.no_such_thing\n"
        "    missing = False\n"
        "except AttributeError:\n"
        "    missing = True\n"
        "print(json.dumps({'lazy': lazy, 'ok': ok, 'missing': missing, 'names': names}))\n"
    )
    result = json.loads(out)
    assert result["lazy"] and result["ok"] and result["missing"]
    assert result["names"]["simulate"] == "function" and result["names"]["compressors"] == "module"
    assert result["names"]["History"] == "type" and result["names"]["run"] == "function"
