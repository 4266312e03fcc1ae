"""Name -> problem class registry (the names used in configs: ``"quadratic"``, ``"logreg"``)."""

from __future__ import annotations

from typing import Any

from commpress._registry import Registry
from commpress.errors import ConfigError
from commpress.problems.base import Problem

REGISTRY = Registry("problem", "commpress.problems", base=Problem, group="commpress.problems", normalise_dashes=True)
register = REGISTRY.register
names = REGISTRY.names
get = REGISTRY.get
parameters = REGISTRY.parameters
describe = REGISTRY.describe


def make(name: str | Problem, **params: Any) -> Problem:
    """Build a problem by name (built-in, installed plugin, or ``"package.module:Class"``) with keyword
    parameters (every built-in parameter has a default)."""
    if isinstance(name, Problem):
        if params:
            raise ConfigError("make() got a problem instance and parameters; pass one or the other.")
        return name
    return REGISTRY.check_params(name, params)(**params)
