"""MicroAdam step time against torch.optim.AdamW, measured in the same run on the same device.

A stack of ``--layers`` square linear layers of width ``--width`` (weights and biases), random gradients
(fixed; the step time does not depend on them); per optimizer a warm-up, then ``--repeat`` rounds in
which the two optimizers alternate, ``--steps`` steps each, synchronised around each timing. Prints the
median step time of each, their ratio, and the optimizer-state bytes of both (MicroAdam's tensors held,
AdamW's float32 moments), plus, on CUDA, the peak memory of a step beyond the parameters and gradients.

    python benchmarks/microadam.py [--device cuda] [--width 4096] [--layers 8] [--quick]

The paper's claim ("similar running time") is about the authors' fused CUDA kernels; this measures the
pure-PyTorch optimizer of ``commpress.optim``. ``--device cpu --quick`` is a smoke test of the script.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from commpress.optim import MicroAdam, adam_state_bytes


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_params(width: int, layers: int, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    params = []
    for _ in range(layers):
        for shape in ((width, width), (width,)):
            p = torch.nn.Parameter((torch.randn(shape, generator=gen) * 0.02).to(device=device, dtype=dtype))
            p.grad = (torch.randn(shape, generator=gen) * 1e-3).to(device=device, dtype=dtype)
            params.append(p)
    return params


def time_steps(opt: torch.optim.Optimizer, steps: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--quick", action="store_true", help="width 128, 2 layers, 2 steps, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.layers, args.steps, args.repeat = 128, 2, 2, 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks/microadam.py: no CUDA device (torch.cuda.is_available() is False); nothing to measure")
        return 0
    dtype = getattr(torch, args.dtype)
    params = make_params(args.width, args.layers, device, dtype)
    numel = sum(p.numel() for p in params)
    adamw = torch.optim.AdamW(params, lr=1e-5)
    micro = MicroAdam(params, lr=1e-5)
    for opt in (adamw, micro):  # warm-up: state allocation, kernels
        time_steps(opt, 2, device)
    peak = {}
    if device.type == "cuda":
        for name, opt in (("AdamW", adamw), ("MicroAdam", micro)):
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            opt.step()
            synchronize(device)
            peak[name] = torch.cuda.max_memory_allocated(device) - base
    times = {"AdamW": [], "MicroAdam": []}
    for _ in range(args.repeat):
        times["AdamW"].append(time_steps(adamw, args.steps, device))
        times["MicroAdam"].append(time_steps(micro, args.steps, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; {args.layers} layers of {args.width}x{args.width} ({numel:,} parameters, {args.dtype}); "
          f"{args.repeat} rounds x {args.steps} steps, alternating")
    for k, v in med.items():
        print(f"  {k:>9}: median step {1e3 * v:9.3f} ms  (rounds: {', '.join(f'{1e3 * x:.3f}' for x in times[k])})")
    print(f"  step time ratio MicroAdam / AdamW = {med['MicroAdam'] / med['AdamW']:.2f}")
    rep = micro.memory_report()
    held = sum(v.numel() * v.element_size() for s in adamw.state.values() for key, v in s.items()
               if key in ("exp_avg", "exp_avg_sq"))
    print(f"  state bytes: MicroAdam {rep.state_bytes:,} ({rep.state_bytes / numel:.3f} per parameter), "
          f"AdamW {held:,} ({held / numel:.3f} per parameter; float32 moments: {adam_state_bytes(params):,})")
    for k, v in peak.items():
        print(f"  peak extra memory of one {k} step: {v / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
