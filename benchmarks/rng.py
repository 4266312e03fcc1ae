"""Speed of the private uniforms (commpress._rng), and of the alternatives weighed for them.

Nanoseconds per value for a (16, 2^20) draw, one torch thread, process CPU time (median of
``--repeat``; CPU time rather than wall time keeps a loaded machine's waiting out):

- ``pcg64``: the NumPy PCG64 draw commpress used before the counter-based generator (reference);
- ``splitmix eager`` / ``splitmix compiled``: the library's draw (:func:`commpress._rng.private_rand`),
  eager torch in tiles and ``torch.compile``d (``COMMPRESS_COMPILE=1``);
- ``philox eager`` / ``philox compiled``: Philox4x32-10 (Salmon et al., SC 2011) in the same int64
  torch arithmetic, tiled and in place likewise, for comparison (it is not used by the library).

The first call of a compiled kernel is timed apart (``first call``): it includes the compilation.

    python benchmarks/rng.py [--repeat 7] [--which pcg64,splitmix,philox] [--no-compile]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from commpress import _rng

ROWS, M = 16, 1 << 20
M32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85


def pcg64(dtype: torch.dtype) -> torch.Tensor:
    """The former definition: row i is words [i W, (i + 1) W) of one PCG64 stream."""
    bits = np.random.PCG64(_rng.stream_key(1, "t", -2))
    if dtype == torch.float64:
        return torch.from_numpy(np.random.Generator(bits).random(ROWS * M).reshape(ROWS, M))
    halves = bits.random_raw(ROWS * M // 2).view(np.uint32).reshape(ROWS, M)
    return torch.from_numpy((halves >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24))


def splitmix(dtype: torch.dtype) -> torch.Tensor:
    return _rng.private_rand(1, "t", ROWS, (M,), None, dtype=dtype)


def _philox_rounds(c0, c1, c2, c3, k0: int, k1: int):
    """Philox4x32-10 on int64 tensors holding 32-bit lanes (functional: for torch.compile)."""
    for _ in range(10):
        p0, p1 = c0 * PHILOX_M0, c2 * PHILOX_M1
        c0, c1, c2, c3 = ((p1 >> 32) & M32) ^ c1 ^ k0, p1 & M32, ((p0 >> 32) & M32) ^ c3 ^ k1, p0 & M32
        k0, k1 = (k0 + PHILOX_W0) & M32, (k1 + PHILOX_W1) & M32
    return c0, c1, c2, c3


PHILOX_KEY = (0x12345678, 0x9ABCDEF0)


def _philox_kernel(ctr: torch.Tensor, row: torch.Tensor, out: torch.Tensor) -> None:
    zero = ctr - ctr
    lanes = torch.stack(_philox_rounds(ctr, zero, row, zero, *PHILOX_KEY), dim=-1).reshape(out.shape[0], -1)
    if out.dtype == torch.float64:  # two 32-bit lanes per value: the top 53 bits of (hi, lo)
        pairs = lanes.view(out.shape[0], -1, 2)
        word = (pairs[..., 1] << 32) | pairs[..., 0]
        out.copy_(((word >> 11) & ((1 << 53) - 1)).to(torch.float64) * 2.0**-53)
    else:
        out.copy_(((lanes >> 8) & 0xFFFFFF).to(torch.float32) * 2.0**-24)


_compiled_philox = None


def philox(dtype: torch.dtype, compiled: bool = False, tile: int = 1 << 15) -> torch.Tensor:
    """(ROWS, M) uniforms from counters (column block, 0, row, 0) under a fixed key."""
    global _compiled_philox
    k0, k1 = PHILOX_KEY
    per = 4 if dtype == torch.float32 else 2  # values per 128-bit block
    out = torch.empty(ROWS, M, dtype=dtype)
    if compiled:
        if _compiled_philox is None:
            _compiled_philox = torch.compile(_philox_kernel, dynamic=True)
        C = M // per
        for r in range(ROWS):
            for c0 in range(0, C, tile):
                c1 = min(C, c0 + tile)
                ctr = torch.arange(c0, c1, dtype=torch.int64).unsqueeze(0)
                _compiled_philox(ctr, torch.full_like(ctr, r), out[r : r + 1, c0 * per : c1 * per])
        return out
    # eager, tiled, in place: 12 operations per round on four lane tensors
    C = M // per
    bufs = [torch.empty(tile, dtype=torch.int64) for _ in range(6)]
    for r in range(ROWS):
        for s in range(0, C, tile):
            e = min(C, s + tile)
            c0, c1, c2, c3, p0, p1 = (b[: e - s] for b in bufs)
            torch.arange(s, e, out=c0)
            c1.zero_(), c2.fill_(r), c3.zero_()
            a, b = k0, k1
            for _ in range(10):
                torch.mul(c0, PHILOX_M0, out=p0)
                torch.mul(c2, PHILOX_M1, out=p1)
                torch.bitwise_right_shift(p1, 32, out=c0).bitwise_and_(M32).bitwise_xor_(c1).bitwise_xor_(a)
                torch.bitwise_and(p1, M32, out=c1)
                torch.bitwise_right_shift(p0, 32, out=c2).bitwise_and_(M32).bitwise_xor_(c3).bitwise_xor_(b)
                torch.bitwise_and(p0, M32, out=c3)
                a, b = (a + PHILOX_W0) & M32, (b + PHILOX_W1) & M32
            lanes = torch.stack((c0, c1, c2, c3), dim=1).reshape(-1)
            target = out[r, s * per : e * per]
            if dtype == torch.float64:
                pairs = lanes.view(-1, 2)
                target.copy_((((pairs[:, 1] << 32) | pairs[:, 0]) >> 11) & ((1 << 53) - 1)).mul_(2.0**-53)
            else:
                target.copy_((lanes >> 8) & 0xFFFFFF).mul_(2.0**-24)
    return out


def timed(fn, repeat: int) -> tuple[float, float]:
    """(seconds of the first call, median CPU seconds of the next ``repeat``)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        runs.append(time.process_time() - t)
    return first, statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--which", default="pcg64,splitmix,philox")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled variants")
    args = parser.parse_args()
    torch.set_num_threads(1)
    which = args.which.split(",")
    print(f"torch {torch.__version__}, 1 thread, ({ROWS}, {M}) values, ns per value (process CPU time, "
          f"median of {args.repeat})")
    for dtype in (torch.float32, torch.float64):
        cases = []
        if "pcg64" in which:
            cases.append(("pcg64 (former)", lambda: pcg64(dtype)))
        if "splitmix" in which:
            cases.append(("splitmix eager", lambda: (_rng.set_compile(False), splitmix(dtype))))
            if not args.no_compile:
                cases.append(("splitmix compiled", lambda: (_rng.set_compile(True), splitmix(dtype))))
        if "philox" in which:
            cases.append(("philox eager", lambda: philox(dtype)))
            if not args.no_compile:
                cases.append(("philox compiled", lambda: philox(dtype, compiled=True, tile=1 << 18)))
        for name, fn in cases:
            first, t = timed(fn, args.repeat)
            print(f"  {str(dtype).removeprefix('torch.'):8s} {name:18s} {t / (ROWS * M) * 1e9:6.2f} ns/value"
                  f"   (first call {first:.1f} s)")
        _rng.set_compile(False)


if __name__ == "__main__":
    main()
