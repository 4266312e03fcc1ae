"""DDP across a real slow link: network namespaces joined by veth, shaped with tc netem.

Builds ``--world`` network namespaces on this machine with :mod:`commpress.integrations.netns`
(names ``cpsl-<pid>-<call>-<i>``), joined by a veth pair (2 ranks) or through a bridge in a hub
namespace (more), with private addresses 10.213.0.x that exist only inside the namespaces, and
limits every rank's outgoing traffic with ``tc qdisc add dev IF root netem delay DELAY rate RATE``
(tbf, rate only, where the kernel has no netem). Then trains the same ~10^7-parameter
MLP with DDP (gloo, one rank per namespace via ``ip netns exec``, MASTER_ADDR the veth address)
with DDP's default fp32 all-reduce, PyTorch's fp16 hook, bf16 (the same hook in bfloat16) and
PowerSGD (rank 1 and 4, error feedback and warm start), commpress's DDP hooks (1-bit sign with error
feedback and EF21, a 4-bit block quantizer with DIANA) and FSDP2 (``fully_shard``) with its own
reduce-scatter and with commpress's compressed one (EF + sign, PermK; and EF + sign with the
parameter all-gathers quantized to int8 too, ZeRO++'s qwZ). It ranks the methods by
wall-clock time to all-reduce's loss after ``--steps`` steps (time per step, time to the fixed
steps and bits per coordinate as columns) and compares commpress's best with the best of fp16,
bf16 and PowerSGD. It also measures the shaped link with ``commpress
advise``'s link probe and compares ``advise``'s predicted step times (with the link set by tc)
with the measured ones.

With ``--marina`` (default on when ``commpress.network.dist.TorchDistNetwork`` exists) it also runs
MARINA+CQ and uncompressed GD on a quadratic with d = 10^6 across the namespaces (one client per
rank; float32 by default, ``--marina-dtype float64`` for double; p = 0.2 and 512 x the theoretical
stepsize, the simulator's best in bits to the target) and compares the gain in wall-clock time to
the target with the gain in bits to the target. ``--parts ddp|marina`` runs one of the two.

Needs root and iproute2 (``ip``, ``tc``); otherwise prints a SKIP line and exits 0. Every
namespace it creates is deleted on exit, on Ctrl-C and on SIGTERM, and stale ones of earlier
killed runs (whose process is gone) are deleted at start. Traffic never leaves this machine.

Methods (``--methods``, comma-separated): ``allreduce``, ``fp16``, ``bf16``, ``powersgd:RANK``,
``HOOK:COMPRESSOR[:k=v;k=v]`` (DDP with commpress's hook, HOOK one of mean, ef, ef21, diana),
``fsdp`` (FSDP2's own collectives) and ``fsdp-HOOK:COMPRESSOR[:k=v;k=v]`` (commpress's reduce-scatter).
An FSDP row may end in ``+params=MODE`` (and ``+param_block=B``, default 256): the parameter
all-gathers (forward and backward) quantized too, MODE one of int8, int4, bf16, none
(``commpress.integrations.fsdp_params``), e.g. ``fsdp-ef:sign:block_size=256+params=int8``.
The table's ``param bits`` column is the parameter all-gathers' bytes leaving a rank per step and
parameter (FSDP rows; 2 x 32 x (n-1)/n for FSDP's own, uncompressed, gathers).

    sudo python benchmarks/slow_link.py                      # 2 ranks, 100 Mbit/s, 1 ms
    python benchmarks/slow_link.py --rate 1gbit --delay 200us --steps 8
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from commpress.errors import ConfigError
from commpress.integrations import netns  # no torch: the parent process only builds the link

ROOT = Path(__file__).resolve().parent.parent
#: sign:block_size=256 is the scaled sign with one scale per 256 coordinates (1.125 bits/coordinate):
#: with one scale per 25 MB bucket EF21 never reached all-reduce's loss here (its estimator tracks the
#: gradient at the rate of the sign's contraction delta(x) = ||x||_1^2/(d ||x||^2), tiny for a bucket of
#: layers of different scales), with block scales it does, in 13 steps.
DEFAULT_METHODS = ("allreduce,fp16,bf16,powersgd:1,powersgd:4,ef:sign:block_size=256,ef21:sign:block_size=256,"
                   "ef:sign,ef21:sign,diana:block:s=7,fsdp,fsdp-ef:sign:block_size=256,fsdp-mean:permk,"
                   "fsdp-ef:sign:block_size=256+params=int8")
#: The baselines commpress is judged against (PyTorch's own hooks).
BASELINES = ("fp16", "bf16", "powersgd:1", "powersgd:4")


# ============================================================================ the parent
def _skip(reason: str) -> int:
    print(f"SKIP: slow_link: {reason}")
    return 0


def _launch(link: netns.SlowLink, args: argparse.Namespace, mode: str, tmp: Path, port: int,
            procs: list) -> list[dict]:
    """Run ``mode`` on every rank (one process per namespace); returns the ranks' JSON results."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": link.ifname,
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = []
    for rank in range(len(link.names)):
        out = tmp / f"{mode}-rank{rank}.json"
        cmd = link.exec(rank, [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--rank", str(rank),
                               "--addr", link.addresses[0], "--port", str(port), "--out", str(out), *args.forward])
        p = subprocess.Popen(cmd, env=env, stdout=None if rank == 0 else subprocess.DEVNULL)
        procs.append(p)
        started.append((p, out))
    codes = [p.wait() for p, _ in started]
    for p, _ in started:
        procs.remove(p)
    if any(codes):
        raise RuntimeError(f"{mode}: a rank failed (exit codes {codes})")
    return [json.loads(out.read_text()) for _, out in started]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        return _worker_main(args)
    if args.report_from:  # the report of a saved run: the measurements as they were, advise measured here
        keys = ("world", "rate", "steps", "batch_size", "params", "lr", "seed", "shaped_delay")
        try:
            saved = json.loads(Path(args.report_from).read_text())
            rows, probe = saved["rows"], saved["probe"]
            for key in keys:
                setattr(args, key, saved["args"][key])
            rows[0]["methods"], rows[0]["params"], rows[0]["target_loss"]  # noqa: B018 -- what the report reads
        except (OSError, ValueError, KeyError, IndexError, TypeError) as err:
            print(f"slow_link: error: {args.report_from} is not a measurements file written by --save "
                  f"({type(err).__name__}: {err})", file=sys.stderr)
            return 2
        _report_ddp(args, rows, probe)
        return 0
    try:  # bad --rate/--delay/--burst/--world: said before anything is built
        netns.commands(args.rate, args.delay, args.burst, world=args.world, tag="check")
        for spec in args.methods.split(","):  # bad +params= options too
            _method_options(spec)
    except ConfigError as err:
        print(f"slow_link: error: {err}", file=sys.stderr)
        return 2
    why = netns.unavailable()
    if why:
        return _skip(why)
    args.forward = _forward_args(args)
    stale = netns.clean_stale()
    if stale:
        print(f"removed stale namespaces of earlier runs: {', '.join(stale)}")
    procs: list[subprocess.Popen] = []
    try:  # slow_link deletes its namespaces on the way out, on Ctrl-C and on SIGTERM/SIGHUP too
        with netns.slow_link(args.rate, args.delay, args.burst, world=args.world) as link:
            try:
                _run(link, args, procs)
            finally:
                for p in procs:  # only the processes this run started
                    if p.poll() is None:
                        p.terminate()
                        try:
                            p.wait(10)
                        except subprocess.TimeoutExpired:
                            p.kill()
    except netns.NetnsError as err:
        return _skip(f"cannot build the namespaces ({' '.join(err.cmd[:4])}...: {err.stderr})")
    finally:
        left = [n for n in netns.namespaces() if n.startswith(f"{netns.PREFIX}{os.getpid()}-")]
        print(f"cleaned up: namespaces left {left or 'none'}")
    return 0


