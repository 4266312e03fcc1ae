"""Train a small CNN on MNIST with 2 DDP processes (gloo, CPU) and compare gradient compression hooks.

Methods (``--methods``, comma-separated):

- ``allreduce``: DDP's default float32 all-reduce (the baseline);
- ``fp16``: PyTorch's ``fp16_compress_hook``;
- ``powersgd`` or ``powersgd:rank=2``: PyTorch's PowerSGD hook (error feedback, warm start);
- ``METHOD:COMPRESSOR[:key=value,...]``: a commpress hook, METHOD one of ``mean`` (compressed
  averaging), ``ef`` (error feedback), ``ef21``, ``diana``; COMPRESSOR any registered name, e.g.
  ``mean:cq:levels=15``, ``ef:sign``, ``mean:qsgd:s=4``, ``ef21:permk:scaled=False``;
- ``fsdp``: sharded training, FSDP2 (``fully_shard`` on every layer with parameters, then the
  model) with its own reduce-scatter and parameter all-gathers;
- ``fsdp-METHOD:COMPRESSOR[:key=value]``: FSDP2 with commpress's compressed reduce-scatter
  (:mod:`commpress.integrations.fsdp`), e.g. ``fsdp-ef:sign``; ending in ``+params=int8`` (or
  ``int4``, ``bf16``) the parameter all-gathers are compressed too, e.g. ``fsdp-ef:sign+params=int8``.

Data: ``--data PATH`` is the folder with ``t10k-images-idx3-ubyte.gz`` and
``t10k-labels-idx1-ubyte.gz`` (the official 10k test split, split here 8000 train / 2000 test);
without ``--data`` the commpress data folders are searched (``commpress.datasets.load_mnist``),
and when the files are absent scikit-learn's bundled 8x8 digits are used (80/20 split).

Prints one row per method: final test accuracy, bytes sent per step per rank (the payload: what
a compressed wire carries; for the commpress hooks the real packed payload, headers included),
the bytes each rank handed to the collectives, the parameter all-gathers' bytes leaving a rank
(FSDP2 rows) and the wall time per training step. A run that
diverges is marked ``diverged`` and a note under the table says why.

Which combinations work at 2 ranks: ``mean`` adds the compressor's noise to the gradient with
nothing to damp it, and with n = 2 ranks there is little averaging; 1-bit CQ in the default
norm range has omega = d - 1, so ``mean:cq`` diverges within tens of steps (its advantage
grows with the number of ranks). The defaults show CQ where it works: 1 bit per coordinate in the
``minmax`` range (a tighter range than the norm), and 15 levels (4 bits), without memory and with
DIANA. ``ef`` and ``ef21`` need a contractive compressor (sign, top-k, unscaled PermK); raw
unbiased quantizers with omega >= 1 diverge under them.

    python examples/ddp_mnist.py --data /work/shared/datasets/mnist
    python examples/ddp_mnist.py --epochs 5 --methods allreduce,mean:cq:levels=15,ef:sign
    python examples/ddp_mnist.py --methods allreduce,fsdp,fsdp-ef:sign,fsdp-ef:sign+params=int8
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import socket
import sys
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import commpress as cp
from commpress.integrations import ddp as cpddp
from commpress.integrations import fsdp as cpfsdp

#: Default methods; a commpress entry is replaced by its fallback when its compressor is not registered.
DEFAULT_METHODS = [
    ("allreduce", None),
    ("fp16", None),
    ("powersgd", None),
    ("mean:identity", None),
    ("mean:cq:range=minmax", None),  # 1-bit CQ; in the norm range (mean:cq) it diverges at 2 ranks
    ("mean:cq:levels=15", None),
    ("mean:iq:levels=15", None),
    ("diana:cq:levels=15", None),
    ("ef:sign", None),
    ("ef21:sign", "ef21:permk:scaled=False"),
    ("mean:natural", "mean:qsgd:s=16"),
    ("mean:drive", None),
    ("diana:natural_dithering", "diana:qsgd:s=4"),
]


# ---------------------------------------------------------------------------- data and model
def load_data(path: str | None, train_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """(x_train, y_train, x_test, y_test, description); images standardised, shape (N, 1, H, W)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, labels = cp.datasets.load_mnist(path, fallback="digits")
    digits = any("digits" in str(w.message) for w in caught)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    n_train = int(0.8 * len(y)) if digits else min(train_size, len(y) - 1)
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    mean, std = x_train.mean(), x_train.std()
    name = "sklearn digits 8x8" if digits else "MNIST t10k 28x28"
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test, f"{name}: {len(y_train)} train / {len(y_test)} test"


