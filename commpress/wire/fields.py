"""Field descriptions of a wire message."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    """The kind of a field's entries: unsigned integers of 1..32 bits, float32 or float64."""

    UINT = "uint"
    F32 = "f32"
    F64 = "f64"


#: The members of :class:`~commpress.wire.Kind`, by their short names.
UINT, F32, F64 = Kind.UINT, Kind.F32, Kind.F64


@dataclass(frozen=True)
class Field:
    """``count`` entries of ``width`` bits each, named ``name`` in the message dict."""

    name: str
    kind: Kind
    width: int
    count: int

    def __post_init__(self) -> None:
        if self.kind is Kind.F32 and self.width != 32:
            raise ValueError("F32 fields are 32 bits wide")
        if self.kind is Kind.F64 and self.width != 64:
            raise ValueError("F64 fields are 64 bits wide")
        if self.kind is Kind.UINT and not 0 <= self.width <= 63:
            raise ValueError(f"UINT fields are 0..63 bits wide; got {self.width}")
        if self.count < 0:
            raise ValueError(f"field count must be >= 0; got {self.count}")

    @property
    def bits(self) -> int:
        return self.width * self.count


def payload_bits(fields: list[Field]) -> int:
    """Information bits of a message: the sum of its fields."""
    return sum(f.bits for f in fields)


def payload_bytes(fields: list[Field]) -> int:
    """Bytes on the wire: information bits padded to a whole byte."""
    return (payload_bits(fields) + 7) // 8


def float_kind(bits: int) -> Kind:
    """The field kind carrying a float of ``bits`` (32 or 64) bits."""
    return F32 if bits == 32 else F64


def float_field(name: str, bits: int, count: int) -> Field:
    """A field of ``count`` floats of ``bits`` (32 or 64) bits."""
    return Field(name, float_kind(bits), bits, count)
