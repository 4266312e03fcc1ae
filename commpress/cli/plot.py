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
            "  commpress plot runs/bidirectional --x bits_total\n"
            "  commpress plot runs/main --all"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dirs", nargs="+", metavar="RUN_DIR", help="sweep folders and/or run folders")
    p.add_argument("--x", choices=("bits", "bits_total", "iterations"), default="bits",
                   help="x axis: uplink bits per client (default), bits_total (uplink + downlink bits per "
                        "client, for bidirectional compression) or iterations")
    p.add_argument("--y", choices=("grad_norm_sq", "loss_gap", "dist"), default="grad_norm_sq",
                   help="y axis: ||grad f||^2 (default), f - f*, or ||x - x*||^2")
    p.add_argument("--all", dest="all_multipliers", action="store_true",
                   help="every stepsize multiplier of each method, not only the best")
    p.add_argument("--out", default=None, metavar="PNG", help="output file (default RUN_DIR/<y>_vs_<x>.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from commpress._checks import check_output_dir
    from commpress.errors import ConfigError
    from commpress.experiments.plots import plot_dirs

    if args.out is not None:  # the PNG's folder must be writable before anything is drawn
        if Path(args.out).is_dir():
            raise ConfigError(f"--out {args.out!r} is a folder; give the PNG's file name, e.g. "
                              f"{str(Path(args.out) / f'{args.y}_vs_{args.x}.png')!r}.")
        check_output_dir(Path(args.out).parent, fix="give --out a PNG path in a folder you can write")
    elif Path(args.dirs[0]).is_dir():  # the default: a PNG in the first folder (a missing one is reported below)
        check_output_dir(args.dirs[0], fix="give --out a PNG path in a folder you can write")
    path = plot_dirs(args.dirs, x=args.x, y=args.y, path=args.out, all_multipliers=args.all_multipliers)
    print(f"wrote {path}")
    return 0
