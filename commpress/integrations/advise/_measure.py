"""Measurements on this machine: a training step's compute, the compressors' codecs, and the link."""

from __future__ import annotations

import datetime
import math
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from commpress.compressors import Compressor
from commpress.errors import ConfigError, DistributedError, InputTypeError
from commpress.integrations.advise._checks import _check_int, _check_processes
from commpress.integrations.advise._compressors import compressor_from_spec
from commpress.integrations.advise._model import (
    BASELINES,
    BF16,
    FP16,
    FP32,
    FSDP2,
    Candidate,
    Compute,
    Link,
    fit_link,
    powersgd_name,
    powersgd_payload,
)
from commpress.integrations.advise._threads import _threads

#: Bytes of the length word the commpress hooks all-gather before each payload.
_LENGTH_BYTES = 8


def _positive_sizes(what: str, sizes: Sequence[int]) -> list[int]:
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"{what} must be a non-empty list of positive sizes; got {sizes}.")
    return sizes


def measure_compute(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                    repeat: int = 5, threads: int | None = None) -> Compute:
    """Median forward, backward and SGD-step times of ``model`` on ``batch`` with ``threads`` threads."""
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"measure_compute expects a torch.nn.Module; got {type(model).__name__}.")
    repeat = _check_int("repeat", repeat, 1)
    loss_fn = loss_fn or nn.functional.cross_entropy
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    x, y = batch
    fwd, bwd, step = [], [], []
    with _threads(threads):
        for i in range(repeat + 1):  # the first run warms up
            opt.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            loss = loss_fn(model(x), y)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            if i:
                fwd.append(t1 - t0)
                bwd.append(t2 - t1)
                step.append(t3 - t2)
    return Compute(statistics.median(fwd), statistics.median(bwd), statistics.median(step))


def measure_candidates(compressors: Sequence[str | Compressor], buckets: Sequence[int], processes: int, *,
                       repeat: int = 3, threads: int | None = None, seed: int = 0,
                       baselines: Sequence[str] = (), shapes: Sequence[Sequence[int]] | None = None,
                       powersgd_codec: dict[int, float] | None = None) -> list[Candidate]:
    """The fp32 and fp16 references, PyTorch's ``baselines`` (``"bf16"``, ``"powersgd:R"``; PowerSGD
    needs the parameters' ``shapes``; ``powersgd_codec``: its hook's measured cost per rank, from
    :func:`measure_powersgd_hook`) and one candidate per compressor, with codec times measured here.

    Codec time per step = the sum over ``buckets`` (entries per bucket) of this rank's encoding
    and the decoding of all ``processes`` payloads, one at a time into a running sum as the hook
    does (decoding all k into one (k, d) matrix took 3-4x as long as k single decodes at 6.5M
    entries), with the hook's passes over the bucket (a working copy, the sum, its scaling); for
    summable compressors the fast path of this rank's row; median of ``repeat`` runs. Payload
    bytes are the real packed lengths. Stateful hooks (EF, EF21, DIANA) add a few vector additions per bucket, not counted.
    """
    k = _check_processes(processes)
    repeat = _check_int("repeat", repeat, 1)
    buckets = _positive_sizes("buckets", buckets)
    d = sum(buckets)
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(b, generator=g) for b in buckets]
    with _threads(threads):
        fp16 = _median_time(lambda: [x.div(k).half().float() for x in grads], repeat)
        out = [
            Candidate(FP32, 4 * d, 0.0, "all_reduce", len(buckets), overlap=True),
            Candidate(FP16, 2 * d, fp16, "all_reduce", len(buckets), overlap=True),
        ]
        out += _baseline_candidates(baselines, grads, shapes, k, len(buckets), repeat, powersgd_codec)
        for spec in compressors:
            C = compressor_from_spec(spec)
            label = spec if isinstance(spec, str) else repr(C)
            if C.summable:
                def summed_once() -> None:
                    for x in grads:
                        C.apply(x.clone()[None], seed, clients=[0], n=k)[0].clone()

                codec = _median_time(summed_once, repeat)
                out.append(Candidate(label, 4 * (d + len(buckets)), codec, "all_reduce", len(buckets)))
                continue
            # every rank's message (compressors such as PermK send each client a different block)
            payloads = [[C.encode(x[None], seed, clients=[i], n=k)[0] for i in range(k)] for x in grads]

            def codec_once() -> None:  # as the hook does: working copy, encode, decode each rank's into a sum
                for x, sent in zip(grads, payloads):
                    C.encode(x.clone()[None], seed, clients=[0], n=k)
                    total = None
                    for r, message in enumerate(sent):  # one at a time, as the hook: no (k, d) matrix
                        row = C.decode([message], seed, x.numel(), clients=[r], n=k)[0]
                        total = row.clone() if total is None else total.add_(row)
                    total.div_(k)

            # the hook's frames: each payload padded to the longest, after its length word
            nbytes = sum(max(map(len, sent)) + _LENGTH_BYTES for sent in payloads)
            out.append(Candidate(label, nbytes, _median_time(codec_once, repeat), "all_gather", 2 * len(buckets)))
    return out


