"""GPU checks and speed (issue 12): one script, under 8 minutes on one GPU.

Prints, on ``--device`` (default ``cuda``):

1. payloads: for every registered compressor, the payload bytes of ``encode`` on the device equal
   those on the CPU (same seed; dyadic inputs, as in ``tests/compressors/test_devices.py``, so sums
   and norms are exact whatever the order of a device's reductions), and ``apply`` agrees;
2. iterates: MARINA / DIANA / EF21 final iterates on the device against the CPU (same seed,
   ``cp.simulate(cp.problems.make("quadratic", ..., device=device), ..., device=device)`` on a small
   float64 quadratic; MARINA with p = 0.3 so that most rounds are compressed): equal within 1e-9
   relative (the randomness and the payload bytes are device-independent; only the rounding of
   the device's reductions differs);
3. speed: ``apply`` and ``encode + decode`` of each compressor at (16, 2^24) float32 against
   ``X.clone()`` on the same device, timed alternately with synchronisation, after a warm-up,
   as median ratios; goal ``apply <= 3x X.clone()`` for iq, cq, qsgd, natural, sign, permk, randk;
4. rounds: MARINA + CQ simulator rounds per second (``Algorithm.step``, problem and state on the
   device) at (n, d) = (1000, 10^6) float32 on the device against the CPU (this machine's threads);
   goal >= 50 rounds/s on the device.

Without a CUDA device and with ``--device cuda`` it prints one line and exits 0.
``python benchmarks/gpu.py --device cpu --quick`` runs everything on the CPU at small sizes
((16, 2^16) and (50, 10^4)): a smoke test of the script itself.

    python benchmarks/gpu.py [--device cuda] [--quick] [--names cq,iq] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import torch

import commpress as cp

GOAL_CLONE = 3.0  # apply <= 3x X.clone()
GOAL_NAMES = ("iq", "cq", "qsgd", "natural", "sign", "permk", "randk")
GOAL_ROUNDS = 50.0  # MARINA + CQ rounds per second at (1000, 10^6)
ITERATE_RUNS = (("marina", "cq"), ("diana", "qsgd"), ("ef21", "topk"))
ITERATE_PARAMS = {"marina": {"p": 0.3}}  # the theoretical p is 1 at d = 50: force compressed rounds
ITERATE_RTOL = 1e-9
NO_CUDA = "benchmarks/gpu.py: no CUDA device (torch.cuda.is_available() is False); nothing to measure"


# ---------------------------------------------------------------- timing helpers (plain functions)

def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: str | torch.device) -> float:
    """Seconds one call of ``fn`` takes, the device's queued work included."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def alternate(fns: dict[str, Callable[[int], object]], device: str | torch.device, repeat: int,
              warmup: int = 1) -> dict[str, list[float]]:
    """Time each ``fn(r)`` ``repeat`` times, alternating between them (after ``warmup`` untimed rounds)."""
    for r in range(warmup):
        for fn in fns.values():
            fn(r)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeat):
        for k, fn in fns.items():
            times[k].append(timed(lambda: fn(r), device))
    return times


def median_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of the per-round ratios (alternating rounds keep drift out of the ratio)."""
    return statistics.median(a / b for a, b in zip(num, den))


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned first column, right-aligned others, widths from the full rows (a shorter row,
    e.g. a name and a "skipped: ..." note, is printed as it is after its padded first cell)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    full = [row for row in cells if len(row) == len(header)]
    widths = [max(len(row[i]) for row in full) for i in range(len(header))]
    widths[0] = max(len(row[0]) for row in cells)
    lines = []
    for row in cells:
        if len(row) != len(header):
            lines.append("  ".join([row[0].ljust(widths[0])] + row[1:]).rstrip())
            continue
        parts = [c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


# ---------------------------------------------------------------- 1. payloads

def dyadic(n: int, d: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Rows of distinct multiples of 1/8 with random signs, in random order (as in test_devices.py)."""
    g = torch.Generator().manual_seed(0)
    mags = torch.stack([torch.randperm(d, generator=g) + 1 for _ in range(n)]).to(dtype) / 8
    signs = torch.randint(0, 2, (n, d), generator=g).to(dtype) * 2 - 1
    return mags * signs


