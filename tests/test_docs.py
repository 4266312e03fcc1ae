"""User-visible text cites papers, never the internal spec (which is not shipped with the package).

A reader of ``commpress list``, ``help(cp.compressors.CQ)`` or an error message cannot open
``shared/spec/compressors.md §8``; they can look up "Suresh et al., ICML 2022". These tests keep
section signs, spec file names and ``shared/`` paths out of the docstrings of registered
compressors, algorithms and problems (class and module), out of the registries' ``describe``
lines, and out of every string literal of the library's core packages (docstrings, error
messages, ``source`` notes of the theory). Comments are not checked.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path

import pytest

import commpress as cp

#: A pointer into the internal spec: a section sign, a spec file, a spec or shared/ path.
FORBIDDEN = re.compile(
    r"§|spec/|shared/|\b(?:algorithms|compressors|theory|problems)\.md\b|\bthe spec\b|\bspec's\b|\(spec\b"
)

REGISTRIES = {"compressor": cp.compressors, "algorithm": cp.algorithms, "problem": cp.problems}

ROOT = Path(cp.__file__).parent
#: Core packages whose every string literal is user-visible text (the CLI, the reproductions, the
#: datasets and the RNG module are checked by their own owners' tests).
CORE = ["compressors", "algorithms", "problems", "theory", "integrations", "wire", "network", "experiments"]


def _offending(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if FORBIDDEN.search(line)]


def _registered() -> list[tuple[str, str]]:
    return [(kind, name) for kind, module in REGISTRIES.items() for name in module.names()]


@pytest.mark.parametrize(("kind", "name"), _registered())
def test_registered_class_and_module_docstrings_cite_papers_not_the_spec(kind: str, name: str) -> None:
    registry = REGISTRIES[kind]
    cls = registry.get(name)
    module = sys.modules[cls.__module__]
    found = {
        f"{cls.__qualname__} docstring": _offending(inspect.getdoc(cls)),
        f"module {module.__name__} docstring": _offending(module.__doc__),
        f"describe({name!r})": _offending(registry.describe(name)),
    }
    found = {where: lines for where, lines in found.items() if lines}
    assert not found, f"{kind} {name!r} points into the internal spec; cite the paper instead: {found}"


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


@pytest.mark.parametrize("package", CORE)
def test_no_string_literal_of_the_core_points_into_the_spec(package: str) -> None:
    hits = [
        f"{path.relative_to(ROOT.parent)}:{lineno}: {line}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for lineno, text in _string_literals(path)
        for line in _offending(text)
    ]
    assert not hits, "spec pointers in user-visible strings (cite the paper instead):\n" + "\n".join(hits)


def test_the_pattern_catches_what_it_should() -> None:
    for bad in ("(spec ``compressors.md`` §8)", "see shared/spec/theory.md", "spec §2", "the spec's table",
                "Spec ``theory.md`` §4"):
        assert FORBIDDEN.search(bad), bad
    for good in ("Panferov et al. 2024, Sec. 4.2", "a problem spec, rebuilt on every rank", "RunSpec",
                 "Suresh, Sun, Ro, Yu, ICML 2022"):
        assert not FORBIDDEN.search(good), good
