"""``commpress list compressors|algorithms|problems``."""

from __future__ import annotations

import argparse
import importlib
import math

from commpress.errors import ConfigError

KINDS = ("compressors", "algorithms", "problems", "reproductions")


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


def compressor_lines(n: int, d: int) -> list[str]:
    from commpress import compressors

    lines = [f"{'name':<18} {'kind':<13} {'omega':>9} {'delta':>8} {'A':>9} {'B':>7} {'bits/client':>11}  description"]
    for name in compressors.names():
        t = compressors.make(name).theory(n, d)
        lines.append(
            f"{name:<18} {t.kind:<13} {_fmt(t.omega):>9} {_fmt(t.delta):>8} {_fmt(t.A):>9} {_fmt(t.B):>7} "
            f"{_fmt(float(t.bits)):>11}  {compressors.describe(name)}"
        )
    return lines


def run(args) -> int:
    if args.kind == "compressors":
        print(f"compressors at n={args.n} clients, d={args.d} (constants from theory(n, d)):")
        print("\n".join(compressor_lines(args.n, args.d)))
        return 0
    if args.kind in ("algorithms", "problems"):
        from commpress._registry import static_catalog

        catalog = static_catalog(f"commpress.{args.kind}")  # from the sources: no torch, a tenth of a second
        if catalog:
            print("\n".join(f"{name:<24} {text}" for name, text in catalog.items()))
            return 0
    try:
        module = importlib.import_module(f"commpress.{args.kind}")
    except ImportError:
        raise ConfigError(f"'{args.kind}' are not available in this version of commpress.") from None
    for name in module.names():
        describe = getattr(module, "describe", None)
        print(f"{name:<24} {describe(name) if describe else ''}")
    return 0
