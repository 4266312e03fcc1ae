"""``commpress list compressors|algorithms|problems``: one line each, with its origin (``builtin``,
``plugin <package>``); plugins that failed to load are listed with their error."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math

from commpress.errors import ConfigError

KINDS = ("compressors", "algorithms", "problems", "reproductions")
_ORIGIN = 8  # width of the origin column ("builtin", "plugin <package>")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "list", help="list compressors, algorithms, problems or reproductions",
        description="List what exists, one line each.",
        epilog="Examples:\n  commpress list compressors\n  commpress list compressors --n 16 --d 1024",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--n", type=int, default=16, help="clients, for the constants shown (default 16)")
    p.add_argument("--d", type=int, default=1024, help="dimension, for the constants shown (default 1024)")
    p.set_defaults(func=run)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf"
    return f"{v:.4g}"


def _origin_width(entries) -> int:
    return max([_ORIGIN, *(len(e.origin) for e in entries)])


def compressor_lines(n: int, d: int) -> list[str]:
    from commpress.compressors.registry import REGISTRY, make

    entries = REGISTRY.entries()
    w = _origin_width(entries)
    lines = [f"{'name':<18} {'kind':<13} {'omega':>9} {'delta':>8} {'A':>9} {'B':>7} {'bits/client':>11}  "
             f"{'origin':<{w}}  description"]
    for e in entries:
        if e.error is not None:
            lines.append(f"{e.name:<18} {'error':<13} {'-':>9} {'-':>8} {'-':>9} {'-':>7} {'-':>11}  "
                         f"{e.origin:<{w}}  {e.error}")
            continue
        try:
            t = make(e.name).theory(n, d)
            cols = f"{t.kind:<13} {_fmt(t.omega):>9} {_fmt(t.delta):>8} {_fmt(t.A):>9} {_fmt(t.B):>7} {_fmt(float(t.bits)):>11}"
        except Exception as err:  # noqa: BLE001 - a plugin without defaults or theory still gets its line
            cols = f"{'?':<13} {'-':>9} {'-':>8} {'-':>9} {'-':>7} {'-':>11}"
            e = dataclasses.replace(e, error=f"theory({n}, {d}) failed: {type(err).__name__}: {err}")
        text = REGISTRY.describe(e.name) if e.error is None else e.error
        lines.append(f"{e.name:<18} {cols}  {e.origin:<{w}}  {text}")
    return lines


def catalog_lines(kind: str) -> list[str]:
    """``name origin description`` of every algorithm or problem (``kind``). Without plugins the
    names and texts are read from the sources (no torch, a tenth of a second); with plugins the
    registry is imported, so that they are checked and their errors shown."""
    from commpress._registry import BUILTIN, plugin_entry_points, static_catalog

    if not plugin_entry_points(f"commpress.{kind}"):
        catalog = static_catalog(f"commpress.{kind}")
        if catalog:
            return [f"{name:<24} {BUILTIN:<{_ORIGIN}}  {text}" for name, text in catalog.items()]
    registry = importlib.import_module(f"commpress.{kind}.registry").REGISTRY
    entries = registry.entries()
    w = _origin_width(entries)
    return [f"{e.name:<24} {e.origin:<{w}}  {e.error if e.error is not None else registry.describe(e.name)}"
            for e in entries]


def run(args) -> int:
    if args.kind == "compressors":
        print(f"compressors at n={args.n} clients, d={args.d} (constants from theory(n, d)):")
        print("\n".join(compressor_lines(args.n, args.d)))
        return 0
    if args.kind in ("algorithms", "problems"):
        print("\n".join(catalog_lines(args.kind)))
        return 0
    try:
        module = importlib.import_module(f"commpress.{args.kind}")
    except ImportError:
        raise ConfigError(f"'{args.kind}' are not available in this version of commpress.") from None
    for name in module.names():
        describe = getattr(module, "describe", None)
        print(f"{name:<24} {describe(name) if describe else ''}")
    return 0
