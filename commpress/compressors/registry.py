"""Name -> compressor class registry (the names used in configs: ``"cq"``, ``"permk+cq"``)."""

from __future__ import annotations

from typing import Any

from commpress._registry import Registry
from commpress.compressors.base import Compressor
from commpress.errors import ConfigError

REGISTRY = Registry("compressor", "commpress.compressors", base=Compressor, group="commpress.compressors")
register = REGISTRY.register
names = REGISTRY.names
get = REGISTRY.get
parameters = REGISTRY.parameters
describe = REGISTRY.describe


def make(name: str | Compressor, **params: Any) -> Compressor:
    """Build a compressor by name (built-in, installed plugin, or ``"package.module:Class"``) with keyword
    parameters; the built-ins' defaults work for any n, d >= 1."""
    if isinstance(name, Compressor):
        if params:
            raise ConfigError("make() got a compressor instance and parameters; pass one or the other.")
        return name
    return REGISTRY.check_params(name, params)(**params)
