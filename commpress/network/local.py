"""All clients in one process: the simulator's network."""

from __future__ import annotations

import torch

from commpress.compressors.base import Compressor
from commpress.errors import ConfigError
from commpress.network.base import Network, _check_compressor
from commpress.network.ledger import Ledger


class LocalNetwork(Network):
    """All ``n`` clients live in this process.

    ``uplink`` compresses the whole ``(n, d)`` batch with one ``compressor.apply`` call (the
    vectorised fast path; bits are the exact payload sizes), reductions are plain tensor
    reductions over the client axis.

    Args:
        n: number of clients.
        keep_rounds: keep the ledger's per-round breakdown (False: totals only).
    """

    def __init__(self, n: int, *, keep_rounds: bool = True) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"LocalNetwork needs n >= 1 clients; got n={n!r}.")
        self.n = n
        self.clients = torch.arange(n)
        self.ledger = Ledger(n, keep_rounds=keep_rounds)

    @property
    def is_full(self) -> bool:
        return True

    def uplink(self, X: torch.Tensor, compressor: Compressor, seed: int, *, round: int,
               participants: torch.Tensor | None = None) -> torch.Tensor:
        _check_compressor(compressor, "uplink")
        X = self._check_rows(X, "uplink", round)
        if participants is None:
            X_hat, bits = self._apply(compressor, X, seed, round, "a client's message")
            self.ledger.record("up", round, bits)
            return X_hat
        # Partial participation: only the listed clients' rows are compressed (keyed by their
        # client index, as a distributed network does), the others are zeros and cost nothing.
        S = self._local_participants(participants)
        if S.numel() == 0:
            return torch.zeros_like(X)
        X_hat, bits = self._apply(compressor, X[S], seed, round, "a client's message", clients=S, n=self.n)
        out = X_hat.new_zeros(X.shape)
        out[S] = X_hat
        self.ledger.record("up", round, bits, S)
        return out

    def sum(self, rows: torch.Tensor) -> torch.Tensor:
        return rows.sum(dim=0)

    def mean(self, rows: torch.Tensor) -> torch.Tensor:
        return rows.mean(dim=0)

    def max(self, rows: torch.Tensor) -> torch.Tensor:
        return rows.max(dim=0).values

    def __repr__(self) -> str:
        return f"LocalNetwork(n={self.n})"