def make_model(side: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * (side // 4) ** 2, 10),
    )


# ---------------------------------------------------------------------------- methods
def parse_method(spec: str) -> tuple[str, str | None, dict]:
    """'ef:qsgd:s=4,p=2.0' -> ('ef', 'qsgd', {'s': 4, 'p': 2.0}); 'powersgd:rank=2' -> ('powersgd', None, {'rank': 2})."""
    parts = spec.split(":", 2)
    kind = parts[0]
    if kind in ("allreduce", "fp16", "powersgd"):
        return kind, None, _params(parts[1] if len(parts) > 1 else "")
    if kind not in cpddp.METHODS or len(parts) < 2:
        raise SystemExit(f"bad method {spec!r}: use allreduce, fp16, powersgd[:rank=R] or "
                         f"{'|'.join(cpddp.METHODS)}:COMPRESSOR[:key=value,...]")
    return kind, parts[1], _params(parts[2] if len(parts) > 2 else "")


def parse_fsdp(spec: str) -> tuple[str | None, str | None, dict, str | None]:
    """'fsdp' -> (None, None, {}, None); 'fsdp-ef:sign:block_size=256+params=int8' ->
    ('ef', 'sign', {'block_size': 256}, 'int8'): the method, compressor, its parameters, the parameters' mode."""
    from commpress.integrations.fsdp_params import MODES

    body, plus, mode = spec.partition("+params=")
    if plus and mode not in MODES:
        raise SystemExit(f"bad method {spec!r}: +params= needs a mode, one of {', '.join(MODES)}")
    if body == "fsdp":
        if mode and mode != "none":
            raise SystemExit(f"bad method {spec!r}: compressed parameter all-gathers go with a compressed "
                             f"reduce-scatter, e.g. fsdp-ef:sign+params={mode}")
        return None, None, {}, None
    kind, _, rest = body.partition("-")
    method, colon, _ = rest.partition(":")
    if kind != "fsdp" or method not in cpfsdp.METHODS or not colon:
        raise SystemExit(f"bad method {spec!r}: use fsdp or fsdp-{{{'|'.join(cpfsdp.METHODS)}}}:COMPRESSOR"
                         "[:key=value,...][+params=int8|int4|bf16]")
    _, name, params = parse_method(rest)
    return method, name, params, mode or None


def _params(text: str) -> dict:
    params = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def default_methods() -> list[str]:
    registered = set(cp.compressors.names())
    chosen = []
    for spec, fallback in DEFAULT_METHODS:
        kind, name, _ = parse_method(spec)
        if name is None or name in registered:
            chosen.append(spec)
        elif fallback is not None and parse_method(fallback)[1] in registered:
            chosen.append(fallback)
    return list(dict.fromkeys(chosen))


#: A hook averaging an unbiased compressor without memory (``mean``) or with DIANA's shifts is
#: expected to diverge at this lr when the variance factor A of the averaged message (its AB
#: constant, about omega / n) exceeds this. Measured on MNIST at 2 ranks, lr 0.1: A = 20 (CQ and
#: IQ, 15 levels) trains; A = 93 (7 levels) trains with CQ but IQ diverges; A = 4549 (1-bit CQ,
#: norm range) diverges within 20 steps.
NOISY_A = 50.0


def divergence_risk(spec: str, n: int, d: int) -> str | None:
    """Why ``spec`` is expected to diverge with ``n`` ranks and ``d`` parameters per bucket, or None.

    From the compressor's stated constants only (no training): EF/EF21 with a compressor that is
    not contractive, or an unbiased compressor averaged with a variance factor A above NOISY_A.
    """
    kind, name, params = parse_method(spec)
    if name is None:
        return None
    compressor = cp.compressors.make(name, **params)
    try:
        th = compressor.theory(n, d)
    except NotImplementedError:
        return None
    omega = th.omega
    if kind in ("ef", "ef21"):
        contractive = th.kind == "contractive" or th.delta is not None or (omega is not None and omega < 1)
        if not contractive:
            w = f"omega = {omega:.3g}" if omega is not None else "no contraction constant"
            return (f"{kind} needs a contractive compressor; {name} is unbiased with {w} >= 1, so the "
                    f"error it carries over grows every step (use mean or diana with it, or sign/topk with {kind})")
        return None
    if th.kind in ("unbiased", "correlated") and th.A is not None and math.isfinite(th.A) and th.A > NOISY_A:
        how = "no variance reduction" if kind == "mean" else "DIANA's shift stepsize 1/(omega+1) is too small to help"
        bits = f"{int(params.get('levels', 1)).bit_length()}-bit " if name in ("cq", "iq") else ""
        tighter = " or range=minmax" if name in ("cq", "iq") and params.get("range", "norm") == "norm" else ""
        return (f"{bits}{name} is unbiased with omega = {omega:.3g} and has no error feedback; at n = {n} ranks "
                f"the averaged gradient's noise is about A = {th.A:.3g} times its squared norm ({how}); "
                f"use more levels, more ranks{tighter}")
    return None


def divergence_note(spec: str, n: int, d: int) -> str:
    """A sentence explaining why ``spec`` diverged (the likely cause when theory does not predict it)."""
    reason = divergence_risk(spec, n, d)
    if reason is not None:
        return reason
    kind, name, params = parse_method(spec)
    if name is None:
        return "the learning rate is too large for this method: lower --lr"
    try:
        th = cp.compressors.make(name, **params).theory(n, d)
    except NotImplementedError:
        th = None
    if th is not None and th.kind in ("unbiased", "correlated") and kind == "mean":
        bound = "no worst-case bound" if th.A is None or not math.isfinite(th.A) else f"A = {th.A:.3g}"
        return (f"{name} is unbiased and averaged over {n} ranks without error feedback or variance reduction "
                f"({bound} on its noise); use more levels, more ranks, diana, or a lower --lr")
    return f"the learning rate is too large for {name} under {kind}: lower --lr"


def attach(model: DDP, spec: str, seed: int):
    """Register the method's hook; returns a function giving (payload, wire) bytes of the last step."""
    kind, name, params = parse_method(spec)
    n_params = sum(p.numel() for p in model.parameters())
    if kind == "allreduce":
        return lambda: (4 * n_params, 4 * n_params)
    if kind == "fp16":
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        model.register_comm_hook(None, default_hooks.fp16_compress_hook)
        return lambda: (2 * n_params, 2 * n_params)
    if kind == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook

        state = powerSGD_hook.PowerSGDState(
            process_group=None, matrix_approximation_rank=int(params.get("rank", 1)),
            start_powerSGD_iter=2, random_seed=seed,
        )
        model.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
        last = {"total": 0}

        def powersgd_bytes() -> tuple[int, int]:  # PowerSGD's own counter of sent entries, per step
            total = state.total_numel_after_compression
            step = (total - last["total"]) if state.iter > state.start_powerSGD_iter else n_params
            last["total"] = total
            return 4 * step, 4 * step

        return powersgd_bytes
    compressor = cp.compressors.make(name, **params)
    state = cpddp.register(model, compressor, kind, seed=seed)
    return lambda: (state.traffic.last_payload_bytes, state.traffic.last_wire_bytes)


def shard(model: nn.Module, spec: str, seed: int, world: int):
    """FSDP2 for an ``fsdp`` method: ``fully_shard`` on every layer with parameters, then the model,
    and commpress's reduce-scatter (and parameter all-gathers) when the method asks. Returns the
    sharded model and a function giving (payload, wire, parameter all-gather) bytes of the last step
    leaving a rank."""
    from torch.distributed.fsdp import fully_shard

    method, name, params, mode = parse_fsdp(spec)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fully_shard(module)
    fully_shard(model)
    n_params = sum(p.numel() for p in model.parameters())  # DTensors: the full parameters
    share = 4 * n_params * (world - 1) // world  # FSDP's own: fp32, all but the rank's own shard
    if method is None:
        return model, lambda: (share, share, 2 * share)
    gather = {"params": mode} if mode else {}
    state = cpfsdp.register(model, cp.compressors.make(name, **params), method, seed=seed, **gather)
    return model, lambda: (state.traffic.last_payload_bytes, state.traffic.last_wire_bytes,
                           state.param_traffic.last_payload_bytes if mode else 2 * share)


# ---------------------------------------------------------------------------- one process
def run_method(spec: str, args, rank: int, world: int, data) -> dict:
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(args.seed)  # the same initial model for every method and rank (FSDP2 needs it equal)
    if spec.startswith("fsdp"):
        model, bytes_of_last_step = shard(make_model(x_train.shape[-1]), spec, args.seed, world)
    else:
        model = DDP(make_model(x_train.shape[-1]), bucket_cap_mb=args.bucket_cap_mb)
        ddp_bytes = attach(model, spec, args.seed)
        bytes_of_last_step = lambda: (*ddp_bytes(), None)  # noqa: E731 (no parameter all-gathers)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = nn.CrossEntropyLoss()
    times, sent = [], [(0, 0, None)]
    diverged, error = False, None
    try:
        train(model, opt, loss_fn, bytes_of_last_step, args, rank, world, x_train, y_train, times, sent)
    except cp.CommpressError as err:  # every rank raises together (the hooks agree on failures)
        diverged = True
        error = str(err).splitlines()[0]
        if not isinstance(err, (cp.errors.NonFiniteError, cp.errors.DistributedError)):
            error = f"failed (not a divergence): {error}"  # e.g. a compressor the method cannot use
        if rank == 0:
            print(f"  {spec}: stopped at step {len(times)}: {str(err).splitlines()[0]}", flush=True)
    model.eval()
    with torch.no_grad():
        accuracy = float("nan") if diverged else (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    # the slowest rank sets the pace: report the max over ranks of the mean step time after warm-up
    mean_time = torch.tensor(float(np.mean(times[2:] or times or [0.0])))
    dist.all_reduce(mean_time, op=dist.ReduceOp.MAX)
    return {"method": spec, "accuracy": accuracy, "payload": sent[-1][0], "wire": sent[-1][1], "params": sent[-1][2],
            "time": mean_time.item(), "steps": len(times), "diverged": diverged, "error": error,
            "fp32": 4 * sum(p.numel() for p in model.parameters())}


def train(model, opt, loss_fn, bytes_of_last_step, args, rank, world, x_train, y_train, times, sent) -> None:
    step = 0
    for epoch in range(args.epochs):
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        shard = order[rank::world]  # every rank its own examples; the same number of steps
        steps = len(shard) // args.batch_size
        for i in range(steps):
            if args.max_steps and step >= args.max_steps:
                break
            idx = shard[i * args.batch_size : (i + 1) * args.batch_size]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
            times.append(time.perf_counter() - t0)
            sent.append(bytes_of_last_step())
            step += 1


def worker(rank: int, world: int, port: int, args) -> None:
    torch.set_num_threads(1)
    cp.keep_freed_memory()  # reuse large buffers between steps (glibc; see commpress._malloc)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x_train, y_train, x_test, y_test, description = load_data(args.data, args.train_size)
        if args.epochs is None:  # about 130 steps either way: 1 epoch of MNIST, 6 of the small digits set
            args.epochs = 6 if description.startswith("sklearn digits") else 1
        methods = args.methods.split(",") if args.methods else default_methods()
        if rank == 0:
            n_params = sum(p.numel() for p in make_model(x_train.shape[-1]).parameters())
            print(f"data: {description}; {world} ranks x batch {args.batch_size}, {args.epochs} epoch(s), "
                  f"SGD lr {args.lr} momentum {args.momentum}; model: {n_params} parameters", flush=True)
        rows = []
        for spec in methods:
            rows.append(run_method(spec, args, rank, world, (x_train, y_train, x_test, y_test)))
            if rank == 0:
                r = rows[-1]
                print(f"  done {spec}: {r['steps']} steps, accuracy {r['accuracy']:.4f}, "
                      f"{1e3 * r['time']:.1f} ms/step", flush=True)
        if rank == 0:
            print_table(rows, world, sum(p.numel() for p in make_model(x_train.shape[-1]).parameters()))
    finally:
        dist.destroy_process_group()


def print_table(rows: list[dict], world: int, n_params: int) -> None:
    """bytes/step/rank: payload of the last step (compressor messages incl. headers; raw tensors for the
    baselines; FSDP2 rows: the reduce-scatter's share leaving a rank); collective in B: what each rank
    handed to the collectives (padding, length words); param B/step: FSDP2's two parameter all-gathers
    leaving a rank (- for DDP).
    Each diverged row gets a note under the table saying why."""
    w = max([24, *(len(r["method"]) for r in rows)])
    head = (f"| {'method':<{w}} | {'test acc':>8} | {'bytes/step/rank':>15} | {'vs fp32':>8} | {'collective in B':>15} "
            f"| {'param B/step':>12} | {'ms/step':>7} |")
    print()
    print(head)
    print("|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        acc = ("failed" if (r["error"] or "").startswith("failed") else "diverged") if r["diverged"] else f"{r['accuracy']:8.4f}"
        params = "-" if r.get("params") is None else f"{r['params']:,d}"
        print(f"| {r['method']:<{w}} | {acc:>8} | {r['payload']:15,d} | {r['fp32'] / max(r['payload'], 1):7.1f}x "
              f"| {r['wire']:15,d} | {params:>12} | {1e3 * r['time']:7.2f} |")
    diverged = [r for r in rows if r["diverged"]]
    if diverged:
        print("notes:")
    for r in diverged:
        if r["error"] and r["error"].startswith("failed"):
            print(f"  {r['method']} stopped at step {r['steps']}: {r['error']}")
        else:
            print(f"  {r['method']} diverged at step {r['steps']}: {divergence_note(r['method'], world, n_params)}.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="folder with the MNIST t10k IDX files (default: search, else digits)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: a representative set)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training data (default: 1 on MNIST, 6 on the digits fallback)")
    parser.add_argument("--max-steps", type=int, default=0, help="stop each method after this many steps (0: no limit)")
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.0,
                        help="SGD momentum (0 by default: error feedback with heavy momentum is unstable here)")
    parser.add_argument("--world", type=int, default=2, help="number of processes")
    parser.add_argument("--train-size", type=int, default=8000, help="MNIST examples used for training (rest: test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bucket-cap-mb", type=float, default=None,
                        help="DDP bucket size (default 25 MB: one bucket for this model; small values compress "
                             "layers separately, e.g. 0.01)")
    args = parser.parse_args(argv)
    if args.methods:
        for spec in args.methods.split(","):
            _, name, params, *_ = parse_fsdp(spec) if spec.startswith("fsdp") else parse_method(spec)
            if name is not None:
                cp.compressors.make(name, **params)  # fail early on a bad name or parameter
    mp.spawn(worker, args=(args.world, free_port(), args), nprocs=args.world, join=True)


if __name__ == "__main__":
    sys.exit(main())