def _run(link: netns.SlowLink, args: argparse.Namespace, procs: list[subprocess.Popen]) -> None:
    print(f"{args.world} namespaces {', '.join(link.names)}; qdisc on every rank's veth: {link.qdisc_show(0)}")
    if link.qdisc == "tbf":
        print(f"note: this kernel has no netem qdisc: the rate is limited with tbf, and no delay is added "
              f"(--delay {args.delay} not applied; the link keeps the veth's own latency)")
    args.shaped_delay = link.delay
    with tempfile.TemporaryDirectory(prefix="cpsl-") as tmp:
        port = 29400 + os.getpid() % 500
        probe = _launch(link, args, "link", Path(tmp), port, procs)[0]
        print(f"advise link probe across the namespaces: {probe['describe']} "
              f"(tc: rate {args.rate}, delay {args.shaped_delay or 'none added'})")
        if args.parts in ("all", "ddp"):
            rows = _launch(link, args, "ddp", Path(tmp), port + 2, procs)
            if args.save:  # the measurements, to report again without training (--report-from)
                Path(args.save).write_text(json.dumps({"rows": rows, "probe": probe, "args": vars(args)}))
            _report_ddp(args, rows, probe)
        if args.parts == "ddp":
            pass
        elif _marina_wanted(args):
            res = _launch(link, args, "marina", Path(tmp), port + 10, procs)
            from commpress.integrations.advise import parse_bandwidth

            _report_marina(res[0], parse_bandwidth(args.rate))
        elif args.marina != "no":
            print("MARINA+CQ vs GD: skipped: commpress.network.dist.TorchDistNetwork does not exist yet")


