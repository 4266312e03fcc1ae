"""``commpress config show [CONFIG.toml]``: the fully resolved config, every default filled in."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "config", help="show an experiment config resolved with every default",
        description="Inspect experiment configs (TOML, validated; unknown keys are errors).",
        epilog="Examples:\n  commpress config show\n  commpress config show sweep.toml > resolved.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub2 = p.add_subparsers(dest="action", metavar="ACTION")
    show = sub2.add_parser(
        "show", help="print the fully resolved config (TOML) and the runs it makes",
        description=("Validates CONFIG (default: the built-in main experiment), builds its problem and methods "
                     "once to check every value, and prints it as TOML with every default filled in; the "
                     "output is itself a valid config."),
        epilog="Examples:\n  commpress config show\n  commpress config show sweep.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("config", nargs="?", default=None, metavar="CONFIG.toml",
                      help="config file (default: the built-in main experiment)")
    show.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


_COMMENTS = {
    "run": {
        "stepsize": "default: each method's theoretical stepsize",
        "stepsize_multipliers": "runs at multiplier x stepsize; the report keeps the best per method",
        "iterations": "stop after this many rounds at most",
        "bits_budget": "stop once the uplink bits per client reach this",
        "target": "stop once ||grad f||^2 <= target",
        "select": "auto: fewest bits to the target if reached, else smallest final ||grad f||^2",
    },
}


def _count(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def run_show(args) -> int:
    from commpress.experiments._toml import dumps
    from commpress.experiments.config import MAIN_CONFIG, check, load_config, methods, resolved_dict
    from commpress.experiments.sweep import expand

    config = load_config(args.config)
    check(config)
    method_list = methods(config)
    n_runs = len({s.run_id for s in expand(config, method_list)})
    source = args.config or f"{MAIN_CONFIG} (built-in main experiment)"
    header = [
        f"# {source}, resolved: every default filled in",
        f"# {_count(len(method_list), 'method')} x {_count(len(config.run.stepsize_multipliers), 'stepsize multiplier')}"
        f" x {_count(len(config.run.seeds), 'seed')} = {_count(n_runs, 'run')}:",
        *(f"#   {m.label}" for m in method_list),
        "",
    ]
    print("\n".join(header) + dumps(resolved_dict(config), _COMMENTS), end="")
    return 0
