"""The ``commpress`` command line: ``commpress <command> --help`` shows each command with an example."""

from __future__ import annotations

import argparse
import sys

from commpress._malloc import keep_freed_memory
from commpress.errors import CommpressError


def build_parser() -> argparse.ArgumentParser:
    from commpress.cli import advise, config, dme, listing, plot, reproduce, run

    parser = argparse.ArgumentParser(
        prog="commpress",
        description="Communication-efficient distributed optimization: compress, train, measure, reproduce.",
        epilog=("Examples:\n  commpress run                      # the main experiment: MARINA + CQ/IQ/DRIVE vs GD\n"
                "  commpress run sweep.toml --jobs 2\n  commpress config show\n  commpress plot runs/main\n"
                "  commpress dme --mode identical --n 16 --d 1024\n  commpress list compressors"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (run, config, plot, dme, listing, advise, reproduce):
        module.add_parser(sub)
    return parser


def _file_error(err: OSError) -> str:
    """One line for a failed file operation: what, which file, and what to check."""
    names = " -> ".join(repr(str(f)) for f in (err.filename, err.filename2) if f is not None)
    return (f"{err.strerror or type(err).__name__}: {names}. Check that the path exists and is a folder where "
            "one is needed, that you may write there, and that the disk has room; or choose another --out.")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    keep_freed_memory()  # the command owns its process: reuse large buffers (commpress._malloc)
    try:
        return int(args.func(args) or 0)
    except CommpressError as err:
        print(f"commpress: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename is None:  # not a file: a socket, a process... keep the traceback
            raise
        print(f"commpress: error: {_file_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("commpress: interrupted", file=sys.stderr)
        return 130
