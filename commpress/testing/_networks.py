"""Networks for conformance checks: clients held out of order, and a network that audits its ledger."""

from __future__ import annotations

import torch

from commpress.compressors.base import Compressor
from commpress.network import Ledger, LocalNetwork, Network
from commpress.network.base import _check_compressor


class PermutedNetwork(Network):
    """All ``n`` clients in one process, held in the order ``perm`` (row j is client ``perm[j]``).

    It behaves as a process of a distributed run that owns every client but not in order: the
    compressor is called with ``clients=`` (rows keyed by client index), the ledger records by
    client index, and reductions run in client order (bit-identical to :class:`LocalNetwork`).
    An algorithm that indexes the client axis as if row j were client j gives other iterates on it.
    """

    def __init__(self, n: int, perm: torch.Tensor) -> None:
        self.n = n
        self.clients = torch.as_tensor(perm, dtype=torch.int64)
        self.ledger = Ledger(n)

    @property
    def is_full(self) -> bool:
        return False

    def uplink(self, X, compressor, seed, *, round, participants=None):
        _check_compressor(compressor, "uplink")
        X = self._check_rows(X, "uplink", round)
        if participants is None:
            X_hat, bits = compressor.apply(X, seed, clients=self.clients, n=self.n)
            self.ledger.record("up", round, bits, self.clients)
            return X_hat
        S = self._local_participants(participants)  # partial participation: only the listed clients send
        out = torch.zeros_like(X)
        if S.numel():
            row_of = torch.empty(self.n, dtype=torch.int64)
            row_of[self.clients] = torch.arange(self.rows)
            rows = row_of[S]
            X_hat, bits = compressor.apply(X[rows], seed, clients=S, n=self.n)
            out = X_hat.new_zeros(X.shape)
            out[rows] = X_hat
            self.ledger.record("up", round, bits, S)
        return out

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


class AuditNetwork(LocalNetwork):
    """A :class:`LocalNetwork` that also adds up ``8 * len(payload)`` of the real wire messages it
    carries (``expected_up`` per client, ``expected_down`` per client for broadcasts), to compare
    with its ledger; ``depth`` is > 0 while a message is in transit (see :class:`SpyCompressor`)."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.expected_up = torch.zeros(n, dtype=torch.int64)
        self.expected_down = torch.zeros(n, dtype=torch.int64)
        self.depth = 0
        self.bypass_calls = 0
        self.bypass_bits = 0

    def uplink(self, X, compressor, seed, *, round, participants=None):
        self.depth += 1
        try:
            if participants is None:
                payloads = compressor.encode(X, seed)
                self.expected_up += torch.tensor([8 * len(p) for p in payloads], dtype=torch.int64)
                return super().uplink(X, compressor, seed, round=round)
            S = torch.as_tensor(participants, dtype=torch.int64).reshape(-1)
            if S.numel():
                payloads = compressor.encode(X[S], seed, clients=S, n=self.n)
                self.expected_up[S] += torch.tensor([8 * len(p) for p in payloads], dtype=torch.int64)
            return super().uplink(X, compressor, seed, round=round, participants=participants)
        finally:
            self.depth -= 1

    def downlink(self, x, compressor, seed, *, round, participants=None):
        self.depth += 1
        try:
            if isinstance(x, torch.Tensor) and x.dim() == 1 and isinstance(compressor, Compressor):
                bits = 8 * len(compressor.encode(x[None], seed)[0])
                if participants is None:
                    self.expected_down += bits
                else:
                    self.expected_down[torch.as_tensor(participants, dtype=torch.int64)] += bits
            if participants is None:
                return super().downlink(x, compressor, seed, round=round)
            return super().downlink(x, compressor, seed, round=round, participants=participants)
        finally:
            self.depth -= 1

    def downlink_rows(self, X, compressor, seed, *, round):
        self.depth += 1
        try:
            payloads = compressor.encode(X, seed)
            self.expected_down += torch.tensor([8 * len(p) for p in payloads], dtype=torch.int64)
            return super().downlink_rows(X, compressor, seed, round=round)
        finally:
            self.depth -= 1


class SpyCompressor(Compressor):
    """Delegates everything to ``inner``; a call made while no message is in transit on ``audit``
    (the algorithm compressed outside the network, so no ledger saw it) is counted there."""

    def __init__(self, inner: Compressor, audit: AuditNetwork) -> None:
        self.inner = inner
        self.audit = audit
        self.name = inner.name
        self.correlated = inner.correlated
        self.deterministic = inner.deterministic
        self.summable = inner.summable

    def _outside(self, X, seed, clients, n) -> None:
        if self.audit.depth == 0:
            self.audit.bypass_calls += 1
            self.audit.bypass_bits += sum(8 * len(p) for p in self.inner.encode(X, seed, clients=clients, n=n))

    def apply(self, X, seed, *, clients=None, n=None):
        self._outside(X, seed, clients, n)
        return self.inner.apply(X, seed, clients=clients, n=n)

    def encode(self, X, seed, *, clients=None, n=None):
        self._outside(X, seed, clients, n)
        return self.inner.encode(X, seed, clients=clients, n=n)

    def decode(self, payloads, seed, d, **kw):
        return self.inner.decode(payloads, seed, d, **kw)

    def theory(self, n, d):
        return self.inner.theory(n, d)

    def params(self):
        return self.inner.params()

    def __repr__(self) -> str:
        return repr(self.inner)

    def __getattr__(self, name):  # everything else (k_for, _seeded_support, ...) is the inner's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def encode_message(self, X, ctx):
        return self.inner.encode_message(X, ctx)

    def decode_message(self, message, ctx):
        return self.inner.decode_message(message, ctx)

    def layout(self, ctx, message):
        return self.inner.layout(ctx, message)

    def header_fields(self, ctx):
        return self.inner.header_fields(ctx)

    def check_header(self, header, ctx):
        return self.inner.check_header(header, ctx)

    def check_message(self, message, ctx):
        return self.inner.check_message(message, ctx)

    def check_shape(self, ctx):
        return self.inner.check_shape(ctx)
