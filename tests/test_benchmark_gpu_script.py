"""benchmarks/gpu.py runs here: one line and exit 0 without a GPU; the whole script on the CPU with --quick."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_without_cuda_prints_one_line_and_exits_0():
    if torch.cuda.is_available():  # on a GPU machine the default run is the real benchmark: check the CPU path only
        return
    out = _run()
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "benchmarks/gpu.py: no CUDA device (torch.cuda.is_available() is False); nothing to measure"]


def test_quick_cpu_smoke_run():
    out = _run("--device", "cpu", "--quick", "--names", "cq,iq,qsgd,sign,permk,randk,natural,topk,sketch")
    assert out.returncode == 0, out.stderr
    for section in ("[1] payload", "[2] iterates", "[3] speed", "[4] MARINA + CQ", "benchmarks/gpu.py: done"):
        assert section in out.stdout
    assert "payloads: 9/9 equal" in out.stdout
    assert "iterates: 3/3 equal" in out.stdout  # cp.simulate(..., device=) on the script's device
    assert "DIFFER" not in out.stdout and "PROXY" not in out.stdout and "skipped" not in out.stdout.split("[3]")[0]
