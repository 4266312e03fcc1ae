"""The network interface: how vectors move between the clients and the server.

An algorithm never touches the client axis in a way that assumes every client is in this
process. It holds the rows of the clients this process owns (``network.clients``), and

- sends them up with ``network.uplink(X_rows, compressor, seed, round=t)``, which returns the
  rows the server decodes (one ``compressor.apply`` call for all local rows) and records each
  client's payload bits in the ledger;
- reduces over clients only through ``network.mean`` / ``network.sum`` / ``network.max``
  (a distributed network does these with collectives);
- receives the server's broadcast with ``network.downlink(x, compressor, seed, round=t)``: the
  server (replicated on every process) compresses the one vector once; every client is charged
  its payload bits.

``LocalNetwork`` holds all n clients in one process (the simulator). A torch.distributed network
can replace it: each rank holds a subset of the clients and implements ``uplink`` (all-gather of
the packed payloads, decode) and the reductions with collectives; everything else is shared.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch

from commpress._rng import private_rand
from commpress.compressors.base import Compressor
from commpress.errors import InputError, InputTypeError, NonFiniteError
from commpress.network.ledger import Ledger


def _is_finite(t: torch.Tensor) -> bool:
    # One reduction instead of an (n, d) boolean mask: NaN and Inf propagate through the sum
    # (an overflow of the sum itself only happens for values near 1e308, i.e. a blown-up run).
    return math.isfinite(float(t.sum()))


class Network(ABC):
    """Base class of networks. See the module docstring.

    Attributes:
        n: total number of clients.
        clients: ``(rows,)`` int64, the indices of the clients this process holds.
        ledger: the :class:`Ledger` of this process.
    """

    n: int
    clients: torch.Tensor
    ledger: Ledger

    # ------------------------------------------------------------------ layout
    @property
    def rows(self) -> int:
        """How many clients this process holds."""
        return int(self.clients.numel())

    @property
    def is_full(self) -> bool:
        """True when this process holds every client, in order (row j is client j)."""
        return self.rows == self.n and bool(torch.equal(self.clients, torch.arange(self.n)))

    def local(self, full: torch.Tensor) -> torch.Tensor:
        """The local rows of a per-client tensor with leading axis ``n`` (no copy when full)."""
        if full.shape[0] != self.n:
            raise InputError(f"local() expects a tensor with leading axis n={self.n}; got shape {tuple(full.shape)}.")
        return full if self.is_full else full[self.clients.to(full.device)]

    # ------------------------------------------------------------------ communication
    @abstractmethod
    def uplink(self, X: torch.Tensor, compressor: Compressor, seed: int, *, round: int,
               participants: torch.Tensor | None = None) -> torch.Tensor:
        """Every local client sends its row of ``X`` (``(rows, d)``) compressed; returns the decoded rows.

        ``participants`` (partial participation): the sorted indices of the clients that send in this
        round (the same on every process, :mod:`commpress.network`); the others send
        nothing, cost 0 bits, and their decoded rows are zeros. None: every client sends.
        """

    def downlink(self, x: torch.Tensor, compressor: Compressor, seed: int, *, round: int,
                 participants: torch.Tensor | None = None) -> torch.Tensor:
        """The server broadcasts ``x`` (``(d,)``) compressed; returns what every client decodes.

        The server is replicated on every process, so this needs no collective: the one vector is
        compressed once (as a batch of one row) and each local client is charged its bits
        (``participants``: only the listed clients receive it and are charged).
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 1:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"downlink sends one vector of shape (d,); got {shape}.")
        _check_compressor(compressor, "downlink")
        x_hat, bits = self._apply(compressor, x.unsqueeze(0), seed, round, "the server's broadcast")
        self._down_bits = int(bits[0])
        if participants is None:
            self.ledger.record("down", round, bits.expand(self.rows), None if self.is_full else self.clients)
        else:
            mine = self._local_participants(participants)
            if mine.numel():
                self.ledger.record("down", round, bits.expand(mine.numel()), mine)
        return x_hat[0]

    def _local_participants(self, participants: Any) -> torch.Tensor:
        """The listed clients this process holds (global indices, sorted), after checking the list."""
        S = torch.as_tensor(participants, dtype=torch.int64).reshape(-1).cpu()
        if S.numel() and (int(S.min()) < 0 or int(S.max()) >= self.n or bool((S[1:] <= S[:-1]).any())):
            raise InputError(f"participants must be sorted distinct client indices in [0, {self.n}); "
                             f"got {S.tolist()[:8]}.")
        if self.is_full:
            return S
        return S[torch.isin(S, self.clients)]

    def downlink_rows(self, X: torch.Tensor, compressor: Compressor, seed: int, *, round: int) -> torch.Tensor:
        """The server sends every local client its own message: row i of ``X`` (``(rows, d)``)
        compressed for client i (keyed by client index, as an uplink batch: correlated compressors
        such as PermK split the coordinates across the clients); returns the rows the clients decode.
        Each client is charged its own payload bits (the server is replicated: no collective)."""
        _check_compressor(compressor, "downlink")
        X = self._check_rows(X, "downlink_rows", round)
        X_hat, bits = self._apply(compressor, X, seed, round, "the server's per-client messages",
                                  **({} if self.is_full else {"clients": self.clients, "n": self.n}))
        self.ledger.record("down", round, bits, None if self.is_full else self.clients)
        return X_hat

    # ------------------------------------------------------------------ reductions over all clients
    @abstractmethod
    def sum(self, rows: torch.Tensor) -> torch.Tensor:
        """Sum over all n clients of per-client rows ``(rows, ...)``: shape ``(...)``."""

    def mean(self, rows: torch.Tensor) -> torch.Tensor:
        """Mean over all n clients of per-client rows ``(rows, ...)``: shape ``(...)``."""
        return self.sum(rows) / self.n

    def allmean(self, rows: torch.Tensor) -> torch.Tensor:
        """Alias of :meth:`mean` (the all-reduce mean of a distributed network)."""
        return self.mean(rows)

    @abstractmethod
    def max(self, rows: torch.Tensor) -> torch.Tensor:
        """Maximum over all n clients of per-client rows ``(rows, ...)``: shape ``(...)``."""

    # ------------------------------------------------------------------ keyed randomness of the local rows
    def private_rand(self, seed: int, tag: str, shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """Private uniform draws of the local clients, ``(rows, *shape)`` on ``device`` (default: the
        CPU), row i keyed by client i (:func:`commpress._rng.private_rand`: the same bits on every device)."""
        return private_rand(seed, tag, self.n, tuple(shape), None if self.is_full else self.clients, dtype=dtype,
                            device=device)

    def describe(self) -> dict[str, Any]:
        return {"network": type(self).__name__, "n": self.n, "rows": self.rows}

    # ------------------------------------------------------------------ helpers for subclasses
    def _check_rows(self, X: Any, what: str, round: int) -> torch.Tensor:
        if not isinstance(X, torch.Tensor):
            raise InputTypeError(f"{what} expects a torch.Tensor of shape (rows, d); got {type(X).__name__}.")
        if X.dim() != 2 or X.shape[0] != self.rows:
            raise InputError(
                f"{what} expects one row per local client, shape ({self.rows}, d); got {tuple(X.shape)}."
            )
        return X

    @staticmethod
    def _apply(compressor: Compressor, X: torch.Tensor, seed: int, round: int, what: str, **kw: Any):
        """``compressor.apply``; a non-finite or overflowing message (the compressor's own check,
        one pass over X) is re-raised as :class:`NonFiniteError` naming the round."""
        try:
            return compressor.apply(X, seed, **kw)
        except NonFiniteError as err:
            raise NonFiniteError(f"{what} in round {round}: the run has diverged (lower the stepsize). {err}") from err


def _check_compressor(compressor: Any, what: str) -> None:
    if not isinstance(compressor, Compressor):
        raise InputTypeError(
            f"{what} needs a Compressor; got {type(compressor).__name__}. "
            "Build one with commpress.compressors.make(name)."
        )