def fsdp_units(model: nn.Module) -> list[int]:
    """Entries of each FSDP2 parameter group when every module holding parameters of its own is
    ``fully_shard``-ed (its Linear and Conv layers, then the root), as ``benchmarks/slow_link.py`` does."""
    units = [sum(p.numel() for p in m.parameters(recurse=False) if p.requires_grad) for m in model.modules()]
    return [u for u in units if u > 0]


def measure_fsdp_candidates(compressors: Sequence[str | Compressor], units: Sequence[int], processes: int, *,
                            repeat: int = 3, threads: int | None = None, seed: int = 0,
                            params: Sequence[str] = (), param_block_size: int = 256) -> list[Candidate]:
    """FSDP2 with its own reduce-scatter (``"FSDP2"``) and with commpress's compressed one
    (``"FSDP2 + NAME"``, :mod:`commpress.integrations.fsdp`), per parameter group of ``units`` entries.

    Both all-gather the full parameters twice per step (fp32, ``param_bytes``). The compressed one
    sends each peer the payload of the chunk (``ceil(u/k)`` entries) it holds for it (all-to-all,
    lengths first), and its codec per step, timed here, is what a rank does per group: encode its
    ``k`` chunks, decode its own ``k`` messages (for the memories) and the ``k`` it receives.

    ``params``: modes of :mod:`commpress.integrations.fsdp_params` (``"int8"``, ``"int4"``, ``"bf16"``):
    one more row per compressor and mode, ``"FSDP2 + NAME + params=MODE"``, whose two parameter
    all-gathers carry ``k`` payloads of the shard in that mode, and whose codec adds, per gather,
    the encoding of the rank's shard and the decoding of all ``k``.
    """
    from commpress.integrations import fsdp_params

    k = _check_processes(processes)
    repeat = _check_int("repeat", repeat, 1)
    units = _positive_sizes("FSDP units", units)
    d = sum(units)
    chunks = [-(-u // k) for u in units]
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(k, c, generator=g) for c in chunks]
    out = [Candidate(FSDP2, 4 * sum(c * k for c in chunks), 0.0, "reduce_scatter", len(units), param_bytes=4 * d)]
    with _threads(threads):
        for spec in compressors:
            C = compressor_from_spec(spec)
            label = "FSDP2 + " + (spec if isinstance(spec, str) else repr(C))
            # as rank 0: its k messages (one per destination j), and the k messages for its shard (one per sender i)
            payloads = [[C.encode(X[j : j + 1], seed + j, clients=[0], n=k)[0] for j in range(k)] for X in grads]
            received = [[C.encode(X[i : i + 1], seed, clients=[i], n=k)[0] for i in range(k)] for X in grads]

            def codec_once() -> None:
                for X, sent, got in zip(grads, payloads, received):
                    for j in range(k):
                        C.encode(X[j : j + 1], seed + j, clients=[0], n=k)
                        C.decode([sent[j]], seed + j, X.shape[1], clients=[0], n=k)
                    total = torch.zeros(X.shape[1])
                    for i in range(k):
                        total.add_(C.decode([got[i]], seed, X.shape[1], clients=[i], n=k)[0])

            nbytes = sum(sum(len(p) for p in sent[1:]) for sent in payloads)
            codec = _median_time(codec_once, repeat)
            out.append(Candidate(label, nbytes, codec, "all_to_all", len(units), param_bytes=4 * d))
            for mode in params:
                shards = [torch.randn(c, generator=g) for c in chunks]
                encoded = [fsdp_params.encode(x, mode, param_block_size) for x in shards]

                def gather_once() -> None:  # one gather: encode the own shard, decode all k
                    for x, e in zip(shards, encoded):
                        fsdp_params.encode(x, mode, param_block_size)
                        fsdp_params.decode(e.unsqueeze(0).expand(k, -1), x.numel(), mode, param_block_size)

                gathered = k * sum(fsdp_params.payload_bytes(c, mode, param_block_size) for c in chunks)
                out.append(Candidate(f"{label} + params={mode}", nbytes, codec + 2 * _median_time(gather_once, repeat),
                                     "all_to_all", len(units), param_bytes=gathered))
    return out


def measure_powersgd_hook(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], ranks: Sequence[int], *,
                          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                          repeat: int = 3, threads: int | None = None, rounds: int = 3) -> dict[int, float] | None:
    """Seconds per step that PyTorch's own ``powerSGD_hook`` adds to a DDP step of ``model``, per rank R.

    Timed for real: a copy of the model without DDP, and per rank a copy in a one-process gloo DDP
    (an in-process store) with the hook (error feedback and warm start, after its two dense steps);
    the hook's cost is the median, over ``rounds`` alternating rounds, of the difference of the
    median steps (one round gave 48-86 ms at rank 1 from run to run). At one process the collectives
    move nothing, so what is left is DDP's copies of the gradients into its bucket and back and the
    hook's own work: copying the bucket into its matrices, the error feedback, P = MQ, the
    orthogonalisation, Q = M^T P, the decompression and the Python around them (at 10^7 parameters,
    one thread: 65-75 ms at rank 1, as two processes on loopback measure it, where the matrix
    products alone take 25 ms; against a DDP step without the hook, as before, 10-20 ms less).
    One DDP bucket, as ``benchmarks/slow_link.py`` runs the hook. ``None`` when this process
    already has a default process group (inside a training run): the caller then estimates the
    hook from its matrix products.
    """
    import copy

    from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd
    from torch.nn.parallel import DistributedDataParallel as DDP

    repeat, rounds = _check_int("repeat", repeat, 1), _check_int("rounds", rounds, 1)
    if dist.is_initialized():
        return None
    loss_fn = loss_fn or nn.functional.cross_entropy
    x, y = batch
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=300))
    numel = sum(p.numel() for p in model.parameters())
    try:
        def median_step(rank: int | None) -> float:
            # one bucket: PyTorch's hook launches its Q all-reduce from the P all-reduce's callback, which
            # on gloo runs on the group's worker thread; with several buckets that was seen to hang
            # rank None: the reference, the plain model's step (what advise's compute measures)
            ddp = copy.deepcopy(model) if rank is None else DDP(copy.deepcopy(model), bucket_cap_mb=4 * numel / 2**20 + 1)
            if rank is not None:
                state = powersgd.PowerSGDState(process_group=None, matrix_approximation_rank=int(rank),
                                               start_powerSGD_iter=2, use_error_feedback=True, warm_start=True)
                ddp.register_comm_hook(state, powersgd.powerSGD_hook)
            opt = torch.optim.SGD(ddp.parameters(), lr=1e-6)
            times = []
            for i in range(3 + repeat):  # DDP's first step, PowerSGD's two dense steps, one to warm up
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss_fn(ddp(x), y).backward()
                opt.step()
                if i >= 3:
                    times.append(time.perf_counter() - t0)
            del ddp, opt
            return statistics.median(times)

        with _threads(threads):  # alternating rounds: a slow spell of the machine hits both sides of a difference
            costs: dict[int, list[float]] = {int(r): [] for r in ranks}
            for _ in range(rounds):
                plain = median_step(None)
                for r in costs:
                    costs[r].append(median_step(r) - plain)
            return {r: max(0.0, statistics.median(c)) for r, c in costs.items()}
    finally:
        dist.destroy_process_group()


