"""Bit packing: the single place where bytes are made (pure torch, vectorised over rows).

A message is a list of :class:`Field` s. Each field holds ``count`` entries of ``width`` bits
of one :class:`Kind`: unsigned integers (``UINT``, 1..64 bits), IEEE-754 binary32 (``F32``) or
binary64 (``F64``), little-endian bytes when byte-aligned, most-significant bit first inside
a bit field. Fields follow each other with no padding; the whole payload is padded with zero
bits to a whole byte, and the bits a compressor reports are ``8 * len(payload)``.
"""

from commpress.wire.fields import F32, F64, UINT, Field, Kind, float_field, payload_bits, payload_bytes
from commpress.wire.pack import pack_rows, unpack_rows

__all__ = ["F32", "F64", "UINT", "Field", "Kind", "float_field", "payload_bits", "payload_bytes", "pack_rows", "unpack_rows"]
