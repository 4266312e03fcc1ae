"""The compressors advised on: ``name[:key=value,...]`` specs and the default set."""

from __future__ import annotations

import ast
from typing import Any

from commpress.compressors import Compressor, make
from commpress.errors import ConfigError, InputTypeError

#: Compressors advised on by default (those registered are used), as ``name[:key=value,...]``.
DEFAULT_COMPRESSORS = ("sign", "cq", "permk+cq", "drive", "qsgd:s=7", "natural")


def compressor_from_spec(spec: str | Compressor) -> Compressor:
    """``"qsgd:s=7"`` -> ``make("qsgd", s=7)``; a Compressor passes through."""
    if isinstance(spec, Compressor):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise InputTypeError(f"a compressor spec is a string like 'qsgd:s=7'; got {spec!r}.")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"bad compressor parameter {item!r} in {spec!r}; write key=value, e.g. qsgd:s=7.")
        try:
            params[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            params[key.strip()] = value.strip()
    return make(name.strip(), **params)


def _default_compressors() -> list[str]:
    from commpress.compressors import names

    registered = set(names())
    return [s for s in DEFAULT_COMPRESSORS if s.partition(":")[0] in registered]
