"""A network that holds the clients in a permuted order (rows != client indices).

It behaves as a process of a distributed run that owns every client but not in order: the
compressor is called with ``clients=`` (rows keyed by client index), the ledger records by
client index. Algorithms that index the client axis as if row j were client j give different
iterates on it than on :class:`LocalNetwork`.
"""

from __future__ import annotations

import torch

from commpress.network import Ledger, Network
from commpress.network.base import _check_compressor


class PermutedNetwork(Network):
    def __init__(self, n: int, perm: torch.Tensor) -> None:
        self.n = n
        self.clients = perm.to(torch.int64)
        self.ledger = Ledger(n)

    @property
    def is_full(self) -> bool:
        return False

    def uplink(self, X, compressor, seed, *, round):
        _check_compressor(compressor, "uplink")
        X = self._check_rows(X, "uplink", round)
        X_hat, bits = compressor.apply(X, seed, clients=self.clients, n=self.n)
        self.ledger.record("up", round, bits, self.clients)
        return X_hat

    def _in_client_order(self, rows):
        # A deterministic all-reduce: reduce in client order, as the simulator does, so that the
        # result is bit-identical to LocalNetwork's whatever rows this process holds.
        return rows[torch.argsort(self.clients)]

    def sum(self, rows):
        return self._in_client_order(rows).sum(dim=0)

    def mean(self, rows):
        return self._in_client_order(rows).mean(dim=0)

    def max(self, rows):
        return rows.max(dim=0).values
