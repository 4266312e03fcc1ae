"""Who failed? Heartbeats and progress counters of the ranks, read when a collective breaks.

torch.distributed tells a rank that a collective failed ("Connection closed by peer", or a
timeout) but not which peer is to blame. The watchdog keeps that information in the
rendezvous store (a ``torch.distributed.Store``, e.g. the TCPStore of the run):

- a daemon thread of every rank writes ``hb/<rank>`` every ``interval`` seconds:
  wall time, pid, host, the number of collectives the rank has entered, its round and state;
- a rank that fails writes ``err/<rank>`` with its error message before it exits.

When a collective raises on some rank, :meth:`Watchdog.diagnose` reads these keys and names
the culprits: a rank that left an error message, a rank whose process is gone (same host: the
pid is checked), a rank whose heartbeat stopped (a dead or frozen process on another host), or a
rank that is alive but has not reached this collective (it hangs). The result is a
:class:`~commpress.errors.DistributedError` whose message names the rank(s).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any, Callable

from commpress.errors import CommpressError, DistributedError


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def _pid_state(pid: int) -> str:
    """'alive', 'gone' or 'zombie' (exited, not yet reaped) for a process of this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "alive"
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return "zombie" if state in ("Z", "X") else "alive"
    except (OSError, IndexError):
        return "alive"


def pid_alive(pid: int) -> bool:
    """A process of this host with this pid is running (not gone, not a zombie)."""
    return _pid_state(pid) == "alive"


class Watchdog:
    """Heartbeat and progress of this rank; diagnosis of failed collectives.

    Args:
        store_factory: builds a new client of the rendezvous store (one for the heartbeat
            thread, one for this thread); keys are written under ``prefix``.
        rank, world: this rank and the number of ranks.
        timeout: the collective timeout in seconds (the heartbeat interval is a tenth of it,
            between 0.05 s and 1 s).
    """

    def __init__(self, store_factory: Callable[[], Any], rank: int, world: int, timeout: float,
                 *, prefix: str = "commpress/") -> None:
        self.rank, self.world, self.timeout = int(rank), int(world), float(timeout)
        self.interval = min(1.0, max(0.05, self.timeout / 10))
        self.prefix = prefix
        self.ops = 0            # collectives entered so far
        self.round: Any = None  # the round being computed (for messages)
        self.state = "running"
        self._host = socket.gethostname()
        self._factory = store_factory
        self._store = store_factory()
        self._stop = threading.Event()
        self._beat(self._store)
        self._thread = threading.Thread(target=self._loop, name=f"commpress-heartbeat-{rank}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ heartbeat
    def _key(self, kind: str, rank: int) -> str:
        return f"{self.prefix}{kind}/{rank}"

    def _beat(self, store: Any) -> None:
        store.set(self._key("hb", self.rank),
                  f"{time.time():.3f} {os.getpid()} {self._host} {self.ops} {self.round} {self.state}")

    def _loop(self) -> None:
        try:
            store = self._factory()
        except Exception:  # the store is gone: the others will notice our silence
            return
        while not self._stop.wait(self.interval):
            try:
                self._beat(store)
            except Exception:
                return

    def stop(self, state: str = "done") -> None:
        """Stop beating; the last heartbeat says ``state`` (``"done"`` or ``"failed"``)."""
        self.state = state
        self._stop.set()
        self._thread.join(timeout=2 * self.interval + 1)
        try:
            self._beat(self._store)
        except Exception:
            pass

    def publish_error(self, message: str) -> None:
        """Leave this rank's error for the others' diagnosis (best effort)."""
        try:
            self._store.set(self._key("err", self.rank), message[:2000])
        except Exception:
            pass

    # ------------------------------------------------------------------ collectives
    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one collective; a torch.distributed failure becomes a :class:`DistributedError`
        that names the rank(s) to blame."""
        self.ops += 1
        start = time.monotonic()
        try:
            return fn()
        except CommpressError:
            raise
        except Exception as err:  # gloo raises RuntimeError / DistBackendError / DistNetworkError
            raise self.diagnose(what, err, time.monotonic() - start) from err

    # ------------------------------------------------------------------ diagnosis
    def _read(self) -> dict[int, list[str]]:
        beats = {}
        for r in range(self.world):
            key = self._key("hb", r)
            if r != self.rank and self._store.check([key]):
                beats[r] = self._store.get(key).decode().split()
        return beats

    def _errors(self) -> dict[int, str]:
        out = {}
        for r in range(self.world):
            key = self._key("err", r)
            if r != self.rank and self._store.check([key]):
                out[r] = self._store.get(key).decode()
        return out

    def culprits(self, settle: bool = True) -> list[str]:
        """Sentences naming the ranks that failed, died, froze or lag behind this one."""
        first = self._read()
        errors = self._errors()
        found: dict[int, str] = {}
        for r in range(self.world):
            if r == self.rank:
                continue
            if r in errors:
                found[r] = f"rank {r} failed: {errors[r]}"
                continue
            beat = first.get(r)
            if beat is None:
                found[r] = f"rank {r} never joined (no heartbeat)"
                continue
            _, pid, host, ops, rnd, state = beat[:6]
            seen = "its last heartbeat came before round 0" if rnd == "None" else f"its last heartbeat was in round {rnd}"
            if state == "done":
                found[r] = f"rank {r} had already finished (it ran fewer collectives: {ops} against {self.ops})"
            elif host == self._host and _pid_state(int(pid)) != "alive":
                found[r] = f"rank {r} died (its process {pid} is gone; {seen})"
        if found or not settle:
            return [found[r] for r in sorted(found)]
        time.sleep(2.5 * self.interval)  # a heartbeat that does not move is a dead or frozen rank
        second = self._read()
        for r, beat in first.items():
            now = second.get(r, beat)
            _, pid, host, ops, rnd, state = now[:6]
            if now[0] == beat[0]:
                found[r] = (f"rank {r} stopped responding (no heartbeat for {2.5 * self.interval:.1f} s; process "
                            f"{pid} on {host}, last heard of in round {rnd})")
            elif int(ops) < self.ops:
                found[r] = (f"rank {r} hangs: it is alive but never reached this collective (it is in round {rnd}, "
                            f"after {ops} collectives; this rank is at collective {self.ops})")
        return [found[r] for r in sorted(found)]

    def diagnose(self, what: str, err: BaseException, elapsed: float) -> DistributedError:
        """The :class:`DistributedError` for a collective ``what`` that raised ``err``."""
        where = f"rank {self.rank}: {what}" + (f" in round {self.round}" if self.round is not None else "")
        try:
            names = self.culprits()
        except Exception as store_err:
            names = [f"the rendezvous store is unreachable ({first_line(store_err)}): rank 0 or the launcher "
                     "that hosts it has died"]
        blame = "; ".join(names) if names else "no peer is known to have failed (a network problem between the ranks?)"
        return DistributedError(
            f"{where} failed after {elapsed:.1f} s (timeout {self.timeout:g} s): {blame}. "
            f"[torch.distributed: {first_line(err)}]"
        )


def store_client(host: str, port: int, timeout: float) -> Any:
    """A new client of the TCPStore at ``host:port``."""
    import torch.distributed as dist

    return dist.TCPStore(host, int(port), None, False, timedelta(seconds=timeout), wait_for_workers=False)
