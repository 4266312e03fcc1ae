"""``commpress run [CONFIG.toml]``: run a sweep (default: the built-in main experiment), resumable."""

from __future__ import annotations

import argparse
import sys
import time

from commpress.errors import ConfigError


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
            "  commpress run sweep.toml --device cuda           # problems and method states on the GPU\n"
            "  commpress run sweep.toml --processes 4          # each run on 4 gloo processes of this machine\n"
            "  torchrun --nproc_per_node=4 -m commpress run sweep.toml --backend dist\n"
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
    add_device_option(p)
    d = p.add_argument_group("distributed execution (each run spread over processes; same iterates as the simulator)")
    d.add_argument("--backend", choices=("local", "dist"), default="local",
                   help="local: the simulator (default); dist: this process is one rank of a torch.distributed run "
                        "(under torchrun: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)")
    d.add_argument("--processes", type=_processes, default=None, metavar="K",
                   help="launch K gloo processes on this machine and run with --backend dist")
    d.add_argument("--master-addr", default="127.0.0.1", metavar="ADDR",
                   help="rendezvous address for --processes (default 127.0.0.1: loopback only)")
    d.add_argument("--timeout", type=_seconds, default=300.0, metavar="SECONDS",
                   help="a rank that dies or hangs stops the others after this long (default 300)")
    d.add_argument("--checkpoint-every", type=_rounds, default=100, metavar="K",
                   help="dist: checkpoint every K rounds into OUT/checkpoints, 0 for never (default 100); "
                        "the same command resumes")
    p.set_defaults(func=run)


def add_device_option(p) -> None:
    """``--device cpu|cuda|cuda:<k>`` (shared by the commands that run sweeps)."""
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where every run computes: cpu, cuda or cuda:<k> (default: the config's [run] device, "
                        "else cpu); with --backend dist / --processes, cuda puts rank r on cuda:{LOCAL_RANK}")


def check_device_option(args) -> None:
    """A bad ``--device`` (unknown, or CUDA where none is visible) as one ConfigError line, before any work."""
    if getattr(args, "device", None) is not None:
        from commpress._device import resolve_device

        resolve_device(args.device, "--device")


def _integer(option: str, low: int, note: str = ""):
    """An argparse type: an integer >= ``low``, with an error naming ``option``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"{option} must be an integer >= {low}{note}; got {text!r}")
        return value

    return parse


_jobs = _integer("--jobs", 1)
_processes = _integer("--processes", 1)
_rounds = _integer("--checkpoint-every", 0, " (0: never)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout must be a number of seconds > 0; got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"--timeout must be a number of seconds > 0; got {value}")
    return value


def _dist_argv(args) -> list[str]:
    """This command as one rank runs it (``--backend dist`` instead of ``--processes``)."""
    argv = ["run"] + ([args.config] if args.config else []) + (["--out", args.out] if args.out else [])
    argv += ["--quiet"] * args.quiet + ["--no-plots"] * (not args.plots)
    argv += ["--device", args.device] if args.device is not None else []
    return argv + ["--timeout", repr(args.timeout), "--checkpoint-every", str(args.checkpoint_every),
                   "--backend", "dist"]


def run(args) -> int:
    from commpress.experiments.report import title
    from commpress.experiments.runner import run as run_sweep
    from commpress.experiments.config import load_config

    start = time.perf_counter()
    check_device_option(args)
    distributed = args.processes is not None or args.backend == "dist"
    if distributed and args.jobs != 1:
        raise ConfigError("--jobs runs whole runs in parallel; with --processes / --backend dist every run is spread "
                          "over the processes: drop --jobs.")
    if args.processes is not None:
        from commpress.distributed import launch_command

        from commpress._checks import check_output_dir
        from commpress.experiments.config import check
        from commpress.experiments.runner import default_out

        config = load_config(args.config)  # a bad config or --out is reported once, here, not by every rank
        check(config)
        check_output_dir(args.out if args.out is not None else default_out(config))
        return launch_command(_dist_argv(args), processes=args.processes, master_addr=args.master_addr,
                              timeout=args.timeout)
    config = load_config(args.config)  # the runner checks the config, then --out, then computes
    if args.backend == "dist":
        from commpress.experiments.distributed import run_sweep as run_dist

        result = run_dist(config, out=args.out, quiet=args.quiet, plots=args.plots, timeout=args.timeout,
                          checkpoint_every=args.checkpoint_every, device=args.device)
        if result is None:  # not rank 0: rank 0 reports
            return 0
    else:
        result = run_sweep(config, out=args.out, jobs=args.jobs, quiet=args.quiet, plots=args.plots, device=args.device)
    print(title(result.summary))
    print(result.table)
    files = [result.out / "summary.json", *result.plots]
    runs = result.computed + result.resumed
    done = f"{runs} runs: {result.computed} computed, {result.resumed} already done"
    print(f"wrote {', '.join(str(f) for f in files)} ({done}; {time.perf_counter() - start:.1f} s)")
    if not args.quiet:
        sys.stdout.flush()
    return 0