def compare_payloads(device: str, names: Sequence[str], n: int = 6, d: int = 100, seed: int = 3) -> list[list[object]]:
    """Rows (name, bytes, payloads equal, apply equal) comparing ``device`` against the CPU."""
    X = dyadic(n, d)
    rows = []
    for name in names:
        try:
            C = cp.compressors.make(name)
            ref = C.encode(X, seed)
            here = C.encode(X.to(device), seed)
            X_ref, _ = C.apply(X, seed)
            X_here, _ = C.apply(X.to(device), seed)
            same_apply = X_here.device.type == torch.device(device).type and torch.allclose(
                X_here.cpu(), X_ref, rtol=1e-12, atol=1e-12)
            rows.append([name, sum(len(p) for p in ref), "equal" if here == ref else "DIFFER",
                         "equal" if same_apply else "DIFFER"])
        except Exception as err:  # report and go on
            rows.append([name, "-", f"error: {type(err).__name__}: {str(err)[:60]}", "-"])
    return rows


# ---------------------------------------------------------------- 2. iterates

def compare_iterates(device: str, n: int = 10, d: int = 50, iterations: int = 20, seed: int = 0) -> list[list[object]]:
    """Rows (algorithm, compressor, max |x_device - x_cpu|, rel. difference, where x lives, verdict):
    the same seed on a quadratic made on ``device`` and on the CPU."""
    rows = []
    for alg, comp in ITERATE_RUNS:
        try:
            kw = dict(compressor=comp, iterations=iterations, seed=seed, **ITERATE_PARAMS.get(alg, {}))
            ref = cp.simulate(cp.problems.make("quadratic", n_clients=n, dim=d, seed=0), alg, **kw)
            here = cp.simulate(cp.problems.make("quadratic", n_clients=n, dim=d, seed=0, device=device), alg,
                               device=device, **kw)
            diff = (here.x.cpu() - ref.x).abs().max().item()
            rel = diff / max(ref.x.abs().max().item(), 1e-300)
            same_bits = torch.equal(here.bits_up, ref.bits_up) and torch.equal(here.bits_down, ref.bits_down)
            ok = rel <= ITERATE_RTOL and same_bits and here.x.device.type == torch.device(device).type
            rows.append([alg, comp, f"{diff:.3g}", f"{rel:.3g}", str(here.x.device), "equal" if ok else "DIFFER"])
        except Exception as err:
            rows.append([alg, comp, "-", "-", "-", f"error: {type(err).__name__}: {str(err)[:60]}"])
    return rows


# ---------------------------------------------------------------- 3. speed

def speed_rows(device: str, names: Sequence[str], n: int, d: int, repeat: int,
               budget_s: float = 10.0) -> list[list[object]]:
    """Rows (name, clone ms, apply ms, apply/clone, enc+dec ms, (enc+dec)/clone, goal) at (n, d) float32.

    A compressor whose warm-up round takes long gets fewer timed rounds (about ``budget_s`` each).
    """
    X = torch.randn(n, d, dtype=torch.float32, device=device, generator=torch.Generator(device).manual_seed(0))
    rows = []
    for name in names:
        try:
            C = cp.compressors.make(name)
            fns = {
                "clone": lambda r: X.clone(),
                "apply": lambda r: C.apply(X, r),
                "wire": lambda r: C.decode(C.encode(X, r), r, d, dtype=X.dtype, device=X.device),
            }
            warm = sum(timed(lambda f=f: f(0), device) for f in fns.values())
            reps = max(1, min(repeat, int(budget_s / max(warm, 1e-9))))
            t = alternate(fns, device, reps, warmup=0)
        except Exception as err:  # report and go on (OOM included)
            rows.append([name, f"skipped: {type(err).__name__}: {str(err)[:70]}"])
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
            continue
        ratio = median_ratio(t["apply"], t["clone"])
        goal = f"<= {GOAL_CLONE:g}x {verdict(ratio <= GOAL_CLONE)}" if name in GOAL_NAMES else ""
        ms = lambda k: f"{statistics.median(t[k]) * 1e3:.2f}"  # noqa: E731
        rows.append([name, ms("clone"), ms("apply"), f"{ratio:.2f}x", ms("wire"),
                     f"{median_ratio(t['wire'], t['clone']):.2f}x", reps, goal])
    del X
    return rows


# ---------------------------------------------------------------- 4. rounds per second

def marina_cq(n: int, d: int, device: str | None = None):
    problem = cp.problems.make("quadratic", n_clients=n, dim=d, seed=0, dtype="float32", device=device)
    cq = cp.compressors.make("cq")
    p = cq.theory(n, d).bits / (32 * d)  # mostly CQ rounds, as in benchmarks/simulator.py
    return cp.algorithms.make("marina", problem, compressor=cq, p=p, seed=0)


def simulator_rounds_per_s(n: int, d: int, rounds: int, device: str | None = None) -> float:
    alg = marina_cq(n, d, device)
    state = alg.step(alg.init())  # warm-up
    dev = device or "cpu"
    synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(rounds):
        state = alg.step(state)
    synchronize(dev)
    return rounds / (time.perf_counter() - t0)


