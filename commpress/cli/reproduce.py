"""``commpress reproduce NAME [--quick] [--out DIR] [--jobs N] [--quiet]``: reproduce a paper's figure."""

from __future__ import annotations

import argparse

from commpress.cli.run import _jobs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="reproduce a figure or table of the source papers and check its claim",
        description=(
            "Runs a reproduction (commpress list reproductions): its sweeps, stored run by run in "
            "OUT/panels/<panel>/ (running the same command again resumes), the figure in the paper's style "
            "(OUT/figure.png), the claim check (OUT/claims.json: a list of {claim, held, numbers}) and "
            "OUT/report.md, which states the claim, shows the figure and says with the measured numbers "
            "whether the claim held. --quick runs a reduced version (fewer iterations, smaller d) in under a "
            "minute, for CI; the full version is what reproduces the paper."
        ),
        epilog=(
            "Examples:\n"
            "  commpress list reproductions\n"
            "  commpress reproduce cq-dn-plane\n"
            "  commpress reproduce cq-quadratic --quick --out /tmp/cq-quick\n"
            "  commpress reproduce cq-logreg --jobs 2"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="a reproduction (commpress list reproductions)")
    p.add_argument("--quick", action="store_true", help="the reduced version (under a minute, for CI)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default runs/reproduce/NAME, or NAME-quick with --quick)")
    p.add_argument("--jobs", type=_jobs, default=1, metavar="N", help="worker processes per sweep (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or messages, only the verdicts")
    p.set_defaults(func=run)


def run(args) -> int:
    from commpress.reproductions import run as reproduce

    results, claims = reproduce(args.name, quick=args.quick, out=args.out, jobs=args.jobs, quiet=args.quiet)
    held = sum(bool(c.held) for c in claims)
    unmeasured = sum(bool(getattr(c, "unmeasurable", "")) for c in claims)
    print(f"{results.name}{' (quick)' if results.quick else ''}: {held} of {len(claims)} claims held"
          f"{f', {unmeasured} not measurable' if unmeasured else ''} ({results.elapsed:.1f} s)")
    for c in claims:
        if c.held:
            print(f"  [held] {c.claim}")
        elif getattr(c, "unmeasurable", ""):
            print(f"  [NOT held: not measurable] {c.claim} ({c.unmeasurable})")
        else:
            print(f"  [NOT held] {c.claim}")
    print(f"wrote {results.out / 'report.md'}, {results.out / 'claims.json'}")
    return 0
