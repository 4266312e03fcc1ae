"""``commpress advise``: will gradient compression pay for DDP on this link? A table and a verdict."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "advise", help="predict a DDP step per compressor on this machine's link, and say whether compression pays",
        description=(
            "Measures the link between ranks (gloo all-reduce and all-gather of a few sizes between "
            "--processes local processes, or between hosts with --master-addr/--master-port/--rank), the "
            "model's step compute and every compressor's encoding and decoding time, then predicts the "
            "DDP step per compressor against DDP's fp32 all-reduce and PyTorch's fp16 hook "
            "(ring all-reduce 2(k-1)/k*B/bandwidth for summable messages, all-gather (k-1)*B/bandwidth "
            "for the others, plus latency terms). --bandwidth and --latency replace the measured link "
            "(a what-if). Bandwidth units: a lowercase b is a bit, an uppercase B a byte: Mbit, Mbit/s, Mb/s, "
            "Mbps (bits/s); MB/s, MBps, MiB/s (bytes/s); prefixes k, M, G, T, Ki, Mi, Gi. tc's all-lowercase "
            "kbps/mbps/gbps (bytes/s in tc, bits/s to most people) are refused as ambiguous."
        ),
        epilog=("Examples:\n  commpress advise\n"
                "  commpress advise --bandwidth 100Mbit --latency 1ms --model-params 10000000\n"
                "  commpress advise --model mlp --hidden 2048 --compressors sign,cq,qsgd:s=7 --processes 4\n"
                "  commpress advise --processes 2 --master-addr 10.0.0.1 --master-port 29500 --rank 0   "
                "# on each host, its rank"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--processes", type=int, default=2, help="ranks (default 2)")
    p.add_argument("--bandwidth", default=None,
                   help="link bandwidth instead of measuring it, e.g. 100Mbit, 100Mbps, 1Gbit/s (bits/s) or 50MB/s (bytes/s)")
    p.add_argument("--latency", default=None, help="link latency instead of measuring it, e.g. 1ms, 50us")
    p.add_argument("--compressors", default=None,
                   help="comma-separated compressors, each name[:key=value,...], e.g. sign,cq:levels=15,range=norm,qsgd:s=7 "
                        "(default: a representative set)")
    p.add_argument("--baselines", default="",
                   help="PyTorch's other hooks to predict beside fp32 and fp16: bf16 and/or powersgd:R, comma-separated "
                        "(e.g. bf16,powersgd:1,powersgd:4; 'all' for those three)")
    p.add_argument("--fsdp", action="store_true",
                   help="also predict FSDP2 (fully_shard per layer) with its own reduce-scatter and with commpress's "
                        "compressed one per compressor")
    p.add_argument("--fsdp-params", default="",
                   help="with --fsdp: also predict the parameter all-gathers compressed, modes comma-separated "
                        "(int8, int4, bf16; see commpress.integrations.fsdp_params)")
    p.add_argument("--factors", default=None,
                   help="with --bandwidth: each collective's time over its ring model, comma-separated KEY=X with KEY "
                        "all_reduce, all_gather, reduce_scatter or all_gather_tensor (default 1 each; gloo measured "
                        "all_reduce=1.1,all_gather=1.6,reduce_scatter=2.2,all_gather_tensor=1.6 at 100 Mbit/s across "
                        "veth; a measured link times them itself)")
    p.add_argument("--model", choices=("cnn", "mlp"), default="cnn",
                   help="built-in model: a small CNN on 28x28 images, or an MLP 784-H-H-10 (default cnn)")
    p.add_argument("--hidden", type=int, default=1024, help="hidden width H of --model mlp (default 1024)")
    p.add_argument("--model-params", type=float, default=None,
                   help="stand-in for your model: an MLP with about N parameters (e.g. 1e7); overrides --model")
    p.add_argument("--batch-size", type=int, default=32, help="per-rank batch for the compute timing (default 32)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions of each measurement (default 3)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per rank for the local timings (default: cores / local processes)")
    p.add_argument("--master-addr", default=None, help="rank 0's address, to measure the link between hosts")
    p.add_argument("--master-port", type=int, default=29500, help="rank 0's port with --master-addr (default 29500)")
    p.add_argument("--rank", type=int, default=None, help="this host's rank with --master-addr")
    p.set_defaults(func=run)


def run(args) -> int:
    from commpress.errors import ConfigError
    from commpress.integrations.advise import Link, advise, format_advice, make_model, parse_bandwidth, parse_latency

    if (args.bandwidth is None) != (args.latency is None):
        raise ConfigError("give --bandwidth and --latency together (e.g. --bandwidth 100Mbit --latency 1ms), "
                          "or neither to measure the link.")
    factors = _factors(args.factors) if args.factors is not None else {}
    if args.factors is not None and args.bandwidth is None:
        raise ConfigError("--factors goes with --bandwidth/--latency; a measured link times the collectives itself.")
    link = None
    if args.bandwidth is not None:
        link = Link(parse_bandwidth(args.bandwidth), parse_latency(args.latency),
                    source=f"given: --bandwidth {args.bandwidth} --latency {args.latency}", **factors)
    link_options = {}
    if args.master_addr is not None:
        if args.rank is None:
            raise ConfigError("--master-addr needs --rank (this host's rank, 0 on the master).")
        link_options = {"master_addr": args.master_addr, "master_port": args.master_port, "rank": args.rank}
    params = None
    if args.model_params is not None:
        if args.model_params != int(args.model_params):
            raise ConfigError(f"--model-params must be a whole number; got {args.model_params}.")
        params = int(args.model_params)
    model, batch = make_model(args.model, hidden=args.hidden, params=params, batch_size=args.batch_size)
    compressors = _split_specs(args.compressors) if args.compressors else None
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    fsdp_params = [m.strip() for m in args.fsdp_params.split(",") if m.strip()]
    from commpress.integrations.fsdp_params import MODES

    for mode in fsdp_params:
        if mode not in MODES or mode == "none":
            raise ConfigError(f"--fsdp-params: unknown mode {mode!r}; use int8, int4 or bf16.")
    if baselines == ["all"]:
        from commpress.integrations.advise import BASELINES

        baselines = list(BASELINES)
    advice = advise(model, batch, processes=args.processes, link=link, compressors=compressors,
                    repeat=args.repeat, threads=args.threads, link_options=link_options, baselines=baselines,
                    fsdp=args.fsdp or bool(fsdp_params), fsdp_params=fsdp_params)
    print(format_advice(advice))
    return 0


def _factors(text: str) -> dict[str, float]:
    """'all_gather=1.6,reduce_scatter=2.2' -> {'all_gather_factor': 1.6, 'reduce_scatter_factor': 2.2}."""
    from commpress.errors import ConfigError
    from commpress.integrations.advise import FACTORS

    names = {collective: name for name, collective in FACTORS.items()}
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, value = item.partition("=")
        if key not in names or not eq:
            raise ConfigError(f"--factors: {item!r} is not KEY=X with KEY one of {', '.join(names)}.")
        try:
            out[names[key]] = float(value)
        except ValueError:
            raise ConfigError(f"--factors: {key}={value!r} is not a number.") from None
    return out


def _split_specs(text: str) -> list[str]:
    """'sign,cq:levels=15,range=norm,qsgd:s=7' -> ['sign', 'cq:levels=15,range=norm', 'qsgd:s=7']."""
    specs: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if specs and "=" in item and ":" not in item and ":" in specs[-1]:
            specs[-1] += "," + item  # another parameter of the previous compressor
        else:
            specs.append(item)
    return specs
