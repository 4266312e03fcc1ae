"""Checkpoints of a distributed run: one file per rank, a ``LATEST`` marker written by rank 0.

Layout of ``checkpoint_dir``::

    rank<r>-round<t>.pt   rank r's state after round t (torch.save, loaded with weights_only=True):
                          the algorithm state (its clients' rows), its ledger, the global bit
                          totals, x, the run's status, its wall time; rank 0 also the recorded curve
    LATEST                {"round": t, "fingerprint": ..., "world_size": k, "n": n} (JSON)

Saving is a collective: every rank writes its file (to a temporary name, then ``os.replace``),
all ranks meet, then rank 0 points ``LATEST`` at the new round and every rank deletes its files
older than the previous checkpoint (so the round ``LATEST`` names always exists, even if a rank
dies in between). Nothing random is saved: every draw is keyed by the seed and the round.
The folder must be visible to every rank under the same path (one machine, or a shared file
system).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from commpress.errors import ConfigError, DistributedError

LATEST = "LATEST"


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Checkpoints:
    """The checkpoints of one run on this rank (see the module docstring).

    Args:
        directory: the run's checkpoint folder (created).
        fingerprint: :meth:`Job.fingerprint`: a checkpoint of another run is refused.
        network: the run's :class:`~commpress.network.dist.TorchDistNetwork` (rank, world, collectives).
    """

    def __init__(self, directory: str | Path, fingerprint: str, network: Any) -> None:
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        self.net = network
        self.rank, self.world = network.rank, network.world
        self.dir.mkdir(parents=True, exist_ok=True)
        self.saved: list[int] = []

    def _file(self, rank: int, round: int) -> Path:
        return self.dir / f"rank{rank}-round{round:09d}.pt"

    # ------------------------------------------------------------------ resume
    def _latest(self) -> tuple[int, str]:
        """(round or -1, problem) read by this rank; problem is '' when the marker is usable."""
        path = self.dir / LATEST
        if not path.exists():
            return -1, ""
        try:
            meta = json.loads(path.read_text())
            round_ = int(meta["round"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            return -1, f"{path} is unreadable ({err}); delete the folder to start afresh"
        if meta.get("fingerprint") != self.fingerprint:
            return -1, (f"{self.dir} holds the checkpoints of another run (fingerprint {meta.get('fingerprint')}, "
                        f"this run {self.fingerprint}); delete it or choose another checkpoint folder")
        if int(meta.get("world_size", -1)) != self.world or int(meta.get("n", -1)) != self.net.n:
            return -1, (f"{self.dir} was written by {meta.get('world_size')} processes with n={meta.get('n')}; this run "
                        f"has {self.world} processes and n={self.net.n}. Resume with the same number of processes")
        return round_, ""

    def resume(self) -> dict[str, Any] | None:
        """This rank's latest checkpoint, or None to start afresh (a collective: all ranks agree)."""
        round_, problem = self._latest() if self.rank == 0 else (-1, "")
        code = -2 if problem else round_
        agreed = int(self.net.gather(torch.tensor([code], dtype=torch.int64), "checkpoint lookup")[0, 0])
        if agreed == -2:
            raise ConfigError(problem if self.rank == 0 else
                              f"rank 0 cannot resume from the checkpoints in {self.dir} (see rank 0's error).")
        if agreed < 0:
            return None
        data, error = None, ""
        try:
            data = torch.load(self._file(self.rank, agreed), weights_only=True)
            if data.get("fingerprint") != self.fingerprint or int(data.get("round", -9)) != agreed:
                error = f"{self._file(self.rank, agreed)} does not belong to this run/round"
        except Exception as err:  # a missing or damaged file
            error = f"cannot read {self._file(self.rank, agreed)}: {err}"
        flags = self.net.gather(torch.tensor([0 if not error else 1], dtype=torch.int64), "checkpoint load")
        bad = [r for r in range(self.world) if int(flags[r, 0])]
        if bad:
            mine = f" ({error})" if error else ""
            raise DistributedError(
                f"rank {self.rank}: cannot resume from round {agreed}: rank(s) {bad} could not load their checkpoint "
                f"file{mine}. Delete {self.dir} to start afresh."
            )
        self.saved = [agreed]
        for path in self.dir.glob(f"rank{self.rank}-round*.pt"):
            if path != self._file(self.rank, agreed):
                path.unlink(missing_ok=True)  # older ones, or a newer one LATEST never pointed at
        return data

    # ------------------------------------------------------------------ save
    def save(self, round: int, payload: dict[str, Any]) -> None:
        """Write this rank's checkpoint of ``round`` and advance ``LATEST`` (a collective)."""
        _atomic_save({**payload, "fingerprint": self.fingerprint, "round": int(round)}, self._file(self.rank, round))
        self.net.barrier("checkpoint")
        if self.rank == 0:
            meta = {"round": int(round), "fingerprint": self.fingerprint, "world_size": self.world, "n": self.net.n}
            _atomic_text(json.dumps(meta) + "\n", self.dir / LATEST)
        self.saved.append(int(round))
        for old in self.saved[:-2]:
            try:
                self._file(self.rank, old).unlink()
            except FileNotFoundError:
                pass
        self.saved = self.saved[-2:]
