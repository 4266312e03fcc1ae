"""``commpress plot RUN_DIR...``: convergence plots of finished sweeps or runs."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot", help="plot ||grad f||^2 (or f - f*, ||x - x*||^2) against bits per client or iterations",
        description=(
            "One PNG from sweep folders (the --out of 'commpress run': one line per method at its best "
            "stepsize multiplier, or every multiplier with --all) and/or single run folders (OUT/runs/<id>). "
            "Log scale on the y axis; legend 'METHOD (γ×multiplier)'."
        ),
        epilog=(
            "Examples:\n"
            "  commpress plot runs/main\n"
            "  commpress plot runs/main --x iterations --y loss_gap --out gap.png\n"
            "  commpress plot runs/main --all"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dirs", nargs="+", metavar="RUN_DIR", help="sweep folders and/or run folders")
    p.add_argument("--x", choices=("bits", "iterations"), default="bits",
                   help="x axis: uplink bits per client (default) or iterations")
    p.add_argument("--y", choices=("grad_norm_sq", "loss_gap", "dist"), default="grad_norm_sq",
                   help="y axis: ||grad f||^2 (default), f - f*, or ||x - x*||^2")
    p.add_argument("--all", dest="all_multipliers", action="store_true",
                   help="every stepsize multiplier of each method, not only the best")
    p.add_argument("--out", default=None, metavar="PNG", help="output file (default RUN_DIR/<y>_vs_<x>.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from commpress.experiments.plots import plot_dirs

    path = plot_dirs(args.dirs, x=args.x, y=args.y, path=args.out, all_multipliers=args.all_multipliers)
    print(f"wrote {path}")
    return 0
