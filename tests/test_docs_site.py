"""The documentation site covers the library.

The API reference: every name of every public module's ``__all__`` and every registered
compressor, algorithm and problem has a page entry and a docstring. The strict docs build
(``sphinx-build -W -n``, in CI) checks the same and more (rendering, broken references); these
tests say it sooner, without building, from ``docs/_ext/commpress_api.py``.

The gallery: every reproduction has its committed quick figure (small) and its verdicts.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def api():
    pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e '.[docs]')")
    spec = importlib.util.spec_from_file_location("commpress_api", ROOT / "docs" / "_ext" / "commpress_api.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("commpress_api", module)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_an_entry_and_a_docstring(api):
    assert api.missing() == []


def test_every_registered_component_has_an_entry(api):
    import commpress as cp

    plan = api.plan()
    pages = "\n".join(plan.pages.values())
    for registry in (cp.compressors, cp.algorithms, cp.problems):
        for name in registry.names():
            cls = registry.get(name)
            if not cls.__module__.startswith("commpress."):
                continue  # an installed plugin: documented by its own package
            assert f".. autoclass:: {cls.__module__}.{cls.__qualname__}" in pages, name


def test_the_check_catches_an_undocumented_name(api, monkeypatch):
    """Negative control: a public function without a docstring, and a name missing from the docs."""
    import commpress.theory as theory

    def undocumented_helper():
        pass

    monkeypatch.setattr(theory, "undocumented_helper", undocumented_helper, raising=False)
    monkeypatch.setattr(theory, "__all__", [*theory.__all__, "undocumented_helper"])
    problems = api.missing(documented={"commpress.theory.gd_stepsize"})
    assert "commpress.theory.undocumented_helper has no docstring" in problems
    assert "commpress.theory.dcgd_stepsize is not in the API reference" in problems


def test_the_gallery_shows_every_reproduction():
    import commpress as cp

    page = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    for name in cp.reproductions.names():
        assert f"\n## {name}\n" in page, f"{name} is not in docs/gallery.md: run python docs/make_gallery.py {name}"
        figure = ROOT / "docs" / "gallery" / f"{name}.png"
        assert f"](gallery/{name}.png)" in page and figure.exists(), name
    for figure in (ROOT / "docs" / "gallery").glob("*.png"):
        assert figure.stat().st_size < 100_000, f"{figure.name} is {figure.stat().st_size} bytes; keep it under 100 KB"