def _baseline_candidates(baselines: Sequence[str], grads: list[torch.Tensor], shapes: Any, k: int, nbuckets: int,
                         repeat: int, powersgd_codec: dict[int, float] | None = None) -> list[Candidate]:
    """bf16: the fp16 hook's passes in bfloat16. PowerSGD rank r: its payload from the shapes, three
    all-reduces per bucket (the uncompressed tensors, P, Q) one after the other, once the bucket is
    complete (the second waits for the first's result, so they do not hide behind the backward pass),
    and its codec: ``powersgd_codec[r]`` when given (:func:`measure_powersgd_hook`, the real hook),
    else estimated here from its matrix products: per matrix M (n x m), P = M Q, orthogonalised,
    Q = M^T P, M ~ P Q^T, with the error-feedback additions (a lower bound: the hook's own passes
    and Python cost several times more)."""
    out = []
    for spec in baselines:
        kind, _, arg = str(spec).partition(":")
        if kind == "bf16" and not arg:
            bf16 = _median_time(lambda: [x.div(k).bfloat16().float() for x in grads], repeat)
            out.append(Candidate(BF16, 2 * sum(x.numel() for x in grads), bf16, "all_reduce", nbuckets, overlap=True))
        elif kind == "powersgd" and arg.isdigit() and int(arg) >= 1:
            if shapes is None:
                raise ConfigError("advise: PowerSGD's payload depends on the parameters' shapes; pass shapes= "
                                  "(advise() does) or leave powersgd out of baselines.")
            rank = int(arg)
            matrices = [(int(s[0]), math.prod(s) // int(s[0])) for s in shapes if len(s) >= 2]
            Ms = [torch.randn(n, m) for n, m in matrices]
            Qs = [torch.randn(m, min(rank, n, m)) for n, m in matrices]

            def powersgd_once() -> None:
                for M, Q in zip(Ms, Qs):
                    E = M.clone()  # the gradient plus the error feedback
                    P = E @ Q
                    P = torch.linalg.qr(P).Q
                    Qn = E.t() @ P
                    E.sub_(P @ Qn.t())

            if powersgd_codec is not None and rank in powersgd_codec:
                codec = powersgd_codec[rank]
            else:
                codec = _median_time(powersgd_once, repeat)
            out.append(Candidate(powersgd_name(rank), powersgd_payload(shapes, rank), codec, "all_reduce",
                                 3 * nbuckets, overlap=False))
        else:
            raise ConfigError(f"advise: unknown baseline {spec!r}; use bf16 or powersgd:R (R >= 1), e.g. "
                              f"{','.join(BASELINES)}.")
    return out


def measure_link(processes: int = 2, *, sizes: Sequence[int] = (4096, 262144, 4 * 1024 * 1024), repeat: int = 5,
                 master_addr: str | None = None, master_port: int | None = None, rank: int | None = None,
                 timeout: float = 120.0) -> Link:
    """Time gloo all-reduce and all-gather of ``sizes`` bytes per rank and fit :func:`fit_link`.

    Without ``master_addr``: spawns ``processes`` local processes on 127.0.0.1 (the link between
    ranks on this machine). With ``master_addr``, ``master_port`` and ``rank``: this process is
    rank ``rank`` of ``processes`` ranks started the same way on the given hosts.
    """
    k = _check_processes(processes)
    if k < 2:
        raise ConfigError("measuring a link needs --processes >= 2.")
    sizes = [_check_int("message size", s, 4) for s in sizes]
    if len(set(sizes)) < 2:
        raise ConfigError(f"measuring a link needs at least two different message sizes; got {sizes}.")
    if master_addr is not None:
        if rank is None or master_port is None:
            raise ConfigError("joining ranks on other hosts needs master_addr, master_port and rank together.")
        samples = _link_samples(int(rank), k, master_addr, int(master_port), sizes, repeat, timeout)
        return fit_link(samples, k, source=f"measured: gloo between {k} ranks via {master_addr}")
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_link_worker, args=(r, k, "127.0.0.1", port, sizes, repeat, timeout, queue), daemon=True)
             for r in range(k)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout + 60
    for p in procs:
        p.join(max(1.0, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.terminate()
        p.join(5)
    result = queue.get() if not queue.empty() else None
    if alive or result is None or isinstance(result, str):
        detail = result if isinstance(result, str) else "a rank did not finish"
        raise DistributedError(f"measuring the link between {k} local processes failed ({detail}); "
                               "pass --bandwidth and --latency to give the link instead.")
    return fit_link(result, k, source=f"measured: gloo between {k} local processes")


def _link_worker(rank: int, k: int, addr: str, port: int, sizes: list[int], repeat: int, timeout: float, queue) -> None:
    torch.set_num_threads(1)
    try:
        samples = _link_samples(rank, k, addr, port, sizes, repeat, timeout)
        if rank == 0:
            queue.put(samples)
    except Exception as err:  # reported by the parent
        if rank == 0:
            queue.put(f"{type(err).__name__}: {err}")


def _link_samples(rank: int, k: int, addr: str, port: int, sizes: list[int], repeat: int,
                  timeout: float) -> list[tuple[str, float, float]]:
    dist.init_process_group("gloo", init_method=f"tcp://{addr}:{port}", rank=rank, world_size=k,
                            timeout=datetime.timedelta(seconds=timeout))
    try:
        samples = []
        for nbytes in sizes:
            x = torch.ones(max(1, nbytes // 4), dtype=torch.float32)
            b = torch.ones(nbytes, dtype=torch.uint8)
            outs = [torch.empty_like(b) for _ in range(k)]
            whole = torch.ones(k * max(1, nbytes // (4 * k)), dtype=torch.float32)  # k chunks, for FSDP's collective
            shard = torch.ones(whole.numel() // k, dtype=torch.float32)
            for name, fn in (("all_reduce", lambda: dist.all_reduce(x)),
                             ("all_gather", lambda: dist.all_gather(outs, b)),
                             ("reduce_scatter", lambda: dist.reduce_scatter_single(shard, whole)),
                             ("all_gather_tensor", lambda: dist.all_gather_single(whole, shard))):
                fn()  # warm-up: connections, buffers
                times = []
                for _ in range(repeat):
                    dist.barrier()
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                t = torch.tensor([statistics.median(times)], dtype=torch.float64)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
                size = {"all_reduce": 4 * x.numel(), "all_gather": nbytes, "reduce_scatter": 4 * whole.numel(),
                        "all_gather_tensor": 4 * shard.numel()}[name]
                samples.append((name, float(size), float(t)))
        return samples
    finally:
        dist.destroy_process_group()


def _median_time(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
