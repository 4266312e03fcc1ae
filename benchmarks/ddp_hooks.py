"""Cost of the commpress DDP hooks per gradient bucket, against DDP's plain all-reduce.

Spawns ``--world`` gloo processes on 127.0.0.1 and, for each bucket size d and compressor, calls
``compressed_allreduce_hook`` on a bucket of d float32 entries (past the warm-up, a new round
seed each call) and times it; also times the local work alone (encode of this rank's row and
decode of all rows, no collective) and the plain all-reduce of the same bucket. Reports rank 0's
median over ``--repeat`` calls and the payload bytes per rank.

Overlap: DDP calls a hook and goes on with the backward pass until it needs the bucket. The
``+compute`` column times ``fut = hook(...)``, then as much computation (matrix products) as the
hook alone takes, then ``fut.wait()``; ``hidden`` is the share of the hook's time that the
computation covered, ``(hook + compute - together) / hook``: about 0 for a hook that returns a
completed future, up to 1 when its collective and decoding run entirely behind the computation.
(On gloo the decoding runs on the process group's thread, so it needs a free core to hide.)

    python benchmarks/ddp_hooks.py [--names cq,qsgd,sign] [--sizes 65536,1048576] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import commpress as cp
cp.keep_freed_memory()  # as a training process would (see commpress.integrations.ddp)
from commpress.integrations import ddp as cpddp


class _Bucket:
    """The GradBucket methods the hooks use."""

    def __init__(self, buffer: torch.Tensor) -> None:
        self._buffer = buffer

    def index(self) -> int:
        return 0

    def buffer(self) -> torch.Tensor:
        return self._buffer

    def is_last(self) -> bool:
        return True


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _compute(iterations: int) -> None:
    """Stand-in for the rest of the backward pass: ``iterations`` 128x128 matrix products."""
    a = torch.full((128, 128), 1e-3)
    for _ in range(iterations):
        a = a @ a


def _iterations_for(seconds: float, repeat: int) -> int:
    per = _median_time(lambda: _compute(50), repeat) / 50
    return max(1, round(seconds / per))


def _worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        names = args.names.split(",") if args.names else cp.compressors.names()
        for d in (int(v) for v in args.sizes.split(",")):
            x = torch.randn(d, generator=torch.Generator().manual_seed(rank))

            def allreduce() -> None:
                t = x.clone()
                dist.all_reduce(t)

            floor = _median_time(allreduce, args.repeat)
            if rank == 0:
                print(f"\nd = {d}, {world} ranks: plain all-reduce {floor * 1e3:.2f} ms, {4 * d:,} bytes per rank")
                print(f"{'compressor':<20} {'hook ms':>9} {'/allreduce':>10} {'local ms':>9} {'payload B':>11} "
                      f"{'fp32/payload':>12} {'+compute ms':>11} {'hidden':>6}")
            for name in names:
                try:
                    state = cpddp.CompressionHookState(name, warmup_steps=2)
                except cp.ConfigError as err:
                    if rank == 0:
                        print(f"{name:<20} skipped: {str(err).splitlines()[0]}")
                    continue
                state.step = state.warmup_steps
                C = state.compressor
                try:  # a compressor that cannot serve this d fails on every rank together
                    t_hook = _median_time(
                        lambda: cpddp.compressed_allreduce_hook(state, _Bucket(x.clone())).wait(), args.repeat
                    )
                except cp.CommpressError as err:
                    if rank == 0:
                        print(f"{name:<20} failed: {str(err).splitlines()[0][:90]}")
                    continue
                everyone = C.encode(x.expand(world, d).contiguous(), 1)  # valid messages of every rank

                def local() -> None:
                    C.encode(x[None], 1, clients=[rank], n=world)
                    C.decode(everyone, 1, d, clients=torch.arange(world), n=world)

                t_local = _median_time(local, args.repeat) if not C.summable else float("nan")
                payload = state.traffic.last_payload_bytes
                # the same amount of computation on every rank: rank 0's calibration, shared
                n_iter = torch.tensor([_iterations_for(t_hook, args.repeat)])
                dist.broadcast(n_iter, 0)
                n_iter = int(n_iter)
                t_compute = _median_time(lambda: _compute(n_iter), args.repeat)

                def overlapped() -> None:
                    fut = cpddp.compressed_allreduce_hook(state, _Bucket(x.clone()))
                    _compute(n_iter)
                    fut.wait()

                t_both = _median_time(overlapped, args.repeat)
                hidden = (t_hook + t_compute - t_both) / t_hook
                if rank == 0:
                    print(f"{name:<20} {t_hook * 1e3:9.2f} {t_hook / floor:9.1f}x {t_local * 1e3:9.2f} "
                          f"{payload:11,d} {4 * d / max(payload, 1):11.1f}x {t_both * 1e3:11.2f} {hidden:6.2f}")
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", default=None, help="comma-separated compressor names (default: all registered)")
    parser.add_argument("--sizes", default="65536,1048576", help="bucket sizes d (float32 entries)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--world", type=int, default=2)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(f"torch {torch.__version__}, gloo, {args.world} processes x 1 thread")
    mp.spawn(_worker, args=(args.world, port, args), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
