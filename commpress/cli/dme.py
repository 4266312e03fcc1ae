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
        epilog="Examples:\n  commpress dme\n  commpress dme --mode correlated --spread 0.5 --n 32 --d 4096 --compressors iq,cq,drive",
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
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from commpress import compressors
    from commpress._checks import check_output_dir
    from commpress.experiments.dme import DEFAULT_COMPRESSORS, format_table, plot_dme, run_dme

    names = [c.strip() for c in args.compressors.split(",") if c.strip()] if args.compressors else [
        c for c in DEFAULT_COMPRESSORS if c in compressors.names()
    ]
    for name in names:
        compressors.get(name)  # unknown names fail before any work
    out = check_output_dir(args.out)  # and so does an output folder that cannot be written
    start = time.perf_counter()
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