def _forward_args(args: argparse.Namespace) -> list[str]:
    keep = ["world", "rate", "delay", "steps", "max_steps", "batch_size", "params", "lr", "methods", "seed",
            "marina_rounds", "marina_dim", "marina_target", "marina_p", "marina_multiplier", "marina_dtype"]
    out = []
    for key in keep:
        out += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    return out


def _marina_wanted(args: argparse.Namespace) -> bool:
    if args.marina == "no":
        return False
    try:
        from commpress.network.dist import TorchDistNetwork  # noqa: F401
    except ImportError:
        return False
    return True


# ============================================================================ reports
def _report_ddp(args: argparse.Namespace, rows: list[dict], probe: dict) -> None:
    from commpress._malloc import keep_freed_memory
    from commpress.integrations.advise import advise, make_model, powersgd_name

    # advise times the codecs here: under the ranks' allocator setting (and the CLI's), else every large
    # buffer may be page-faulted anew, which doubled 1-bit sign's codec time and made it depend on what
    # this process had freed before (glibc's dynamic mmap threshold)
    keep_freed_memory()

    results = rows[0]["methods"]
    params = rows[0]["params"]
    base = {r["method"]: r for r in results}
    ar, fp16 = base.get("allreduce"), base.get("fp16")
    target_steps = args.steps
    target_loss = rows[0]["target_loss"]
    print(f"\nDDP, {args.world} ranks, MLP of {params:,} parameters, batch {args.batch_size}/rank, SGD lr {args.lr}; "
          f"link {args.rate}, delay {args.shaped_delay or 'none added'}")
    print(f"target: {target_steps} steps, and loss <= {target_loss:.4f} (all-reduce's smoothed loss after "
          f"{target_steps} steps)")
    print("ranked by wall-clock time to that loss (methods that never reach it last, by loss after the fixed steps)")
    W = max([26, *(len(r["method"]) for r in results)])  # the method column's width
    head = (f"| {'#':>2} | {'method':<{W}} | {'s to loss':>9} | {'steps to loss':>13} | {'ms/step':>9} "
            f"| {'vs allreduce':>12} | {'vs fp16':>7} | {'bits/coord':>10} | {'param bits':>10} "
            f"| {f's to {target_steps} steps':>14} "
            f"| {'loss@' + str(target_steps):>9} |")
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    ranked = sorted(results, key=lambda r: (r["steps_to_loss"] is None,
                                            r["time_to_loss"] if r["steps_to_loss"] is not None else r["loss_at_steps"]))
    for i, r in enumerate(ranked, 1):
        vs_ar = ar["step"] / r["step"] if ar else float("nan")
        vs_16 = fp16["step"] / r["step"] if fp16 else float("nan")
        reach = "-" if r["steps_to_loss"] is None else f"{r['time_to_loss']:9.1f}"
        nsteps = "not reached" if r["steps_to_loss"] is None else str(r["steps_to_loss"])
        print(f"| {i:>2} | {r['method']:<{W}} | {reach:>9} | {nsteps:>13} | {1e3 * r['step']:9.1f} | {vs_ar:11.2f}x "
              f"| {vs_16:6.2f}x | {r['bits']:10.3f} | {_param_bits(r):>10} | {r['time_to_steps']:14.1f} "
              f"| {r['loss_at_steps']:9.4f} |")
    print("bits/coord: gradient payload per parameter and step (FSDP rows: the reduce-scatter's share leaving a "
          "rank). param bits: FSDP's parameter all-gathers (forward and backward) leaving a rank, per parameter "
          "and step (uncompressed unless the row says +params=MODE; DDP rows: none)")
    ours = [r for r in results if r["compressor"] and not r["method"].startswith("powersgd")]  # DDP and FSDP2
    theirs = [r for r in results if r["method"] in BASELINES]
    reached = lambda rows: [r for r in rows if r["steps_to_loss"] is not None]  # noqa: E731
    if ours and theirs:
        if reached(ours) and reached(theirs):
            best = min(reached(ours), key=lambda r: r["time_to_loss"])
            rival = min(reached(theirs), key=lambda r: r["time_to_loss"])
            ratio = best["time_to_loss"] / rival["time_to_loss"]
            print(f"headline: commpress's best, {best['method']}, reaches the loss in {best['time_to_loss']:.1f} s; "
                  f"the best baseline (of {', '.join(BASELINES)}), {rival['method']}, in {rival['time_to_loss']:.1f} s: "
                  f"ratio {ratio:.2f} (goal <= 0.50: {'MET' if ratio <= 0.5 else 'NOT MET'})")
        else:
            print("headline: " + ("no commpress method" if not reached(ours) else "no baseline")
                  + " reached the loss within --max-steps: goal NOT MET")
    # advise's prediction with the link tc sets, against the measurement
    model, batch = make_model(params=args.params, batch_size=args.batch_size, seed=args.seed)
    compressors = []
    for r in results:  # advise predicts DDP with commpress's hooks and PyTorch's, and FSDP2 (below)
        if _ddp_ours(r):
            compressors.append(r["compressor"])
    fsdp = [r for r in results if r["method"].startswith("fsdp")]
    for r in fsdp:  # FSDP2 with commpress's reduce-scatter: predicted per compressor
        if r["compressor"]:
            compressors.append(r["compressor"])
    probed, link = _advise_link(args, probe)
    print(f"the probe's link: {probed.describe()}")
    baselines = [r["method"] for r in results if r["method"] == "bf16" or r["method"].startswith("powersgd")]
    modes = [_method_options(r["method"]).get("params") for r in fsdp]  # compressed parameter all-gathers
    advice = advise(model, batch, processes=args.world, link=link, compressors=list(dict.fromkeys(compressors)),
                    repeat=2, threads=1, baselines=baselines, fsdp=bool(fsdp),
                    fsdp_params=list(dict.fromkeys(m for m in modes if m and m != "none")))
    pred = {p.name: p for p in advice.predictions}
    print(f"\ncommpress advise (link from tc: {link.describe()}; compute measured here: "
          f"{1e3 * advice.compute.total:.0f} ms/step) against the measurement:")
    print(f"| {'method':<{W}} | {'predicted ms/step':>17} | {'measured ms/step':>16} | {'measured/predicted':>18} |")
    print(f"|{'-' * (W + 2)}|{'-' * 19}|{'-' * 18}|{'-' * 20}|")
    ratios = []
    for r in results:
        key = {"allreduce": "fp32 all-reduce", "fp16": "fp16 hook", "bf16": "bf16 hook"}.get(
            r["method"], r["compressor"] if _ddp_ours(r) else None)
        if r["method"].startswith("powersgd"):
            key = powersgd_name(int(r["compressor"] or 1))
        if r["method"].startswith("fsdp"):
            key = f"FSDP2 + {r['compressor']}" if r["compressor"] else "FSDP2"
            options = _method_options(r["method"])
            if options.get("params") not in (None, "none") and options.get("param_block", 256) == 256:
                key += f" + params={options['params']}"
            elif options:  # advise models the parameter all-gather's modes at its default block size
                print(f"| {r['method']:<{W}} | {'(not modelled)':>17} | {1e3 * r['step']:16.1f} | {'-':>18} |")
                continue
        p = pred.get(key)
        if p is None:
            continue
        print(f"| {r['method']:<{W}} | {1e3 * p.step:17.1f} | {1e3 * r['step']:16.1f} | {r['step'] / p.step:17.2f}x |")
        ratios.append((r["method"], r["step"] / p.step))
    inside = [m for m, q in ratios if 1 / 1.25 <= q <= 1.25]
    print(f"advise within 1.25x of the measured step: {len(inside)} of {len(ratios)} rows (goal: all)"
          + ("" if len(inside) == len(ratios) else
             "; outside: " + ", ".join(f"{m} {q:.2f}x" for m, q in ratios if m not in inside)))
    print(f"advise verdict: {advice.verdict}")
    ones = [r for r in results if _ddp_ours(r) and r["bits"] < 1.01]
    if ones and ar and fp16:  # the fastest 1-bit method among those that train (reach the loss target)
        training = [r for r in ones if r["steps_to_loss"] is not None]
        best = min(training or ones, key=lambda r: r["step"])
        goal = ar["step"] / best["step"] >= 5 and fp16["step"] / best["step"] >= 2.5
        print(f"headline: {best['method']} (1 bit/coordinate{'' if training else ', NOT reaching the loss target'}) "
              f"{ar['step'] / best['step']:.2f}x faster per step than all-reduce (goal >= 5x), "
              f"{fp16['step'] / best['step']:.2f}x faster than fp16 (goal >= 2.5x): {'MET' if goal else 'NOT MET'}")


