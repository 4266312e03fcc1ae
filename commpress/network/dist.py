r"""Clients sharded across torch.distributed ranks; the packed payloads really cross the wire.

>>> dist.init_process_group("gloo", ...)                  # or commpress.distributed.run_distributed
>>> net = TorchDistNetwork(n=16)                           # rank r holds a contiguous block of clients
>>> algo = cp.algorithms.make("marina", problem, net, compressor="cq", seed=0)

**Layout.** With ``k`` ranks, rank ``r`` holds the clients ``[r n // k, (r + 1) n // k)``: contiguous
blocks in rank order, sizes differing by at most one (``n >= k`` is required, so every rank holds
a client). ``network.clients`` lists them; the algorithm's client state holds their rows.

**Uplink.** Each rank encodes only its own clients (``compressor.encode(X, seed, clients=...,
n=n)``: every random draw is keyed by client index and round seed, so a client's payload is the
one the simulator would make) and sends the packed bytes in two all-gathers: a small int64
header per rank (status, CRC-32, the length of every payload), then the payloads back to back,
zero-padded to the longest rank's. Nothing is pickled. Every rank is a replica of the server: it
checks every header (:mod:`commpress.network._exchange`) and decodes all ``n`` rows in one
``compressor.decode`` call, which equals the simulator's ``compressor.apply`` bit for bit. A
truncated, over-long or damaged payload raises :class:`~commpress.errors.PayloadError` naming the
rank that sent it; it is never decoded into numbers.

**Reductions, and why the uplink mean costs nothing.** ``uplink`` returns this rank's rows of the
decoded batch and remembers the whole ``(n, d)`` decoded batch of the last few uplinks. When
``network.mean`` / ``sum`` / ``max`` receives a tensor that *is* a remembered uplink result (the
pattern ``network.mean(network.uplink(...))`` of MARINA, DIANA, DCGD, ...), the reduction is
computed from the remembered batch locally, exactly as :class:`~commpress.network.LocalNetwork`
computes it (``rows.mean(dim=0)`` over all n rows): **no second collective, the uplink costs its
payloads only**. When it receives a scalar multiple of the last uplink result (``scale *
uplink(...)``, the EF / EF21 / CSER pattern), every rank checks ``rows == s * local rows``
exactly for the few floats ``s`` around its quotient and the ranks agree on one ``s`` through an
all-gather of 80 bytes per rank; the reduction then uses ``s *`` the remembered batch. (Memory: each remembered uplink keeps its
decoded ``(n, d)`` batch, which a server replica builds anyway; the last two are kept.) Any other tensor (client state such as CSER's
error, a method's local gradients) is all-gathered densely (``(n, ...)`` values, padded per rank
to the tallest block) and reduced in client order. Every path reproduces the simulator's numbers
bit for bit, so the iterates of a run do not depend on the number of processes.

**Bandwidth** (per uplink, received by every rank, ``k`` ranks, ``m = ceil(n / k)``):
``8 k (2 + m)`` header bytes plus ``k * max_r(bytes of rank r's payloads)`` -- the payloads
themselves, plus at most one payload per rank of padding when ``k`` does not divide ``n``, plus
16 bytes per rank and round for status and checksum. The dense fallback costs
``k * m * d * 8`` bytes (float64); the scale check ``80 k`` bytes. The downlink costs no
collective: the server is replicated, every rank compresses the broadcast itself and charges its
clients the payload bits.

**Ledger.** Each rank's ``ledger`` records its own clients' bits only; the global totals per
direction (``mean_bits``) are known on every rank from the gathered payload lengths, for the
bits-budget test and the recorded curves. ``merged_ledger()`` (a collective of small int64
tensors) gives every rank the full ledger, equal to the simulator's.

**Failures.** Every collective goes through a :class:`~commpress.network._watchdog.Watchdog` when
one is given (``commpress.distributed`` always gives one): a dead or hung peer makes the
collective fail within the process group's timeout, and the error is a
:class:`~commpress.errors.DistributedError` naming the rank. A rank whose message diverges (NaN,
overflow) sends a failure mark instead of bytes, so that every rank raises
:class:`~commpress.errors.NonFiniteError` in the same collective instead of waiting forever.

.. note:: Replicas must compute identically: every rank updates the server's iterate from the
   same decoded numbers, so the copies stay equal on identical CPUs and libraries (as PowerSGD's
   replicas do). Use one torch thread per rank (``commpress.distributed`` does).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from commpress.compressors.base import Compressor
from commpress.errors import (
    CommpressError,
    ConfigError,
    DistributedError,
    InputError,
    InputTypeError,
    NonFiniteError,
    PayloadError,
)
from commpress.network._collectives import gather_int64, gather_padded_bytes, gather_rows, gather_vectors
from commpress.network._exchange import STATUS_DIVERGED, STATUS_FAILED, STATUS_OK, blob_width, frame, unframe
from commpress.network._watchdog import first_line
from commpress.network.base import Network, _check_compressor
from commpress.network.ledger import DIRECTIONS, Ledger

#: How many recent uplink results are remembered for the reductions (each holds an (n, d) batch).
REMEMBERED_UPLINKS = 2
#: The scale check tries the floats within this many ulps of a rank's quotient.
_ULPS = 3
#: Purposes of the bytes a rank hands to collectives (``TorchDistNetwork.wire``).
WIRE_KINDS = ("headers", "payloads", "dense", "scale", "control")


@dataclass
class _Uplink:
    local: torch.Tensor  # the rows this rank's uplink returned
    version: int         # their version counter then (an in-place change invalidates the entry)
    full: torch.Tensor   # the (n, d) decoded batch


def _around(q: float, ulps: int) -> list[float]:
    """The floats from ``ulps`` ulps below ``q`` to ``ulps`` above, ascending."""
    below, above, x, y = [], [], q, q
    for _ in range(ulps):
        x, y = math.nextafter(x, -math.inf), math.nextafter(y, math.inf)
        below.append(x)
        above.append(y)
    return below[::-1] + [q] + above


def block_layout(n: int, world: int) -> tuple[list[int], list[int]]:
    """``(starts, counts)``: rank r holds clients ``starts[r] .. starts[r] + counts[r] - 1``."""
    bounds = [r * n // world for r in range(world + 1)]
    return bounds[:-1], [bounds[r + 1] - bounds[r] for r in range(world)]


class TorchDistNetwork(Network):
    """The clients of this rank in a torch.distributed run. See the module docstring.

    Args:
        n: total number of clients (``n >= world size``).
        group: the process group (None: the default group; it must be initialised).
        keep_rounds: keep the ledger's per-round breakdown.
        watchdog: a :class:`~commpress.network._watchdog.Watchdog` that names failed peers
            (None: failures are reported without naming the rank).
    """

    def __init__(self, n: int, *, group: Any = None, keep_rounds: bool = True, watchdog: Any = None) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"TorchDistNetwork needs n >= 1 clients; got n={n!r}.")
        if not dist.is_available() or not dist.is_initialized():
            raise DistributedError(
                "TorchDistNetwork needs an initialised torch.distributed process group; call "
                "torch.distributed.init_process_group('gloo', ...) first, or run through "
                "commpress.distributed.run_distributed / `commpress run CONFIG --processes K`."
            )
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        if self.rank < 0:
            raise DistributedError("this process is not a member of the network's process group.")
        if n < self.world:
            raise ConfigError(
                f"{n} clients cannot be sharded over {self.world} processes (every rank needs at least one "
                f"client); use at most {n} processes."
            )
        self.n = n
        self.starts, self.counts = block_layout(n, self.world)
        self._lo = self.starts[self.rank]
        self._hi = self._lo + self.counts[self.rank]
        self.clients = torch.arange(self._lo, self._hi)
        self.ledger = Ledger(n, keep_rounds=keep_rounds)
        self.watchdog = watchdog
        self._bits = {k: 0 for k in DIRECTIONS}
        self._recent: deque[_Uplink] = deque(maxlen=REMEMBERED_UPLINKS)
        self._fault: Any = None  # test hook: tampers with outgoing payloads (commpress.distributed)
        #: Bytes this rank handed to collectives, by purpose (``WIRE_KINDS``).
        self.wire = {k: 0 for k in WIRE_KINDS}

    @property
    def is_full(self) -> bool:
        return self.world == 1

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "rank": self.rank, "world_size": self.world,
                "backend": dist.get_backend(self.group), "layout": "contiguous blocks"}

    def __repr__(self) -> str:
        return f"TorchDistNetwork(n={self.n}, rank={self.rank}, world={self.world}, clients={self._lo}..{self._hi - 1})"

    # ------------------------------------------------------------------ collectives
    def _call(self, what: str, fn):
        if self.watchdog is not None:
            return self.watchdog.call(what, fn)
        try:
            return fn()
        except CommpressError:
            raise
        except Exception as err:
            raise DistributedError(
                f"rank {self.rank}: {what} failed: {first_line(err)}. A peer rank died or hung; give the network "
                "a Watchdog (commpress.distributed does) for a diagnosis that names it."
            ) from err

    def gather(self, values: torch.Tensor, what: str, kind: str = "control") -> torch.Tensor:
        """All-gather of one small vector per rank (same length and dtype): ``(world, len)``."""
        self.wire[kind] += values.numel() * values.element_size()
        return self._call(what, lambda: gather_vectors(values, self.group, self.world))

    def barrier(self, what: str = "barrier") -> None:
        """Wait for every rank (a one-word all-gather, so that the watchdog sees it)."""
        self.gather(torch.zeros(1, dtype=torch.int64), what)

    # ------------------------------------------------------------------ uplink
    def uplink(self, X: torch.Tensor, compressor: Compressor, seed: int, *, round: int,
               participants: torch.Tensor | None = None) -> torch.Tensor:
        _check_compressor(compressor, "uplink")
        X = self._check_rows(X, "uplink", round)
        if self.watchdog is not None:
            self.watchdog.round = round
        S = mine = None
        if participants is not None:  # every rank holds the same list (drawn from the shared stream)
            S = torch.as_tensor(participants, dtype=torch.int64).reshape(-1).cpu()
            mine = self._local_participants(S)
        status, error, payloads = STATUS_OK, None, None
        try:
            if S is None:
                payloads = compressor.encode(X, seed, clients=self.clients, n=self.n)
            else:  # the absent clients send empty payloads (length 0 in the header, 0 bits)
                payloads = [b""] * self.rows
                if mine.numel():
                    sent = compressor.encode(X[mine - self._lo], seed, clients=mine, n=self.n)
                    for j, p in zip((mine - self._lo).tolist(), sent):
                        payloads[j] = p
        except NonFiniteError as err:  # take part in the exchange anyway, flagged, so nobody waits
            status, error = STATUS_DIVERGED, err
        except CommpressError as err:
            status, error = STATUS_FAILED, err
        if self._fault is not None and payloads is not None:
            payloads = self._fault.payloads(round, payloads)
        max_rows = max(self.counts)
        header, blob = frame(payloads, max_rows, status)
        if self._fault is not None:
            blob = self._fault.blob(round, blob)
        headers = self._call("uplink (payload lengths)", lambda: gather_int64(header, self.group, self.world))
        self.wire["headers"] += header.numel() * 8
        self._check_statuses(headers, error, round)
        width = blob_width(headers)
        self.wire["payloads"] += width
        blobs = self._call("uplink (payload bytes)",
                           lambda: gather_padded_bytes(blob, width, self.group, self.world)) if width else []
        payloads_all = unframe(headers, blobs, self.counts, self.starts, f"rank {self.rank}: uplink of round {round}")
        bits = torch.tensor([8 * len(p) for p in payloads_all], dtype=torch.int64)
        if S is None:
            full = self._decode(compressor, payloads_all, seed, X, round)
            self.ledger.record("up", round, bits[self._lo : self._hi], None if self.is_full else self.clients)
        else:
            full = self._decode_participants(compressor, payloads_all, seed, X, round, S)
            if mine.numel():
                self.ledger.record("up", round, bits[mine], mine)
        self._bits["up"] += int(bits.sum())
        # A view: it shares full's version counter, so an in-place change of the rows by the caller
        # invalidates the remembered entry (and the reductions then gather densely).
        local = full if self.world == 1 else full[self._lo : self._hi]
        self._recent.append(_Uplink(local, local._version, full))
        return local

    def _check_statuses(self, headers: torch.Tensor, error: BaseException | None, round: int) -> None:
        statuses = headers[:, 0]
        if not bool((statuses != STATUS_OK).any()):
            return
        bad = [r for r in range(self.world) if int(statuses[r]) != STATUS_OK]
        if error is not None:
            if isinstance(error, NonFiniteError):
                raise NonFiniteError(
                    f"a client's message in round {round} (rank {self.rank}): the run has diverged (lower the "
                    f"stepsize). {error}"
                ) from error
            raise error
        if any(int(statuses[r]) == STATUS_DIVERGED for r in bad):
            r = next(r for r in bad if int(statuses[r]) == STATUS_DIVERGED)
            raise NonFiniteError(
                f"a client's message in round {round} (sent by rank {r}, clients {self.starts[r]}.."
                f"{self.starts[r] + self.counts[r] - 1}) holds NaN/Inf or overflows: the run has diverged "
                "(lower the stepsize)."
            )
        raise DistributedError(
            f"rank {self.rank}: rank(s) {bad} could not encode their clients' messages in round {round}; "
            "see their errors."
        )

    def _decode_participants(self, compressor: Compressor, payloads: list[bytes], seed: int, X: torch.Tensor,
                             round: int, S: torch.Tensor) -> torch.Tensor:
        """The ``(n, d)`` batch of a partial-participation uplink: the participants' decoded rows, zeros elsewhere."""
        absent = torch.ones(self.n, dtype=torch.bool)
        absent[S] = False
        spoke = [int(i) for i in torch.nonzero(absent).reshape(-1).tolist() if payloads[i]]
        if spoke:
            raise PayloadError(f"rank {self.rank}: uplink of round {round}: client {spoke[0]} sent a message but is "
                               "not a participant of the round; the ranks disagree on who takes part.")
        d = X.shape[1]
        if S.numel() == 0:
            return X.new_zeros(self.n, d)
        rows = compressor.decode([payloads[i] for i in S.tolist()], seed, d, clients=S, n=self.n, dtype=X.dtype,
                                 device=X.device)
        full = rows.new_zeros(self.n, d)
        full[S.to(full.device)] = rows
        return full

    def _decode(self, compressor: Compressor, payloads: list[bytes], seed: int, X: torch.Tensor, round: int) -> torch.Tensor:
        d = X.shape[1]
        try:
            return compressor.decode(payloads, seed, d, n=self.n, dtype=X.dtype, device=X.device)
        except PayloadError as err:
            where = f"rank {self.rank}: uplink of round {round}"
            for r, (start, count) in enumerate(zip(self.starts, self.counts)):
                try:
                    compressor.decode(payloads[start : start + count], seed, d, clients=torch.arange(start, start + count),
                                      n=self.n, dtype=X.dtype, device=X.device)
                except PayloadError as block_err:
                    raise PayloadError(
                        f"{where}: the messages from rank {r} (clients {start}..{start + count - 1}) are rejected: "
                        f"{block_err}"
                    ) from err
            raise PayloadError(f"{where}: the gathered messages are rejected: {err}") from err

    # ------------------------------------------------------------------ downlink
    def downlink(self, x: torch.Tensor, compressor: Compressor, seed: int, *, round: int,
                 participants: torch.Tensor | None = None) -> torch.Tensor:
        x_hat = super().downlink(x, compressor, seed, round=round, participants=participants)
        receivers = self.n if participants is None else int(torch.as_tensor(participants).numel())
        self._bits["down"] += self._down_bits * receivers
        return x_hat

    # ------------------------------------------------------------------ reductions
    def sum(self, rows: torch.Tensor) -> torch.Tensor:
        return self._full(rows, "sum").sum(dim=0)

    def mean(self, rows: torch.Tensor) -> torch.Tensor:
        return self._full(rows, "mean").mean(dim=0)

    def max(self, rows: torch.Tensor) -> torch.Tensor:
        return self._full(rows, "max").max(dim=0).values

    def _full(self, rows: Any, what: str) -> torch.Tensor:
        """The ``(n, ...)`` tensor of every client's row, in client order."""
        if not isinstance(rows, torch.Tensor):
            raise InputTypeError(f"network.{what} expects a torch.Tensor of per-client rows; got {type(rows).__name__}.")
        if rows.dim() == 0 or rows.shape[0] != self.rows:
            raise InputError(
                f"network.{what} expects one row per local client, leading axis {self.rows}; got {tuple(rows.shape)}."
            )
        if self.world == 1:
            return rows
        for entry in reversed(self._recent):
            if entry.local is rows and rows._version == entry.version:
                return entry.full
        latest = next((e for e in reversed(self._recent)
                       if e.local.shape == rows.shape and e.local.dtype == rows.dtype), None)
        if latest is not None:
            scale = self._common_scale(latest, rows, what)
            if scale is not None:
                return latest.full if scale == 1.0 else scale * latest.full
        self.wire["dense"] += max(self.counts) * (rows[0].numel() if rows.numel() else 0) * rows.element_size()
        return self._call(f"{what} over clients (dense rows)", lambda: self._gather_rows(rows))

    def _gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """:func:`gather_rows` on the rows' device: gloo gathers host memory, so its rows go through the
        CPU (no copy for CPU rows) and the result comes back to the rows' device (one path for all)."""
        staged = rows.cpu() if dist.get_backend(self.group) == "gloo" else rows
        return gather_rows(staged, self.counts, self.group).to(rows.device)

    def _common_scale(self, entry: _Uplink, rows: torch.Tensor, what: str) -> float | None:
        """``s`` with ``rows == s * entry.local`` exactly on every rank, or None.

        ``s`` is the Python float an algorithm multiplied the uplink result by. A quotient
        ``rows_j / local_j`` lands within a few ulps of it; each rank lists which of the
        ``2 * _ULPS + 1`` floats around its quotient reproduce its rows exactly, and the ranks take
        the smallest one valid everywhere (16 + 8 * (2 * _ULPS + 1) bytes per rank). A rank whose
        remembered rows are all zero accepts any ``s`` that keeps its zeros' signs.
        """
        local = entry.local.reshape(-1)
        flat = rows.reshape(-1)
        width = 2 * _ULPS + 1
        valid = torch.full((width,), math.nan, dtype=torch.float64)
        nonzero = torch.nonzero(local).reshape(-1)
        if nonzero.numel():
            has, ok = True, False
            q = float(flat[nonzero[0]] / local[nonzero[0]])
            if math.isfinite(q) and q != 0.0:
                probe = nonzero[:256]
                for j, s in enumerate(_around(q, _ULPS)):
                    if torch.equal(s * local[probe], flat[probe]) and torch.equal(s * entry.local, rows):
                        valid[j] = s
                        ok = True
        else:  # all zeros here: s = 1 reproduces them if the signs of the zeros agree
            has = False
            ok = not bool(flat.any()) and bool(torch.equal(torch.signbit(rows), torch.signbit(entry.local)))
        head = torch.tensor([float(ok), float(has)], dtype=torch.float64)
        votes = self.gather(torch.cat([head, valid]), f"{what} (scale check)", "scale")
        if not bool((votes[:, 0] == 1.0).all()):
            return None
        common: set[float] | None = None
        for row in votes:
            if row[1] == 1.0:
                mine = {float(v) for v in row[2:] if not math.isnan(float(v))}
                common = mine if common is None else common & mine
        if common is None:  # every rank's rows are the remembered zeros, signs included
            return 1.0
        return min(common) if common else None

    # ------------------------------------------------------------------ bits
    def mean_bits(self, direction: str) -> float:
        """Bits per client so far in ``direction``, averaged over all n clients (every rank knows it)."""
        return float(self._bits[direction]) / self.n

    def total_bits(self, direction: str) -> int:
        """Bits so far in ``direction``, summed over all n clients."""
        return int(self._bits[direction])

    def state_dict(self) -> dict[str, Any]:
        """This rank's ledger and the global totals (for checkpoints)."""
        return {"ledger": self.ledger.state_dict(), "bits": dict(self._bits), "rank": self.rank,
                "world_size": self.world, "n": self.n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["world_size"]) != self.world or int(state["rank"]) != self.rank or int(state["n"]) != self.n:
            raise ConfigError(
                f"network state of rank {state['rank']} of {state['world_size']} with n={state['n']} cannot be "
                f"loaded by rank {self.rank} of {self.world} with n={self.n}; resume with the same number of processes."
            )
        self.ledger.load_state_dict(state["ledger"])
        self._bits = {k: int(v) for k, v in state["bits"].items()}

    def merged_ledger(self) -> Ledger:
        """The ledger of all n clients (a collective: every rank gets it)."""
        own = self.ledger
        merged = Ledger(self.n, keep_rounds=own.keep_rounds)
        if self.world == 1:
            merged.load_state_dict(own.state_dict())
            return merged
        parts = [own.total(k) for k in DIRECTIONS] + [own.messages(k) for k in DIRECTIONS]
        summed = self.gather(torch.cat(parts), "ledger merge").sum(0)
        totals = summed.view(2 * len(DIRECTIONS), self.n)
        state: dict[str, Any] = {
            "n": self.n, "keep_rounds": own.keep_rounds,
            "total": {k: totals[i].clone() for i, k in enumerate(DIRECTIONS)},
            "messages": {k: totals[len(DIRECTIONS) + i].clone() for i, k in enumerate(DIRECTIONS)},
            "rounds": {k: {} for k in DIRECTIONS},
        }
        if own.keep_rounds:
            state["rounds"] = self._merged_rounds()
        merged.load_state_dict(state)
        return merged

    def _merged_rounds(self) -> dict[str, dict[int, torch.Tensor]]:
        own = self.ledger
        mine = {k: own.rounds(k) for k in DIRECTIONS}
        sizes = self.gather(torch.tensor([len(mine[k]) for k in DIRECTIONS], dtype=torch.int64),
                            "ledger merge (round counts)")
        width = [int(sizes[:, i].max()) for i in range(len(DIRECTIONS))]
        pad = -(2**62)
        ids = torch.full((sum(width),), pad, dtype=torch.int64)
        offset = 0
        for i, k in enumerate(DIRECTIONS):
            ids[offset : offset + len(mine[k])] = torch.tensor(mine[k], dtype=torch.int64)
            offset += width[i]
        all_ids = self.gather(ids, "ledger merge (round ids)")
        union: dict[str, list[int]] = {}
        offset = 0
        for i, k in enumerate(DIRECTIONS):
            block = all_ids[:, offset : offset + width[i]].reshape(-1)
            union[k] = sorted({int(r) for r in block.tolist() if r != pad})
            offset += width[i]
        out: dict[str, dict[int, torch.Tensor]] = {k: {} for k in DIRECTIONS}
        if not any(union.values()):
            return out
        table = torch.cat([own.round_bits(k, r) for k in DIRECTIONS for r in union[k]])
        summed = self.gather(table, "ledger merge (rounds)").sum(0)
        j = 0
        for k in DIRECTIONS:
            for r in union[k]:
                out[k][r] = summed[j * self.n : (j + 1) * self.n].clone()
                j += 1
        return out
