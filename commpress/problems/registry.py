"""Name -> problem class registry (the names used in configs: ``"quadratic"``, ``"logreg"``)."""

from __future__ import annotations

from typing import Any

from commpress._device import resolve_device
from commpress._registry import Registry
from commpress.errors import ConfigError
from commpress.problems.base import Problem

REGISTRY = Registry("problem", "commpress.problems", base=Problem, group="commpress.problems", normalise_dashes=True)
register = REGISTRY.register
names = REGISTRY.names
get = REGISTRY.get
parameters = REGISTRY.parameters
describe = REGISTRY.describe


def make(name: str | Problem, *, device: Any = None, **params: Any) -> Problem:
    """Build a problem by name (built-in, installed plugin, or ``"package.module:Class"``) with keyword
    parameters (every built-in parameter has a default).

    ``device``: None (default: where the constructor puts it, the CPU for the built-ins), ``"cpu"``,
    ``"cuda"``, ``"cuda:1"`` or a :class:`torch.device`: the problem's tensors (data, start point,
    cached optimum) are moved there after it is built (:meth:`Problem.to`); its oracles then answer
    on that device. Seeded draws are made on the CPU, so the problem is the same on every device.
    An unknown device, or CUDA where none is visible, raises :class:`ConfigError`. A problem
    instance is returned as it is (``device`` given: moved with ``to``).
    """
    if isinstance(name, Problem):
        if params:
            raise ConfigError("make() got a problem instance and parameters; pass one or the other.")
        return name.to(device)
    resolve_device(device, f"problem {name!r}")  # a bad device is reported before the (maybe slow) build
    return REGISTRY.check_params(name, params)(**params).to(device)