# ---------------------------------------------------------------- main

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="device to check against the CPU (default: cuda)")
    parser.add_argument("--quick", action="store_true", help="small sizes: (16, 2^16) and (50, 10^4)")
    parser.add_argument("--names", default=None, help="comma-separated compressor names (default: all)")
    parser.add_argument("--repeat", type=int, default=None, help="timed rounds (default 5, --quick 3)")
    args = parser.parse_args(argv)
    device = args.device
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    names = args.names.split(",") if args.names else cp.compressors.names()
    repeat = args.repeat or (3 if args.quick else 5)
    speed_nd = (16, 2**16) if args.quick else (16, 2**24)
    rounds_nd = (50, 10**4) if args.quick else (1000, 10**6)
    start = time.perf_counter()
    desc = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, device {device} ({desc}), {torch.get_num_threads()} CPU threads"
          f"{', quick' if args.quick else ''}", flush=True)

    print(f"\n[1] payload bytes and apply, {device} vs cpu (dyadic (6, 100) float64 input, seed 3)")
    rows = compare_payloads(device, names)
    print(format_table(["compressor", "bytes", "payloads", "apply"], rows))
    bad = [r[0] for r in rows if r[2] != "equal" or r[3] != "equal"]
    print(f"payloads: {len(rows) - len(bad)}/{len(rows)} equal" + (f"; not equal: {', '.join(bad)}" if bad else ""),
          flush=True)

    print(f"\n[2] iterates, {device} vs cpu (cp.simulate(..., device=), quadratic n=10 d=50 float64, 20 rounds, "
          f"seed 0; equal: max |dx| <= {ITERATE_RTOL:g} max |x| and the same bits)")
    if torch.device(device).type == "cpu":
        print("(device is cpu: two CPU runs compared, a check of the script itself)")
    rows = compare_iterates(device)
    print(format_table(["algorithm", "compressor", "max |dx|", "relative", "x on", "iterates"], rows))
    same = sum(r[-1] == "equal" for r in rows)
    print(f"iterates: {same}/{len(rows)} equal", flush=True)

    n, d = speed_nd
    print(f"\n[3] speed on {device} at (n, d) = ({n}, {d}) float32, against X.clone() on {device} "
          f"(synchronised timing, 1 warm-up, median of up to {repeat} alternating rounds)")
    rows = speed_rows(device, names, n, d, repeat)
    print(format_table(["compressor", "clone ms", "apply ms", "apply/clone", "enc+dec ms", "(enc+dec)/clone",
                        "rounds", "goal (apply/clone)"], rows))
    goal_rows = [r for r in rows if r[0] in GOAL_NAMES and len(r) > 2]
    met = sum(r[-1].endswith(" MET") and "NOT" not in r[-1] for r in goal_rows)
    print(f"apply <= {GOAL_CLONE:g}x X.clone(): {met}/{len(GOAL_NAMES)} MET "
          f"({', '.join(GOAL_NAMES)})", flush=True)

    n, d = rounds_nd
    print(f"\n[4] MARINA + CQ rounds per second at (n, d) = ({n}, {d}) float32, problem and state on the "
          f"device (goal >= {GOAL_ROUNDS:g} on {device})")
    on_cpu = torch.device(device).type == "cpu"
    if not on_cpu:  # the device first: its number is the one the script is for
        try:
            dev_sim = simulator_rounds_per_s(n, d, 10, device)
            print(f"{device} simulator (MARINA + CQ, 10 rounds after 1 warm-up): {dev_sim:.3g} rounds/s; "
                  f"goal >= {GOAL_ROUNDS:g}: {verdict(dev_sim >= GOAL_ROUNDS)}", flush=True)
        except Exception as err:  # e.g. out of memory: report and go on
            dev_sim = None
            print(f"{device} simulator: failed: {type(err).__name__}: {str(err)[:90]}", flush=True)
        torch.cuda.empty_cache()
    cpu_rounds = 2 if not args.quick else 5
    cpu_sim = simulator_rounds_per_s(n, d, cpu_rounds)
    print(f"cpu simulator (MARINA + CQ, {cpu_rounds} rounds after 1 warm-up, {torch.get_num_threads()} threads): "
          f"{cpu_sim:.3g} rounds/s", flush=True)
    if on_cpu:
        print(f"device is cpu: simulator {cpu_sim:.3g} rounds/s, goal >= {GOAL_ROUNDS:g}: "
              f"{verdict(cpu_sim >= GOAL_ROUNDS)}")
    elif dev_sim is not None:
        print(f"{device} / cpu: {dev_sim / cpu_sim:.1f}x")
    print(f"\nbenchmarks/gpu.py: done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
