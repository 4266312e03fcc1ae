"""Start k gloo processes on this machine, watch them, collect rank 0's outcome or the errors.

The launcher plays torchrun's agent: it hosts the rendezvous TCPStore (an ephemeral port on
``master_addr``, 127.0.0.1 unless told otherwise, so nothing listens beyond this machine; on a
loopback address gloo is kept on the loopback interface too), starts ranks ``0 .. k-1`` with
torchrun's environment variables and watches them. When a rank fails, the others stop by
themselves within the timeout (their collectives fail and the watchdog names the culprit);
a rank still running ``timeout + grace`` seconds after the first failure is killed. The error
raised here lists what every rank reported.

Start methods: ``"spawn"`` (default) starts fresh interpreters
(``python -m commpress.distributed worker JOBS.json``), safe anywhere; ``"fork"`` forks this
process (Linux; about 0.1 s instead of seconds of imports per rank; the children fork before the
store exists, so they inherit no store thread).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from commpress import errors
from commpress.distributed._job import Job
from commpress.distributed._session import DEFAULT_TIMEOUT, check_timeout
from commpress.distributed._worker import RESULT, error_file, run_from_dict
from commpress.errors import CommpressError, ConfigError, DistributedError

#: How worker processes start: ``"spawn"`` (fresh interpreters) or ``"fork"`` (Linux, fast).
START_METHODS = ("spawn", "fork")
_POLL = 0.05


def check_processes(processes: Any) -> int:
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ConfigError(f"processes must be an integer >= 1; got processes={processes!r}.")
    return processes


def _loopback_interface() -> str | None:
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    return next((n for n in names if n == "lo" or n.startswith("lo")), None)


def rank_env(rank: int, world: int, master_addr: str, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """torchrun's variables for ``rank``, plus the launcher's."""
    env = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world),
           "MASTER_ADDR": master_addr, "MASTER_PORT": str(port), "COMMPRESS_STORE_HOSTED": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if master_addr in ("127.0.0.1", "localhost", "::1") and "GLOO_SOCKET_IFNAME" not in os.environ:
        lo = _loopback_interface()
        if lo:
            env["GLOO_SOCKET_IFNAME"] = lo
    env.update(extra or {})
    return env


class _Child:
    """One rank: a subprocess (spawn) or a forked multiprocessing.Process."""

    def __init__(self, rank: int, popen: subprocess.Popen | None = None, process: Any = None, conn: Any = None) -> None:
        self.rank, self.popen, self.process, self.conn = rank, popen, process, conn
        self.killed = False

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen is not None else self.process.pid

    def poll(self) -> int | None:
        if self.popen is not None:
            return self.popen.poll()
        return None if self.process.is_alive() else self.process.exitcode

    def kill(self) -> None:
        self.killed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _forked(conn: Any, env: dict[str, str], argv: list[str]) -> None:
    os.environ.update(env)
    os.environ["MASTER_PORT"] = str(conn.recv())
    conn.close()
    if argv[0] == "worker":
        from commpress.distributed._worker import entry

        entry(argv[1])
    # the fork twin of `python -m commpress <argv>`: run the command line's __main__
    sys.argv = ["commpress", *argv]
    code: Any = 0
    try:
        runpy.run_module("commpress", run_name="__main__")
    except SystemExit as stop:
        code = stop.code
    except BaseException:  # noqa: BLE001 - reported like an uncaught error of the command
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def start(argv: list[str], processes: int, *, master_addr: str, timeout: float, start_method: str,
          env: dict[str, str] | None = None) -> tuple[list[_Child], Any]:
    """Start the ranks running ``python -m <argv>`` (``argv[0] == "worker"``: the job worker, else
    the ``commpress`` command line); returns the children and the store (keep it alive)."""
    if start_method not in START_METHODS:
        raise ConfigError(f"start_method must be one of {list(START_METHODS)}; got {start_method!r}.")
    delta = timedelta(seconds=timeout)
    children: list[_Child] = []
    if start_method == "fork":
        ctx = multiprocessing.get_context("fork")
        for rank in range(processes):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_forked, args=(child_end, rank_env(rank, processes, master_addr, 0, env), argv),
                               name=f"commpress-rank{rank}", daemon=False)
            proc.start()
            child_end.close()
            children.append(_Child(rank, process=proc, conn=parent_end))
    try:
        store = dist.TCPStore(master_addr, 0, None, True, delta, wait_for_workers=False)
    except Exception as err:
        for c in children:
            c.kill()
        raise DistributedError(f"cannot host the rendezvous store on {master_addr}: {err}. Check --master-addr.") from err
    if start_method == "fork":
        for c in children:
            c.conn.send(store.port)
            c.conn.close()
        return children, store
    module = ["-m", "commpress.distributed"] if argv[0] == "worker" else ["-m", "commpress"]
    for rank in range(processes):
        full_env = {**os.environ, **rank_env(rank, processes, master_addr, store.port, env)}
        popen = subprocess.Popen([sys.executable, *module, *argv], env=full_env)
        children.append(_Child(rank, popen=popen))
    return children, store


def supervise(children: list[_Child], timeout: float, grace: float | None = None) -> list[int]:
    """Wait for every rank; kill those still running ``timeout + grace`` s after the first failure."""
    grace = max(5.0, 0.5 * timeout) if grace is None else grace
    first_failure = None
    try:
        while True:
            codes = [c.poll() for c in children]
            if all(code is not None for code in codes):
                return codes  # type: ignore[return-value]
            if first_failure is None and any(code not in (None, 0) for code in codes):
                first_failure = time.monotonic()
            if first_failure is not None and time.monotonic() - first_failure > timeout + grace:
                for c, code in zip(children, codes):
                    if code is None:
                        c.kill()
            time.sleep(_POLL)
    except BaseException:
        for c in children:
            if c.poll() is None:
                c.kill()
        raise


def failure(folder: Path, children: list[_Child], codes: list[int], timeout: float) -> CommpressError:
    """One error listing every rank's fate; its type is the root cause's when a rank reported one."""
    lines, root = [], None
    for c, code in zip(children, codes):
        path = error_file(folder, c.rank)
        if path.exists():
            report = json.loads(path.read_text())
            lines.append(f"rank {c.rank}: {report['type']}: {report['message']}")
            cls = getattr(errors, report["type"], None)
            if isinstance(cls, type) and issubclass(cls, CommpressError) and cls is not DistributedError and root is None:
                root = cls
        elif c.killed:
            lines.append(f"rank {c.rank}: still running {timeout:g} s (+ grace) after the first failure: killed by the launcher")
        elif code != 0:
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            lines.append(f"rank {c.rank}: died without a report ({how})")
    cls = root or DistributedError
    return cls(f"the distributed run on {len(children)} processes failed:\n  " + "\n  ".join(lines))


def launch(jobs: list[Job], *, processes: int, master_addr: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT,
           start_method: str = "spawn", env: dict[str, str] | None = None, grace: float | None = None) -> list:
    """Run ``jobs`` one after the other on ``processes`` gloo ranks of this machine.

    Returns one :class:`~commpress.distributed.DistributedRun` per job (rank 0's history, the
    merged ledger). Raises the root cause's error (``ConfigError``, ``PayloadError`` ...) or a
    :class:`~commpress.errors.DistributedError`, with every rank's report in the message.
    ``env`` adds environment variables to the ranks (e.g. the fault hooks of the tests).
    """
    processes = check_processes(processes)
    timeout = check_timeout(timeout)
    jobs = [j if isinstance(j, Job) else Job(**j) for j in jobs]
    folder = Path(tempfile.mkdtemp(prefix="commpress-dist-"))
    try:
        job_file = folder / "jobs.json"
        job_file.write_text(json.dumps({"jobs": [j.to_dict() for j in jobs], "timeout": timeout}))
        children, store = start(["worker", str(job_file)], processes, master_addr=master_addr, timeout=timeout,
                                start_method=start_method, env=env)
        codes = supervise(children, timeout, grace)
        del store
        if any(codes):
            raise failure(folder, children, codes, timeout)
        return [run_from_dict(d) for d in torch.load(folder / RESULT, weights_only=True)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def launch_command(argv: list[str], *, processes: int, master_addr: str = "127.0.0.1",
                   timeout: float = DEFAULT_TIMEOUT, start_method: str = "spawn", env: dict[str, str] | None = None) -> int:
    """Run ``commpress <argv>`` on ``processes`` ranks (as torchrun would); returns the exit code.

    The ranks print their own output and errors; when one fails, a line per failed rank is
    printed here and the first non-zero exit code is returned.
    """
    processes = check_processes(processes)
    timeout = check_timeout(timeout)
    children, store = start(list(argv), processes, master_addr=master_addr, timeout=timeout,
                            start_method=start_method, env=env)
    codes = supervise(children, timeout)
    del store
    for c, code in zip(children, codes):
        if code:
            how = "killed by the launcher (it hung)" if c.killed else (
                f"signal {-code}" if code < 0 else f"exit code {code}")
            print(f"commpress: rank {c.rank} of {processes} failed ({how})", file=sys.stderr)
    # a rank that crashed (not a reported error: 1, 2) is the root cause; the others followed it
    crashed = [code for code in codes if code not in (0, 1, 2)]
    code = crashed[0] if crashed else next((code for code in codes if code), 0)
    return code if code >= 0 else 128 - code  # killed by signal s: 128 + s, as shells report it
