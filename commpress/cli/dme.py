"""``commpress dme``: distributed mean estimation with every compressor, a table and a plot."""

from __future__ import annotations

import argparse
import json
import time


def add_parser(sub) -> None:
    p = sub.add_parser(
        "dme", help="distributed mean estimation: NMSE vs bits per coordinate for every compressor",
        description=(
            "n clients hold vectors (identical, correlated around a common mean, or independent); every "
            "compressor estimates their mean. Prints NMSE and bits per coordinate per compressor with the "
            "theory's bound beside it, and writes a PNG plot and results.json."
        ),
        epilog="Examples:\n  commpress dme\n  commpress dme --mode correlated --spread 0.5 --n 32 --d 4096 --compressors iq,cq,drive\n"
               "  commpress dme --plot variance-bits --compressors kashin,qsgd,drive,sign",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=int, default=16, help="number of clients (default 16)")
    p.add_argument("--d", type=int, default=1024, help="dimension (default 1024)")
    p.add_argument("--mode", choices=("identical", "correlated", "independent"), default="identical")
    p.add_argument("--spread", type=float, default=0.1, help="relative spread for --mode correlated (default 0.1)")
    p.add_argument("--compressors", default=None, help="comma-separated names (default: the catalog)")
    p.add_argument("--repetitions", type=int, default=100, help="round seeds per compressor (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dme", help="output folder (default runs/dme)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--plot", choices=("nmse", "variance-bits"), default="nmse",
                   help="nmse (default): NMSE of the mean vs bits per coordinate; variance-bits: every compressor's "
                        "per-client error after the best scale vs bits per coordinate, against the uncertainty "
                        "principle 4^-b (writes variance_bits.png and variance_bits.json)")
    p.add_argument("--bound", action=argparse.BooleanOptionalAction, default=True,
                   help="draw the uncertainty-principle line on the variance-bits plot (default on)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from commpress import compressors
    from commpress._checks import check_output_dir
    from commpress.experiments.dme import DEFAULT_COMPRESSORS, VARIANCE_BITS_COMPRESSORS, format_table, plot_dme, run_dme

    defaults = VARIANCE_BITS_COMPRESSORS if args.plot == "variance-bits" else DEFAULT_COMPRESSORS
    names = [c.strip() for c in args.compressors.split(",") if c.strip()] if args.compressors else [
        c for c in defaults if c in compressors.names()
    ]
    for name in names:
        compressors.get(name)  # unknown names fail before any work
    out = check_output_dir(args.out)  # and so does an output folder that cannot be written
    start = time.perf_counter()
    if args.plot == "variance-bits":
        return _variance_bits(args, names, out, start)
    bar = tqdm(total=len(names), desc="dme", unit="compressor", disable=args.quiet, leave=False)
    results = run_dme(n=args.n, d=args.d, mode=args.mode, compressors=names, repetitions=args.repetitions,
                      seed=args.seed, spread=args.spread, progress=lambda _: bar.update())
    bar.close()
    title = f"DME, {args.mode} vectors, n={args.n}, d={args.d}, {args.repetitions} repetitions"
    print(title)
    print(format_table(results))
    plot_dme(results, out / "dme.png", title)
    (out / "results.json").write_text(json.dumps({"n": args.n, "d": args.d, "mode": args.mode,
                                                  "repetitions": args.repetitions, "seed": args.seed,
                                                  "results": [r.as_dict() for r in results]}, indent=2))
    print(f"wrote {out / 'dme.png'} and {out / 'results.json'} ({time.perf_counter() - start:.1f} s)")
    return 0


def _variance_bits(args, names: list[str], out, start: float) -> int:
    from tqdm import tqdm

    from commpress.experiments.dme import format_variance_bits, plot_variance_bits, run_variance_bits

    bar = tqdm(total=len(names), desc="dme variance-bits", unit="compressor", disable=args.quiet, leave=False)
    points = run_variance_bits(n=args.n, d=args.d, mode=args.mode, compressors=names, repetitions=args.repetitions,
                               seed=args.seed, spread=args.spread, progress=lambda _: bar.update())
    bar.close()
    title = f"Error per bit, {args.mode} vectors, n={args.n}, d={args.d}, {args.repetitions} repetitions"
    print(title)
    print(format_variance_bits(points))
    plot_variance_bits(points, out / "variance_bits.png", title, bound=args.bound)
    (out / "variance_bits.json").write_text(json.dumps({"n": args.n, "d": args.d, "mode": args.mode,
                                                        "repetitions": args.repetitions, "seed": args.seed,
                                                        "points": [p.as_dict() for p in points]}, indent=2))
    print(f"wrote {out / 'variance_bits.png'} and {out / 'variance_bits.json'} ({time.perf_counter() - start:.1f} s)")
    return 0
