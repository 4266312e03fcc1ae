"""Compressor speed as a ratio to torch.rand(n, d) of the same size and dtype, measured in the same run.

torch.rand is the floor of any stochastic quantizer (it must at least draw one uniform per
coordinate). For each compressor at (n, d) = (16, 2^20) and (256, 4096):
``apply`` / rand and ``encode + decode`` / apply.

    python benchmarks/compressors.py [--names cq,iq] [--shapes 16x1048576,256x4096] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import torch

import commpress as cp


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", default=None, help="comma-separated compressor names (default: all)")
    parser.add_argument("--shapes", default="16x1048576,256x4096")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    names = args.names.split(",") if args.names else cp.compressors.names()
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dtype {args.dtype}")
    for shape in args.shapes.split(","):
        n, d = (int(v) for v in shape.split("x"))
        X = torch.randn(n, d, dtype=dtype, generator=torch.Generator().manual_seed(0))
        floor = best_time(lambda: torch.rand(n, d, dtype=dtype), args.repeat)
        print(f"\n(n, d) = ({n}, {d}): torch.rand floor {floor * 1e3:.2f} ms")
        print(f"{'compressor':<18} {'apply ms':>9} {'apply/rand':>10} {'enc+dec ms':>11} {'(enc+dec)/apply':>15} {'(enc+dec)/rand':>14}")
        for name in names:
            C = cp.compressors.make(name)
            try:
                t_apply = best_time(lambda: C.apply(X, 1), args.repeat)
                t_wire = best_time(lambda: C.decode(C.encode(X, 1), 1, d, dtype=dtype), max(1, args.repeat // 2))
            except Exception as err:  # report and go on: a benchmark prints what it can
                print(f"{name:<18} failed: {err}")
                continue
            print(f"{name:<18} {t_apply * 1e3:9.2f} {t_apply / floor:9.2f}x {t_wire * 1e3:11.2f} {t_wire / t_apply:14.2f}x {t_wire / floor:13.2f}x")


if __name__ == "__main__":
    main()
