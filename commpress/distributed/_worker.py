"""The entry point of one rank started by the launcher: run the jobs, report, exit.

``python -m commpress.distributed worker JOBS.json`` with torchrun's environment (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``). ``JOBS.json`` holds ``{"jobs": [...],
"timeout": seconds}``; rank 0 writes the outcomes to ``result.pt`` next to it (tensors and plain
values only, loaded with ``weights_only=True``), and a rank that fails writes
``error-rank<r>.json`` (its error's type and message) and leaves its message in the store for the
other ranks' diagnosis.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import torch

from commpress._malloc import keep_freed_memory

RESULT = "result.pt"


def error_file(folder: Path, rank: int) -> Path:
    return folder / f"error-rank{rank}.json"


def plain(v: Any) -> Any:
    """Tensors, numbers, strings, lists and dicts only (what ``torch.load(weights_only=True)`` reads)."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str, torch.Tensor)):
        return v
    return repr(v)


def run_to_dict(run: Any) -> dict[str, Any]:
    hist = {f.name: plain(getattr(run.history, f.name)) for f in dataclasses.fields(run.history)}
    return {"history": hist, "ledger": run.ledger.state_dict(), "world_size": run.world_size,
            "resumed_from": run.resumed_from, "wire": run.wire}


def run_from_dict(data: dict[str, Any]):
    from commpress.distributed._driver import DistributedRun
    from commpress.network import Ledger
    from commpress.simulate import History

    ledger = Ledger(int(data["ledger"]["n"]), keep_rounds=bool(data["ledger"]["keep_rounds"]))
    ledger.load_state_dict(data["ledger"])
    return DistributedRun(History(**data["history"]), ledger, int(data["world_size"]), data["resumed_from"],
                          data.get("wire"))


def main(job_file: str) -> int:
    """Run the jobs of ``job_file`` as the rank given by the environment; returns the exit code."""
    torch.set_num_threads(1)
    keep_freed_memory()  # reuse large buffers across rounds instead of page-faulting them anew
    folder = Path(job_file).parent
    rank = int(os.environ.get("RANK", "-1"))
    session = None
    try:
        from commpress.distributed._driver import execute
        from commpress.distributed._job import Job
        from commpress.distributed._session import Session

        spec = json.loads(Path(job_file).read_text())
        session = Session.from_env(spec["timeout"])
        runs = [execute(Job.from_dict(job), session) for job in spec["jobs"]]
        if session.rank == 0:
            tmp = folder / f".{RESULT}.tmp"
            torch.save([run_to_dict(r) for r in runs], tmp)
            os.replace(tmp, folder / RESULT)
        session.close()
        return 0
    except BaseException as err:  # noqa: BLE001 - every failure is reported, then the process ends
        report = {"type": type(err).__name__, "message": str(err), "traceback": traceback.format_exc()}
        try:
            error_file(folder, rank).write_text(json.dumps(report))
        except OSError:
            pass
        if session is not None:
            session.fail(f"{type(err).__name__}: {err}")
        return 130 if isinstance(err, KeyboardInterrupt) else 1


def entry(job_file: str) -> None:
    """Run :func:`main` and leave at once (no interpreter teardown that could wait on gloo threads)."""
    code = main(job_file)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
