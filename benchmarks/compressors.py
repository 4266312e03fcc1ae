"""Compressor speed as a ratio to torch.rand(n, d) and to X.clone() of the same size and dtype,
measured in the same run.

torch.rand is the floor of any stochastic quantizer (it must at least draw one uniform per
coordinate); X.clone() is the floor of anything that writes an (n, d) output (one read and one
write of the matrix, i.e. memory bandwidth). For each compressor at (n, d) = (16, 2^20) and
(256, 4096) we time, alternately and ``--repeat`` times, ``torch.rand``, ``X.clone()``, ``apply``
and ``encode + decode``, and print the median ratios ``apply / rand``, ``apply / clone``,
``(encode + decode) / apply`` and ``(encode + decode) / clone`` (alternating keeps a loaded
machine's drift out of the ratios).

``--compile`` prints every compressor twice: eager torch (the default) and with the compiled
paths on (``commpress._rng.set_compile(True)``, as ``COMMPRESS_COMPILE=1``: compiled random draws
and, for IQ, CQ, dithering/QSGD and natural compression, one fused kernel per ``apply``); the
first call compiles (seconds) and is not timed.

The ``goal`` column states the goals of the issue at (16, 2^20) against ``X.clone()``: ``apply``
at most 2x ``X.clone()`` for IQ, CQ, QSGD, natural and sign, and ``encode + decode`` at most 3x
``X.clone()`` for the same compressors.

    python benchmarks/compressors.py [--names cq,iq] [--shapes 16x1048576,256x4096] [--repeat 7] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import commpress as cp
from commpress import _rng

#: (apply / clone, (encode + decode) / clone) at (16, 2^20), from the issue
GOALS = dict.fromkeys(["iq", "cq", "qsgd", "natural", "sign"], (2.0, 3.0))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", default=None, help="comma-separated compressor names (default: all)")
    parser.add_argument("--shapes", default="16x1048576,256x4096")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true",
                        help="also time every compressor with the compiled paths on (rows marked 'compiled')")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.names.split(",") if args.names else cp.compressors.names()
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dtype {args.dtype}, "
          f"median of {args.repeat} alternating rounds")
    for shape in args.shapes.split(","):
        n, d = (int(v) for v in shape.split("x"))
        X = torch.randn(n, d, dtype=dtype, generator=torch.Generator().manual_seed(0))
        print(f"\n(n, d) = ({n}, {d})")
        print(f"{'compressor':<18} {'mode':<8} {'rand ms':>8} {'clone ms':>8} {'apply ms':>9} {'apply/rand':>10} "
              f"{'apply/clone':>11} {'enc+dec ms':>11} {'(enc+dec)/apply':>15} {'(enc+dec)/clone':>15}  goal")
        for name in names:
            for compiled in ((False, True) if args.compile else (False,)):
                _rng.set_compile(compiled)
                try:
                    row(name, X, n, d, dtype, args.repeat, "compiled" if compiled else "eager")
                finally:
                    _rng.set_compile(False)


def row(name: str, X: torch.Tensor, n: int, d: int, dtype: torch.dtype, repeat: int, mode: str) -> None:
    C = cp.compressors.make(name)
    try:
        C.apply(X, 0)
        C.decode(C.encode(X, 0), 0, d, dtype=dtype)  # warm-up (and the compile)
    except Exception as err:  # report and go on: a benchmark prints what it can
        print(f"{name:<18} {mode:<8} skipped: {type(err).__name__}: {str(err)[:90]}")
        return
    rand_t, clone_t, apply_t, wire_t = [], [], [], []
    for r in range(repeat):
        rand_t.append(timed(lambda: torch.rand(n, d, dtype=dtype)))
        clone_t.append(timed(lambda: X.clone()))
        apply_t.append(timed(lambda: C.apply(X, r)))
        wire_t.append(timed(lambda: C.decode(C.encode(X, r), r, d, dtype=dtype)))
    ratio = statistics.median(a / b for a, b in zip(apply_t, rand_t))
    clone_ratio = statistics.median(a / c for a, c in zip(apply_t, clone_t))
    wire_ratio = statistics.median(w / a for w, a in zip(wire_t, apply_t))
    wire_clone = statistics.median(w / c for w, c in zip(wire_t, clone_t))
    goal = GOALS.get(name) if (n, d) == (16, 2**20) else None
    verdict = "" if goal is None else (
        f"apply <= {goal[0]:g}x clone {'met' if clone_ratio <= goal[0] else 'MISSED'}; "
        f"enc+dec <= {goal[1]:g}x clone {'met' if wire_clone <= goal[1] else 'MISSED'}")
    print(f"{name:<18} {mode:<8} {statistics.median(rand_t) * 1e3:8.2f} {statistics.median(clone_t) * 1e3:8.2f} "
          f"{statistics.median(apply_t) * 1e3:9.2f} {ratio:9.2f}x {clone_ratio:10.2f}x "
          f"{statistics.median(wire_t) * 1e3:11.2f} {wire_ratio:14.2f}x {wire_clone:14.2f}x  {verdict}", flush=True)


if __name__ == "__main__":
    main()
