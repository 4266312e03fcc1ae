"""The bit ledger: payload bits per client, per direction, per round.

Every message that crosses the network is recorded here by the network (never by an
algorithm), with the exact payload bits the compressor reported (``8 * len(payload)``). The
ledger keeps cumulative totals per client and, optionally, the per-round breakdown.
"""

from __future__ import annotations

from typing import Any

import torch

from commpress.errors import ConfigError, InputError

#: The two directions: client -> server ("up") and server -> client ("down").
DIRECTIONS = ("up", "down")


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError(f"ledger direction must be 'up' or 'down'; got {direction!r}.")
    return direction


class Ledger:
    """Bits per client per direction per round, and their cumulative totals.

    ``record(direction, round, bits, clients)`` adds the bits of one message per client (several
    messages in one round add up). ``total(direction)`` is the ``(n,)`` int64 cumulative count;
    ``mean_total(direction)`` its average over the clients (the "bits per client" of the papers'
    plots); ``by_round(direction)`` the ``(rounds, n)`` breakdown (initialisation traffic is
    recorded under round ``-1``). ``messages(direction)`` counts messages per client.

    Args:
        n: number of clients.
        keep_rounds: keep the per-round breakdown (False: totals only, O(n) memory).
    """

    def __init__(self, n: int, *, keep_rounds: bool = True) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"Ledger needs n >= 1 clients; got n={n!r}.")
        self.n = n
        self.keep_rounds = bool(keep_rounds)
        self._total = {k: torch.zeros(n, dtype=torch.int64) for k in DIRECTIONS}
        self._messages = {k: torch.zeros(n, dtype=torch.int64) for k in DIRECTIONS}
        self._rounds: dict[str, dict[int, torch.Tensor]] = {k: {} for k in DIRECTIONS}

    # ------------------------------------------------------------------ recording
    def record(self, direction: str, round: int, bits: torch.Tensor, clients: torch.Tensor | None = None) -> None:
        """Add one message per listed client: ``bits[j]`` bits for client ``clients[j]``."""
        _check_direction(direction)
        bits = torch.as_tensor(bits, dtype=torch.int64).reshape(-1).cpu()
        if clients is None:
            if bits.numel() != self.n:
                raise InputError(
                    f"ledger.record got {bits.numel()} bit counts for {self.n} clients; pass clients= "
                    "with the client index of every count."
                )
            self._total[direction] += bits
            self._messages[direction] += 1
            full = bits
        else:
            clients = torch.as_tensor(clients, dtype=torch.int64).reshape(-1).cpu()
            if clients.numel() != bits.numel():
                raise InputError(f"ledger.record got {bits.numel()} bit counts for {clients.numel()} clients.")
            self._total[direction].index_add_(0, clients, bits)
            self._messages[direction].index_add_(0, clients, torch.ones_like(bits))
            full = None
        if self.keep_rounds:
            rounds = self._rounds[direction]
            r = int(round)
            if r not in rounds:
                rounds[r] = torch.zeros(self.n, dtype=torch.int64)
            if full is not None:
                rounds[r] += full
            else:
                rounds[r].index_add_(0, clients, bits)

    # ------------------------------------------------------------------ queries
    def total(self, direction: str) -> torch.Tensor:
        """Cumulative bits per client, ``(n,)`` int64 (a copy)."""
        return self._total[_check_direction(direction)].clone()

    def mean_total(self, direction: str) -> float:
        """Cumulative bits averaged over the clients."""
        return float(self._total[_check_direction(direction)].sum()) / self.n

    def grand_total(self, direction: str) -> int:
        """Cumulative bits summed over the clients."""
        return int(self._total[_check_direction(direction)].sum())

    def messages(self, direction: str) -> torch.Tensor:
        """Number of messages per client, ``(n,)`` int64."""
        return self._messages[_check_direction(direction)].clone()

    def rounds(self, direction: str) -> list[int]:
        """The rounds with traffic in ``direction``, sorted (``-1`` = initialisation)."""
        return sorted(self._rounds[_check_direction(direction)])

    def by_round(self, direction: str) -> tuple[list[int], torch.Tensor]:
        """``(rounds, bits)`` with ``bits`` of shape ``(len(rounds), n)``: the per-round breakdown."""
        if not self.keep_rounds:
            raise ConfigError("this ledger was built with keep_rounds=False; it holds totals only.")
        rounds = self.rounds(direction)
        table = self._rounds[direction]
        if not rounds:
            return [], torch.zeros(0, self.n, dtype=torch.int64)
        return rounds, torch.stack([table[r] for r in rounds])

    def round_bits(self, direction: str, round: int) -> torch.Tensor:
        """Bits per client in one round, ``(n,)`` (zeros if nothing was sent)."""
        if not self.keep_rounds:
            raise ConfigError("this ledger was built with keep_rounds=False; it holds totals only.")
        got = self._rounds[_check_direction(direction)].get(int(round))
        return torch.zeros(self.n, dtype=torch.int64) if got is None else got.clone()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything recorded so far."""
        for k in DIRECTIONS:
            self._total[k].zero_()
            self._messages[k].zero_()
            self._rounds[k].clear()

    def state_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "keep_rounds": self.keep_rounds,
            "total": {k: v.clone() for k, v in self._total.items()},
            "messages": {k: v.clone() for k, v in self._messages.items()},
            "rounds": {k: {r: b.clone() for r, b in v.items()} for k, v in self._rounds.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["n"]) != self.n:
            raise ConfigError(f"ledger state is for n={state['n']} clients; this ledger has n={self.n}.")
        self.keep_rounds = bool(state["keep_rounds"])
        self._total = {k: v.clone() for k, v in state["total"].items()}
        self._messages = {k: v.clone() for k, v in state["messages"].items()}
        self._rounds = {k: {int(r): b.clone() for r, b in v.items()} for k, v in state["rounds"].items()}

    def __repr__(self) -> str:
        return (f"Ledger(n={self.n}, up={self.mean_total('up'):.6g} bits/client, "
                f"down={self.mean_total('down'):.6g} bits/client)")
