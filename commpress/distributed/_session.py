"""This process's membership of a distributed run: rendezvous, process group, watchdog.

The rendezvous follows torchrun's environment: ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``. The TCPStore at ``MASTER_ADDR:MASTER_PORT`` is hosted by torchrun's agent
(``TORCHELASTIC_USE_AGENT_STORE=True``), by commpress's launcher (``COMMPRESS_STORE_HOSTED=1``),
or else by rank 0. The gloo process group is built on that store with the run's timeout, and
the :class:`~commpress.network._watchdog.Watchdog` of this rank keeps its heartbeat there.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch.distributed as dist

from commpress.errors import ConfigError, DistributedError
from commpress.network._watchdog import Watchdog, first_line, store_client

#: Default timeout of a collective (and of the rendezvous), seconds.
DEFAULT_TIMEOUT = 300.0


def check_timeout(timeout: Any) -> float:
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise ConfigError(f"timeout must be a number of seconds > 0; got timeout={timeout!r}.") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"timeout must be a finite number of seconds > 0; got timeout={timeout!r}.")
    return value


def _env_int(name: str) -> int:
    raw = os.environ.get(name)
    if raw is None:
        raise DistributedError(
            f"the environment variable {name} is not set: `--backend dist` runs under torchrun "
            "(torchrun --nproc_per_node=K -m commpress run CONFIG --backend dist), or use --processes K "
            "to launch K processes on this machine."
        )
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"the environment variable {name} must be an integer; got {raw!r}.") from None


class Session:
    """Rank, world size, process group and watchdog of this process.

    Args:
        rank, world_size: this process's rank and the number of processes.
        master_addr, master_port: the rendezvous TCPStore.
        timeout: seconds before a collective (or the rendezvous) is declared failed.
        host_store: this process hosts the TCPStore (rank 0 when nobody else does).
    """

    def __init__(self, rank: int, world_size: int, master_addr: str, master_port: int, timeout: float,
                 *, host_store: bool = False) -> None:
        self.rank, self.world_size = int(rank), int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise DistributedError(f"rank {rank} is not in [0, {world_size}); check RANK and WORLD_SIZE.")
        self.timeout = check_timeout(timeout)
        self.address = f"{master_addr}:{master_port}"
        if dist.is_initialized():
            raise DistributedError(
                "torch.distributed is already initialised in this process; a commpress distributed run "
                "builds its own process group (call torch.distributed.destroy_process_group() first)."
            )
        delta = timedelta(seconds=self.timeout)
        try:
            self._store = dist.TCPStore(master_addr, int(master_port), None, host_store, delta, wait_for_workers=False)
            self.watchdog = Watchdog(lambda: dist.PrefixStore("commpress/", store_client(master_addr, master_port,
                                                                                             self.timeout)),
                                     self.rank, self.world_size, self.timeout, prefix="")
        except Exception as err:
            raise DistributedError(
                f"rank {self.rank}: cannot reach the rendezvous store at {self.address} within {self.timeout:g} s: "
                f"{first_line(err)}. Check MASTER_ADDR/MASTER_PORT (and that rank 0 or the launcher is running)."
            ) from err
        try:
            dist.init_process_group("gloo", store=dist.PrefixStore("commpress/pg/", self._store), rank=self.rank,
                                    world_size=self.world_size, timeout=delta)
        except Exception as err:
            joined = self._joined()
            missing = [r for r in range(self.world_size) if r not in joined]
            self.watchdog.stop("failed")
            raise DistributedError(
                f"rank {self.rank}: the {self.world_size} processes did not all join the process group at "
                f"{self.address} within {self.timeout:g} s (rank(s) {missing or 'unknown'} missing): {first_line(err)}"
            ) from err

    def _joined(self) -> list[int]:
        try:
            return [r for r in range(self.world_size) if self.watchdog._store.check([f"hb/{r}"])]
        except Exception:
            return []

    @classmethod
    def from_env(cls, timeout: float = DEFAULT_TIMEOUT) -> "Session":
        """Join the run described by torchrun's environment variables."""
        rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
        addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
        port = _env_int("MASTER_PORT")
        hosted = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" or os.environ.get("COMMPRESS_STORE_HOSTED") == "1"
        return cls(rank, world, addr, port, timeout, host_store=rank == 0 and not hosted)

    def gather(self, values: Any, what: str) -> Any:
        """All-gather of one small vector per rank (watched): ``(world, len)``."""
        from commpress.network._collectives import gather_vectors

        return self.watchdog.call(what, lambda: gather_vectors(values, None, self.world_size))

    def fail(self, message: str) -> None:
        """Leave this rank's error for the others and stop its heartbeat."""
        self.watchdog.publish_error(message)
        self.watchdog.stop("failed")

    def close(self) -> None:
        """Leave the run cleanly (after every rank has finished its collectives)."""
        self.watchdog.stop("done")
        if dist.is_initialized():
            dist.destroy_process_group()
