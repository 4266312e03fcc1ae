"""Name -> algorithm class registry (``cp.algorithms.make("marina", problem, network, compressor="cq")``)."""

from __future__ import annotations

from typing import Any

from commpress._registry import Registry

REGISTRY = Registry("algorithm", "commpress.algorithms", base="commpress.algorithms.base:Algorithm",
                    group="commpress.algorithms", skip_params=("problem", "network"))
register = REGISTRY.register
names = REGISTRY.names
get = REGISTRY.get
describe = REGISTRY.describe


def parameters(name: str) -> list[str]:
    """The keyword parameters of an algorithm's constructor."""
    return list(REGISTRY.parameters(name))


def make(name: str, problem: Any, network: Any = None, compressor: Any = None, **params: Any):
    """Build an algorithm by name: ``make("marina", problem, network, compressor="cq", p=0.1)``; the name
    may be an installed plugin's or ``"package.module:Class"``."""
    cls = REGISTRY.check_params(name, params)
    if compressor is not None:
        params["compressor"] = compressor
    return cls(problem, network, **params)
