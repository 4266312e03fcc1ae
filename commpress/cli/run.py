"""``commpress run [CONFIG.toml]``: run a sweep (default: the built-in main experiment), resumable."""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run", help="run an experiment sweep from a TOML config (no config: the main experiment)",
        description=(
            "Runs every run of the config's sweep (methods x stepsize multipliers x seeds), writes each "
            "finished run at once to OUT/runs/<run id>/ (config, metrics.csv, summary, done.json with "
            "checksums), then OUT/summary.json, a table and PNG plots. Running the same command again "
            "resumes: verified runs are kept, interrupted or damaged ones are redone. Without CONFIG it "
            "runs the main experiment: MARINA with CQ, IQ and DRIVE against GD on a homogeneous quadratic."
        ),
        epilog=(
            "Examples:\n"
            "  commpress run\n"
            "  commpress run sweep.toml --out runs/sweep --jobs 2\n"
            "  commpress config show            # the main experiment's config, with every default"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", default=None, metavar="CONFIG.toml",
                   help="sweep config (default: the built-in main experiment)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default runs/<config name>)")
    p.add_argument("--jobs", type=_jobs, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages, only the table")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="do not write the PNG plots")
    p.set_defaults(func=run)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs must be an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be an integer >= 1; got {value}")
    return value


def run(args) -> int:
    from commpress.experiments.report import title
    from commpress.experiments.runner import run as run_sweep
    from commpress.experiments.config import load_config

    start = time.perf_counter()
    config = load_config(args.config)
    result = run_sweep(config, out=args.out, jobs=args.jobs, quiet=args.quiet, plots=args.plots)
    print(title(result.summary))
    print(result.table)
    files = [result.out / "summary.json", *result.plots]
    runs = result.computed + result.resumed
    done = f"{runs} runs: {result.computed} computed, {result.resumed} already done"
    print(f"wrote {', '.join(str(f) for f in files)} ({done}; {time.perf_counter() - start:.1f} s)")
    if not args.quiet:
        sys.stdout.flush()
    return 0
