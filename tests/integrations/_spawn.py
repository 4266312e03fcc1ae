"""Spawning gloo ranks for the DDP tests: each rank logs to a file, and a rank that dies fails the
test with every rank's last log lines (its stderr, C++ messages included, and faulthandler's
tracebacks of every thread) instead of a bare signal name."""

from __future__ import annotations

import faulthandler
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException


def log_to(out_dir: str, rank: int) -> Any:
    """In a rank: send fd 2 and faulthandler's output to ``out_dir/rank{rank}.log``."""
    log = open(os.path.join(out_dir, f"rank{rank}.log"), "w", buffering=1)  # noqa: SIM115 - the process's life
    os.dup2(log.fileno(), 2)
    faulthandler.enable(log, all_threads=True)
    return log


def exit_now(log: Any) -> None:
    """In a rank whose results are saved and whose process group is destroyed: end the process
    without the interpreter's finalisation. PyTorch frees what is left of gloo and its Python
    objects there, on gloo's own threads, in an order in which a process can abort; that is not
    what these tests test (their results are already on disk)."""
    log.flush()
    os._exit(0)


def spawn(target: Callable[..., None], tmp: Path, *args: Any, nprocs: int) -> None:
    """``mp.spawn(target, args=(*args, tmp/"store", tmp))`` over ``nprocs`` ranks."""
    try:
        mp.spawn(target, args=(*args, str(tmp / "store"), str(tmp)), nprocs=nprocs, join=True)
        return
    except ProcessException as err:
        failure = f"{getattr(target, '__name__', target)}{list(args)}: {err}"
    for r in range(nprocs):
        path = tmp / f"rank{r}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else ["(no log)"]
        failure += f"\n--- rank {r}, last lines of its log ---\n" + "\n".join(lines[-40:])
    pytest.fail(failure, pytrace=False)
