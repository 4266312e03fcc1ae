"""The methods of a sweep: algorithm + compressor + parameters, with labels for tables and plots."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from commpress.algorithms._participation import participation_params
from commpress.experiments._params import algorithm_defaults, check_params, lookup, resolved_params, signature_defaults

if TYPE_CHECKING:
    from commpress.experiments.config import Config


@dataclass(frozen=True)
class Method:
    """One method of a sweep (what :func:`methods` returns): algorithm, compressor, parameters;
    ``label`` names it in tables and plots, ``key`` is a hash of :meth:`identity`
    (a method listed twice runs once)."""

    algorithm: str
    compressor: dict[str, Any] | None
    params: dict[str, Any]
    downlink_compressor: dict[str, Any] | None
    label: str
    key: str = field(default="")

    def identity(self) -> dict[str, Any]:
        """What makes two methods the same run: algorithm, compressor, parameters, downlink compressor."""
        return {"algorithm": self.algorithm, "compressor": self.compressor, "params": self.params,
                "downlink_compressor": self.downlink_compressor}


_DISPLAY = {"permk": "PermK", "randk": "RandK", "topk": "TopK", "permk+cq": "PermK+CQ", "natural": "Natural",
            "natural_dithering": "NaturalDithering", "dithering": "Dithering", "terngrad": "TernGrad",
            "wangni": "Wangni", "sketch": "Sketch", "sign": "Sign", "block": "Block", "identity": "Identity",
            "ef21_sgd": "EF21-SGD", "vr_diana": "VR-DIANA", "terngrad_adam": "TernGrad-Adam"}


def display_name(name: str) -> str:
    """``"marina"`` -> ``"MARINA"``, ``"permk"`` -> ``"PermK"``, ``"mypkg.comp:Int8"`` -> ``"Int8"``."""
    if ":" in name:  # a class named by import: its class name as written
        return name.rpartition(":")[2].rpartition(".")[2]
    return _DISPLAY.get(name, name.upper().replace("_", "-"))


def _changed(spec: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    if spec is None:
        return {}
    cls = lookup(kind, spec["name"])
    defaults = signature_defaults(cls.__init__, set())
    return {k: v for k, v in spec.items() if k != "name" and defaults.get(k, object()) != v}


def _method_label(algorithm: str, compressor: dict | None, params: dict) -> str:
    label = display_name(algorithm)
    extra = {k: v for k, v in params.items() if algorithm_defaults(algorithm).get(k, object()) != v}
    if extra:
        label += "(" + ", ".join(f"{k}={v}" for k, v in extra.items()) + ")"
    if compressor is not None:
        changed = _changed(compressor, "compressors")
        label += " + " + display_name(compressor["name"])
        if changed:
            label += "(" + ", ".join(f"{k}={v}" for k, v in changed.items()) + ")"
    return label


def _key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def methods(config: Config) -> list[Method]:
    """The methods of a sweep, in config order, with their labels (unique)."""
    raw: list[tuple[str, dict | None, dict, dict | None, str | None]] = []
    if config.methods is not None:
        for m in config.methods:
            down = m.downlink_compressor if m.downlink_compressor is not None else config.run.downlink_compressor
            accepted = algorithm_defaults(m.algorithm)  # [run.params] are every method's defaults
            shared = {k: v for k, v in (config.run.params or {}).items() if k in accepted}
            params = participation_params(m.algorithm, config.run.participation, {**shared, **m.params},
                                          "run.participation")
            raw.append((m.algorithm, m.compressor, params, down, m.label))
    else:
        for a in config.run.algorithms or []:
            accepted = algorithm_defaults(a)
            params = {k: v for k, v in config.run.params.items() if k in accepted}
            params = participation_params(a, config.run.participation, params, "run.participation")
            uses = lookup("algorithms", a).uses_compressor
            for c in (config.run.compressors or [None]) if uses else [None]:
                raw.append((a, c, params, config.run.downlink_compressor, None))
    entries = []
    keys: set[str] = set()
    for algorithm, compressor, params, down, label in raw:
        defaults = algorithm_defaults(algorithm)
        typed = check_params("params", f"algorithm {algorithm!r}", params, defaults)
        resolved = resolved_params(typed, defaults)
        identity = {"algorithm": algorithm, "compressor": compressor, "params": resolved, "downlink_compressor": down}
        key = _key(identity)
        if key in keys:
            continue  # the same method listed twice runs once
        keys.add(key)
        short = _method_label(algorithm, compressor, {})
        entries.append((algorithm, compressor, typed, resolved, down, label, key, short))
    # parameters appear in a label only where they tell two methods apart
    shorts = [e[7] for e in entries if e[5] is None]
    out: list[Method] = []
    seen: dict[str, int] = {}
    for algorithm, compressor, typed, resolved, down, label, key, short in entries:
        if label is None:
            label = short if shorts.count(short) == 1 else _method_label(algorithm, compressor, typed)
        if label in seen:
            seen[label] += 1
            label = f"{label} #{seen[label]}"
        else:
            seen[label] = 1
        out.append(Method(algorithm, compressor, resolved, down, label, key))
    return out
