"""Injected faults, for testing the failure paths of a distributed run (never set in production).

``COMMPRESS_DIST_FAULT="KIND@RANK:ROUND"`` (several separated by commas) makes rank ``RANK``, at
the start of round ``ROUND``:

- ``exit``: die at once (``os._exit(17)``, no clean-up, no error report);
- ``hang``: sleep forever (the process stays alive but never reaches the next collective);
- ``truncate``: cut the last byte off its first payload of that round (the checksum matches,
  the length does not fit the compressor's layout);
- ``garble``: flip one byte of its payload bytes after the checksum was computed.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from commpress.errors import ConfigError

ENV = "COMMPRESS_DIST_FAULT"
KINDS = ("exit", "hang", "truncate", "garble")
#: Exit code of an injected ``exit``.
EXIT_CODE = 17


@dataclass(frozen=True)
class Fault:
    kind: str
    rank: int
    round: int


def parse(text: str | None) -> list[Fault]:
    faults = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            kind, where = part.split("@")
            rank, round_ = where.split(":")
            fault = Fault(kind, int(rank), int(round_))
        except ValueError:
            raise ConfigError(f"{ENV}: expected KIND@RANK:ROUND (e.g. exit@1:3); got {part!r}.") from None
        if kind not in KINDS:
            raise ConfigError(f"{ENV}: unknown fault {kind!r}; choose from {list(KINDS)}.")
        faults.append(fault)
    return faults


class Faults:
    """The faults of this rank; ``before_round`` and the payload hooks of the network."""

    def __init__(self, faults: list[Fault], rank: int) -> None:
        self.mine = [f for f in faults if f.rank == rank]

    @classmethod
    def from_env(cls, rank: int) -> "Faults | None":
        faults = parse(os.environ.get(ENV))
        return cls(faults, rank) if any(f.rank == rank for f in faults) else None

    def _active(self, kind: str, round: int) -> bool:
        return any(f.kind == kind and f.round == round for f in self.mine)

    def before_round(self, round: int) -> None:
        if self._active("exit", round):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_CODE)
        if self._active("hang", round):
            while True:
                time.sleep(3600)

    def payloads(self, round: int, payloads: list[bytes]) -> list[bytes]:
        if self._active("truncate", round) and payloads and payloads[0]:
            return [payloads[0][:-1], *payloads[1:]]
        return payloads

    def blob(self, round: int, blob: bytes) -> bytes:
        if self._active("garble", round) and blob:
            return bytes([blob[0] ^ 0xFF]) + blob[1:]
        return blob