def _advise_link(args: argparse.Namespace, probe: dict):
    """The link the probe fitted (with its collectives' factors), and the link advise predicts on: tc's
    rate (and tc's delay, or the probe's latency where tbf adds none), the factors rebased onto it so that
    every collective keeps the time the probe measured (:meth:`Link.rebased`). A factor missing from an
    older --save file was not measured: it stays 1 on tc's rate (the ring model)."""
    import dataclasses

    from commpress.integrations.advise import FACTORS, Link, parse_bandwidth, parse_latency

    probed = Link(probe["bandwidth"], probe["latency"], source=probe.get("source", "the link probe"),
                  **{name: probe[name] for name in FACTORS if name in probe})
    if args.shaped_delay is not None:
        link = probed.rebased(parse_bandwidth(args.rate), parse_latency(args.shaped_delay),
                              source=f"tc: rate {args.rate}, delay {args.shaped_delay}")
    else:  # tbf: the veth's latency, as the probe measured it
        link = probed.rebased(parse_bandwidth(args.rate), probe["latency"], source=f"tc rate {args.rate}, latency from the probe")
    return probed, dataclasses.replace(link, **{name: 1.0 for name in FACTORS if name not in probe})


def _ddp_ours(row: dict) -> bool:
    """A DDP row with a commpress hook (not PyTorch's PowerSGD, not FSDP2)."""
    return bool(row["compressor"]) and not row["method"].startswith(("powersgd", "fsdp"))


