"""The layering of DESIGN.md, kept true by walking every module's imports.

Arrows point from a layer to what it may import; never upward. Our own top-level helpers
(``commpress.errors``, ``commpress._rng``, ``commpress._device``, ...) are available to every layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import commpress

ROOT = Path(commpress.__file__).parent
COMMON = {"errors", "_rng", "_checks", "_registry", "_loop", "_malloc", "_device"}
ALLOWED = {
    "wire": set(),
    "compressors": {"wire"},
    "problems": {"datasets"},
    "datasets": set(),
    "optim": set(),
    "network": {"compressors", "wire"},
    "theory": {"compressors", "problems"},
    "algorithms": {"network", "problems", "theory", "compressors", "wire"},
    "integrations": {"compressors", "wire", "network", "algorithms", "problems"},
    "testing": {"compressors", "wire", "network", "algorithms", "problems"},
    "experiments": {"wire", "compressors", "problems", "datasets", "network", "theory", "algorithms", "integrations", "simulate",
                    "distributed"},
    "simulate": {"algorithms", "network", "problems", "theory", "compressors", "wire"},
    "reproductions": {"wire", "compressors", "problems", "datasets", "network", "theory", "algorithms", "integrations", "simulate", "experiments", "distributed", "optim"},
    "distributed": {"wire", "compressors", "problems", "datasets", "network", "theory", "algorithms", "simulate"},
    "cli": {"*"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("commpress"):
            parts = node.module.split(".")
            if len(parts) == 1:  # from commpress import x
                found.update(alias.name for alias in node.names)
            else:
                found.add(parts[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "commpress" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_no_layer_imports_upward():
    violations = []
    for path in ROOT.rglob("*.py"):
        layer = _layer(path)
        if layer in ("__init__", "__main__") or layer in COMMON:
            continue
        allowed = ALLOWED.get(layer)
        assert allowed is not None, f"{path}: layer {layer!r} is not in the layering table; add it to DESIGN and here"
        if "*" in allowed:
            continue
        for target in _imports(path) - COMMON - {layer}:
            if target not in allowed:
                violations.append(f"{path.relative_to(ROOT)} imports commpress.{target}")
    assert not violations, "layering violations:\n" + "\n".join(violations)


def test_core_never_imports_experiments_or_cli():
    for path in ROOT.rglob("*.py"):
        if _layer(path) in ("experiments", "reproductions", "cli", "__main__", "__init__"):
            continue
        assert not {"experiments", "cli"} & _imports(path), path
