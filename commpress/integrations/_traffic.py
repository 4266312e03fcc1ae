"""Bytes a rank sends per DDP step, as the hook state's ledger."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Traffic:
    """Bytes this rank sent, per step (one backward pass: every bucket once).

    Two counts per message:

    - ``payload``: the compressor's message, ``8 * len(payload)`` bits (headers included); for the
      uncompressed warm-up steps, the raw gradient bytes. This is what a compressed wire sends and
      what the tables report.
    - ``wire``: the bytes this rank handed to the collectives: the padded payload and its 8-byte
      length word for an all-gather, the dense tensor for an all-reduce. Collectives move more
      than their inputs (a ring all-reduce sends about twice its input); both counts are
      per-rank inputs, comparable across methods.

    Attributes:
        steps: completed steps.
        payload_bytes, wire_bytes: totals over the completed steps.
        last_payload_bytes, last_wire_bytes: the last completed step.
    """

    steps: int = 0
    payload_bytes: int = 0
    wire_bytes: int = 0
    last_payload_bytes: int = 0
    last_wire_bytes: int = 0
    current_payload_bytes: int = 0
    current_wire_bytes: int = 0

    def add(self, payload: int, wire: int) -> None:
        """Record one message of the step in progress."""
        self.current_payload_bytes += int(payload)
        self.current_wire_bytes += int(wire)

    def end_step(self) -> None:
        """Close the step in progress (after its last bucket)."""
        self.steps += 1
        self.payload_bytes += self.current_payload_bytes
        self.wire_bytes += self.current_wire_bytes
        self.last_payload_bytes = self.current_payload_bytes
        self.last_wire_bytes = self.current_wire_bytes
        self.current_payload_bytes = 0
        self.current_wire_bytes = 0

    @property
    def payload_bytes_per_step(self) -> float:
        """Mean payload bytes per completed step (warm-up steps included)."""
        return self.payload_bytes / self.steps if self.steps else 0.0