def _report_marina(r: dict, rate: float) -> None:
    print(f"\nMARINA+CQ (p = {r['p']}, stepsize x{r['multiplier']:g} theory) vs GD, homogeneous quadratic "
          f"d = {r['d']:,} ({r['dtype']}), {r['world']} ranks (one client each), target ||grad f||^2 <= {r['target']:.3g}:")
    for m in r["methods"]:
        reached = "not reached" if m["rounds"] is None else f"{m['rounds']} rounds"
        rounds = m["rounds"] or 1
        print(f"  {m['name']:<10} {reached:>14}, {m['bits']:.4g} bits/client, {m['seconds']:.2f} s wall-clock "
              f"({1e3 * m['seconds'] / rounds:.0f} ms/round, {m['bits'] / rounds / r['d']:.2f} bits/coord/round)")
    print(f"  gain in bits {r['bits_gain']:.2f}x, gain in wall-clock {r['time_gain']:.2f}x, "
          f"ratio {r['ratio']:.2f} (goal >= 0.80: {'MET' if r['ratio'] >= 0.8 else 'NOT MET'})")
    wire = {m["name"]: m["bits"] / (8 * rate) for m in r["methods"]}  # each rank sends its client's bits once
    print("  of which on the wire at the shaped rate: " + ", ".join(
        f"{m['name']} {wire[m['name']]:.1f} s of {m['seconds']:.1f} s" for m in r["methods"])
        + "; the rest is computation (gradients, encoding, checksums, decoding every client's message)")


# ============================================================================ the ranks
def _worker_main(args: argparse.Namespace) -> int:
    import torch

    from commpress._malloc import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()  # as commpress's own workers do: large buffers reused, not page-faulted each step
    if args.worker == "link":
        from commpress.integrations.advise import FACTORS, measure_link

        link = measure_link(args.world, master_addr=args.addr, master_port=args.port, rank=args.rank,
                            sizes=(65536, 1024 * 1024, 4 * 1024 * 1024), repeat=3, timeout=300)
        out = {"bandwidth": link.bandwidth, "latency": link.latency, "describe": link.describe(), "source": link.source,
               **{name: getattr(link, name) for name in FACTORS}}
    elif args.worker == "ddp":
        out = _ddp_worker(args)
    else:
        out = _marina_worker(args)
    Path(args.out).write_text(json.dumps(out))
    return 0


def _parse_method(spec: str) -> tuple[str, str | None]:
    """'ef:block:s=7;block_size=256' -> ('ef', 'block:s=7,block_size=256'); 'allreduce' -> ('allreduce', None).
    FSDP options (``+params=int8``, see :func:`_method_options`) are not part of the compressor."""
    kind, _, compressor = re.split(r"\+(?=[a-z_]+=)", spec)[0].partition(":")
    return kind, (compressor.replace(";", ",") or None)


#: the FSDP row options after ``+``: the parameter all-gather's mode and block size
_OPTIONS = {"params": str, "param_block": int}
_PARAM_MODES = ("int8", "int4", "bf16", "none")  # commpress.integrations.fsdp_params.MODES (the parent has no torch)


def _method_options(spec: str) -> dict:
    """'fsdp-ef:sign+params=int8+param_block=128' -> {'params': 'int8', 'param_block': 128}."""
    out = {}
    for item in re.split(r"\+(?=[a-z_]+=)", spec)[1:]:
        key, _, value = item.partition("=")
        if key not in _OPTIONS:
            raise ConfigError(f"unknown method option {key!r} in {spec!r}; use +params=MODE or +param_block=B.")
        try:
            out[key] = _OPTIONS[key](value)
        except ValueError:
            out[key] = None
        if key == "params" and out[key] not in _PARAM_MODES or key == "param_block" and not (out[key] or 0) >= 1:
            raise ConfigError(f"bad {key} {value!r} in {spec!r}: params is one of {', '.join(_PARAM_MODES)}; "
                              "param_block an integer >= 1.")
    if out and not spec.startswith("fsdp-"):
        raise ConfigError(f"+params= applies to FSDP rows with commpress's reduce-scatter (fsdp-HOOK:COMPRESSOR); "
                          f"got {spec!r}.")
    return out


def _param_bits(row: dict) -> str:
    return "-" if row.get("param_bits") is None else f"{row['param_bits']:.3f}"


def _attach(model, spec: str, seed: int):
    """Register the method's hook; returns the state (None for all-reduce, fp16 and bf16)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd

    from commpress.integrations import ddp as cpddp
    from commpress.integrations.advise import compressor_from_spec

    kind, compressor = _parse_method(spec)
    if kind == "allreduce":
        return None
    if kind == "fp16":
        model.register_comm_hook(None, default_hooks.fp16_compress_hook)
        return None
    if kind == "bf16":  # PyTorch's bf16_compress_hook refuses anything but NCCL/XCCL: the same hook, on gloo
        model.register_comm_hook(None, _bf16_hook)
        return None
    if kind == "powersgd":  # PyTorch's PowerSGD: error feedback and warm start on, 2 dense steps first
        state = powersgd.PowerSGDState(process_group=None, matrix_approximation_rank=int(compressor or 1),
                                       start_powerSGD_iter=2, use_error_feedback=True, warm_start=True,
                                       random_seed=seed)
        model.register_comm_hook(state, powersgd.powerSGD_hook)
        return None
    return cpddp.register(model, compressor_from_spec(compressor), kind, seed=seed)


def _bf16_hook(process_group, bucket):
    """PyTorch's ``bf16_compress_hook`` (cast, divide, all-reduce asynchronously, cast back), which DDP
    accepts on NCCL/XCCL only; the same computation for gloo."""
    import torch
    import torch.distributed as dist

    group = process_group if process_group is not None else dist.group.WORLD
    buffer = bucket.buffer()
    compressed = buffer.to(torch.bfloat16).div_(group.size())
    future = dist.all_reduce(compressed, group=group, async_op=True).get_future()

    def decompress(fut):
        buffer.copy_(fut.value()[0])
        return buffer

    return future.then(decompress)


def _powersgd_bytes(model, rank: int, min_compression_rate: float = 2.0) -> int:
    """Bytes one rank sends per step with PyTorch's PowerSGD hook (after its dense steps): P (n x r)
    and Q (m x r) in fp32 for each matrix the hook compresses, the rest (vectors, and matrices too
    small to pay) uncompressed, as ``powerSGD_hook`` decides per tensor."""
    total = 0
    for p in model.parameters():
        if p.dim() < 2:
            total += 4 * p.numel()
            continue
        n, m = p.shape[0], p.numel() // p.shape[0]
        r = min(rank, n, m)
        compressed = n * m > (n + m) * r * min_compression_rate
        total += 4 * ((n + m) * r if compressed else n * m)
    return total


def _build(spec: str, args: argparse.Namespace):
    """The model wrapped for ``spec`` (DDP, or FSDP2 for ``fsdp``/``fsdp-METHOD:COMPRESSOR``), its
    commpress state (None for PyTorch's own), and the payload bytes per step of PyTorch's own."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from commpress.integrations.advise import compressor_from_spec, make_model

    kind, compressor = _parse_method(spec)
    model, _ = make_model(params=args.params, batch_size=args.batch_size, seed=args.seed)
    n = sum(p.numel() for p in model.parameters())
    if kind.startswith("fsdp"):
        from torch.distributed.fsdp import fully_shard

        from commpress.integrations import fsdp as cpfsdp

        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                fully_shard(module)
        fully_shard(model)
        method = kind.partition("-")[2]
        options = _method_options(spec)
        gather = {"params": options["params"], "param_block_size": options.get("param_block", 256)} \
            if "params" in options else {}
        state = cpfsdp.register(model, compressor_from_spec(compressor), method, seed=args.seed, **gather) \
            if method else None
        return model, state, 4 * n * (args.world - 1) // args.world  # the reduce-scatter's share leaving a rank
    # PyTorch's PowerSGD hook launches its second all-reduce (Q) from the first one's (P) completion
    # callback; on gloo that callback runs on a worker thread, so with several buckets the ranks can
    # issue different buckets' collectives in different orders (a hang, seen here at 10^7 parameters
    # with DDP's 25 MB buckets). One bucket for the whole model avoids it.
    ddp = DDP(model, bucket_cap_mb=4 * n / 2**20 + 1) if kind == "powersgd" else DDP(model)
    state = _attach(ddp, spec, args.seed)
    dense = {"allreduce": 4 * n, "fp16": 2 * n, "bf16": 2 * n}.get(kind)
    if kind == "powersgd":
        dense = _powersgd_bytes(model, int(compressor or 1))
    return ddp, state, dense


def _ddp_worker(args: argparse.Namespace) -> dict:
    import torch
    import torch.distributed as dist

    rank, world = args.rank, args.world
    dist.init_process_group("gloo", init_method=f"tcp://{args.addr}:{args.port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=900))
    try:
        g = torch.Generator().manual_seed(args.seed)
        means = torch.randn(10, 784, generator=g)  # 10 classes: Gaussian clusters around random means
        results, target_loss = [], None
        for spec in args.methods.split(","):
            kind, compressor = _parse_method(spec)
            ddp, state, baseline_bytes = _build(spec, args)
            opt = torch.optim.SGD(ddp.parameters(), lr=args.lr)
            data = torch.Generator().manual_seed(args.seed * 1000 + rank)
            warm = state.warmup_steps if state is not None else 2
            times, losses, smooth, payload = [], [], None, 0
            param_payload = None  # the parameter all-gathers' bytes per step (FSDP rows)
            max_steps = args.steps if target_loss is None else args.max_steps
            steps_to_loss = None
            for step in range(max_steps):
                y = torch.randint(0, 10, (args.batch_size,), generator=data)
                x = means[y] + 2.0 * torch.randn(args.batch_size, 784, generator=data)
                dist.barrier()
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(ddp(x), y)
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - t0)
                mean = loss.detach().reshape(1).clone()
                dist.all_reduce(mean)
                value = float(mean) / world
                losses.append(value)
                smooth = value if smooth is None else 0.7 * smooth + 0.3 * value
                if state is not None and step >= warm:
                    payload = state.traffic.last_payload_bytes
                    if getattr(state, "gathers", None):
                        param_payload = state.param_traffic.last_payload_bytes
                if target_loss is not None and steps_to_loss is None and smooth <= target_loss:
                    steps_to_loss = step + 1
                if step + 1 >= args.steps and (target_loss is None or steps_to_loss is not None):
                    break
            if target_loss is None:  # the first method (all-reduce) sets the loss target
                target_loss = smooth
                steps_to_loss = len(times)
            n = sum(p.numel() for p in ddp.parameters()) if not kind.startswith("fsdp") else \
                sum(p.full_tensor().numel() for p in ddp.parameters())
            if state is None:
                payload = baseline_bytes
            if kind.startswith("fsdp") and param_payload is None:  # FSDP's own gathers: forward and backward
                param_payload = 2 * 4 * n * (world - 1) // world
            t = torch.tensor([statistics.median(times[warm:] or times)], dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            row = {"method": spec, "compressor": compressor, "params": n, "bits": 8 * payload / n,
                   "param_bits": None if param_payload is None else 8 * param_payload / n,
                   "step": float(t), "time_to_steps": sum(times[: args.steps]),
                   "loss_at_steps": _smoothed(losses[: args.steps]), "steps_to_loss": steps_to_loss,
                   "time_to_loss": None if steps_to_loss is None else sum(times[:steps_to_loss]),
                   "times": times, "losses": losses}
            results.append(row)
            if rank == 0:
                print(f"  {spec}: {len(times)} steps, {1e3 * row['step']:.0f} ms/step, "
                      f"{row['bits']:.3f} bits/coord, param bits {_param_bits(row)}, smoothed loss {smooth:.4f}",
                      flush=True)
            del ddp, opt, state
        return {"methods": results, "params": results[0]["params"], "target_loss": target_loss}
    finally:
        dist.destroy_process_group()


def _smoothed(losses: list[float]) -> float:
    smooth = None
    for value in losses:
        smooth = value if smooth is None else 0.7 * smooth + 0.3 * value
    return float("nan") if smooth is None else smooth


def _marina_worker(args: argparse.Namespace) -> dict:
    """MARINA+CQ and GD on one quadratic through TorchDistNetwork (commpress.distributed's driver)."""
    from commpress.distributed import Job, Session, execute

    os.environ.update({"RANK": str(args.rank), "WORLD_SIZE": str(args.world), "MASTER_ADDR": args.addr})
    problem = {"name": "quadratic", "n_clients": args.world, "dim": args.marina_dim, "noise_scale": 0.0, "seed": 0,
               "dtype": args.marina_dtype}
    jobs = [("GD", Job(problem, "gd", iterations=args.marina_rounds, target=args.marina_target, record_every=5)),
            ("MARINA+CQ", Job(problem, "marina", compressor="cq", iterations=args.marina_rounds,
                              target=args.marina_target, stepsize_multiplier=args.marina_multiplier,
                              record_every=5, params={"p": args.marina_p}))]
    methods = []
    for i, (name, job) in enumerate(jobs):
        os.environ["MASTER_PORT"] = str(args.port + i)  # a fresh rendezvous per run
        session = Session.from_env(timeout=900)
        try:
            h = execute(job, session).history
        finally:
            session.close()
        if args.rank != 0:  # rank 0 holds the recorded curve
            continue
        reached = h.status == "target_reached"
        row = {"name": name, "rounds": int(h.iterations[-1]) if reached else None, "bits": float(h.bits_up[-1]),
               "seconds": float(h.wall_time[-1]), "status": h.status, "stepsize": h.stepsize,
               "grad_norm_sq": float(h.grad_norm_sq[-1])}
        methods.append(row)
        if args.rank == 0:
            print(f"  {name}: {h.status} after {int(h.iterations[-1])} rounds, {row['bits']:.4g} bits/client, "
                  f"{row['seconds']:.1f} s", flush=True)
    if args.rank != 0:
        return {}
    gd, marina = methods
    bits_gain = gd["bits"] / marina["bits"]
    time_gain = gd["seconds"] / marina["seconds"]
    both = gd["rounds"] is not None and marina["rounds"] is not None
    return {"d": args.marina_dim, "world": args.world, "target": args.marina_target, "methods": methods,
            "bits_gain": bits_gain, "time_gain": time_gain, "ratio": time_gain / bits_gain if both else float("nan"),
            "p": args.marina_p, "multiplier": args.marina_multiplier, "dtype": args.marina_dtype}


# ============================================================================ arguments
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", type=int, default=2, help="ranks, one namespace each (default 2)")
    p.add_argument("--rate", default="100mbit", help="tc netem rate of every rank's link (default 100mbit)")
    p.add_argument("--delay", default="1ms", help="tc netem one-way delay (default 1ms)")
    p.add_argument("--burst", default="32kb",
                   help=("tbf bucket where the kernel has no netem (default 32kb: small next to a message, so "
                         "that even a 1-bit message of 10^6 coordinates is paced at the rate)"))
    p.add_argument("--steps", type=int, default=12, help="steps per method, the fixed-steps target (default 12)")
    p.add_argument("--max-steps", type=int, default=24,
                   help="the other methods may run up to this many steps to reach the loss target (default 24)")
    p.add_argument("--batch-size", type=int, default=8, help="per rank (default 8)")
    p.add_argument("--params", type=int, default=10_000_000, help="MLP parameters (default 10^7)")
    p.add_argument("--lr", type=float, default=0.003, help="SGD learning rate (default 0.003)")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help=("comma-separated: allreduce, fp16, bf16, powersgd:RANK, HOOK:COMPRESSOR[:k=v;k=v] with HOOK "
                         "one of mean, ef, ef21, diana (DDP), fsdp, fsdp-HOOK:COMPRESSOR[:k=v;k=v] (FSDP2), the "
                         "FSDP rows optionally followed by +params=MODE (int8, int4, bf16, none: the parameter "
                         "all-gathers quantized) and +param_block=B (default 256), e.g. "
                         f"fsdp-ef:sign:block_size=256+params=int8 (default {DEFAULT_METHODS})"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, help="write the DDP/FSDP measurements (JSON) to this file")
    p.add_argument("--report-from", default=None,
                   help="print the DDP/FSDP report and advise's predictions from a --save file, without training "
                        "(no root needed)")
    p.add_argument("--parts", choices=("all", "ddp", "marina"), default="all",
                   help="run the DDP comparison, the MARINA+CQ vs GD comparison or both (default all)")
    p.add_argument("--marina", choices=("auto", "no"), default="auto",
                   help="MARINA+CQ vs GD on a quadratic (auto: when TorchDistNetwork exists)")
    p.add_argument("--marina-rounds", type=int, default=600, help="round limit of the MARINA/GD runs (default 600)")
    p.add_argument("--marina-dim", type=int, default=1_000_000, help="quadratic dimension d (default 10^6)")
    p.add_argument("--marina-target", type=float, default=1.0,
                   help="target ||grad f||^2 (default 1; it starts at 3.1e5 for d = 10^6)")
    p.add_argument("--marina-p", type=float, default=0.2,
                   help="MARINA's probability of a dense round (default 0.2)")
    p.add_argument("--marina-multiplier", type=float, default=512.0,
                   help=("MARINA's stepsize multiplier over its theoretical stepsize (default 512). p and the "
                         "multiplier are the simulator's best in bits to the target among the settings that "
                         "converge for p in {0.1, 0.2, 0.3} (multipliers 64..1024; 1024 diverges at p = 0.15, 0.25)"))
    p.add_argument("--marina-dtype", choices=("float32", "float64"), default="float32",
                   help=("the quadratic's dtype (default float32, as DDP trains; the dense messages are float32 "
                         "on the wire either way, so the bits are the same)"))
    # internal: a rank
    p.add_argument("--worker", choices=("link", "ddp", "marina"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--addr", default=None, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return p


if __name__ == "__main__":
    sys.exit(main())
