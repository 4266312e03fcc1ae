"""Vectorised packing of a batch of equally-shaped messages into bytes, and back.

Everything is torch operations on the messages' own device (the same bytes on every device); the
bit fields are packed most significant bit first and zero-padded, the layout of
``numpy.packbits`` (tested against it). :func:`pack_rows` returns the finished bytes on the CPU,
where they go on the wire.
"""

from __future__ import annotations

import torch

from commpress.wire.fields import Field, Kind, payload_bytes


def _to_uint(field: Field, values: torch.Tensor) -> torch.Tensor:
    """The field's entries as raw unsigned bit patterns in an int64 tensor (rows, count)."""
    if field.kind is Kind.F32:
        return values.to(torch.float32).contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    if field.kind is Kind.F64:
        return values.to(torch.float64).contiguous().view(torch.int64)
    return values.to(torch.int64)


def _bytes_of(field: Field, values: torch.Tensor) -> torch.Tensor:
    """Byte-aligned little-endian bytes of a field whose width is a multiple of 8: (rows, bytes)."""
    rows = values.shape[0]
    if field.kind is Kind.F32:
        return values.to(torch.float32).contiguous().view(torch.uint8).reshape(rows, -1)
    if field.kind is Kind.F64:
        return values.to(torch.float64).contiguous().view(torch.uint8).reshape(rows, -1)
    dtype = {8: torch.uint8, 16: torch.int16, 32: torch.int32}.get(field.width)
    if dtype is not None:
        return values.to(dtype).contiguous().view(torch.uint8).reshape(rows, -1)
    return values.to(torch.int64).contiguous().view(torch.uint8).reshape(rows, values.shape[1], 8)[
        :, :, : field.width // 8
    ].reshape(rows, -1)


def _bits_of(field: Field, values: torch.Tensor) -> torch.Tensor:
    """Most-significant-bit-first bits of every entry: (rows, count * width) uint8."""
    if field.kind is Kind.UINT and field.width <= 8:
        # codes below 2^8: stay in bytes, no int64 detour (bools are bytes already: a view)
        raw = values.view(torch.uint8) if values.dtype == torch.bool else values.to(torch.uint8)
        if field.width == 1:
            return raw
        shifts = torch.arange(field.width - 1, -1, -1, dtype=torch.uint8, device=raw.device)
    else:
        raw = _to_uint(field, values)
        shifts = torch.arange(field.width - 1, -1, -1, dtype=torch.int64, device=raw.device)
    return ((raw.unsqueeze(-1) >> shifts) & 1).to(torch.uint8).reshape(raw.shape[0], -1)


# Eight 0/1 bytes read as one little-endian int64 w = sum_k b_k 2^(8k), times
# M = sum_p 2^(9p) (0x8040201008040201), put b_k at bit 8k + 9(7 - k) = 63 - k: the top byte of
# w M (mod 2^64) is sum_k b_k 2^(7-k), the eight bits MSB first. No two (k, p) land on the same
# bit (8(k - k') = 9(p' - p) forces p = p'), so nothing carries.
_GATHER = 0x8040201008040201 - (1 << 64)


def _pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(rows, m) 0/1 uint8 -> (rows, ceil(m / 8)) uint8, MSB first, zero-padded (numpy.packbits's layout)."""
    rows, m = bits.shape
    nbytes = (m + 7) // 8
    if nbytes == 0:
        return torch.zeros(rows, 0, dtype=torch.uint8, device=bits.device)
    if m % 8 or not bits.is_contiguous() or bits.storage_offset() % 8 or bits.stride(0) % 8:
        padded = torch.zeros(rows, nbytes * 8, dtype=torch.uint8, device=bits.device)
        padded[:, :m] = bits
        bits = padded
    words = bits.view(torch.int64)  # (rows, nbytes): byte k of a word is bit k of its group
    return (words * _GATHER).view(torch.uint8)[:, 7::8]  # the top byte (little-endian, as torch's platforms)


def _spread_table(device: torch.device) -> torch.Tensor:
    """(256,) int64: the little-endian bytes of entry v are the bits of v, MSB first, as 0/1."""
    table = _SPREAD.get(device)
    if table is None:
        v = torch.arange(256, dtype=torch.int64, device=device).unsqueeze(1)
        k = torch.arange(8, dtype=torch.int64, device=device)
        table = _SPREAD[device] = (((v >> (7 - k)) & 1) << (8 * k)).sum(1)
    return table


_SPREAD: dict[torch.device, torch.Tensor] = {}


def _unpack_bits(data: torch.Tensor) -> torch.Tensor:
    """(rows, k) uint8 -> (rows, 8k) 0/1 uint8, MSB first (numpy.unpackbits's layout)."""
    rows, k = data.shape
    spread = torch.index_select(_spread_table(data.device), 0, data.reshape(-1).to(torch.int32))
    return spread.view(torch.uint8).reshape(rows, 8 * k)


def pack_rows(fields: list[Field], message: dict[str, torch.Tensor], rows: int) -> torch.Tensor:
    """Pack ``rows`` messages of one layout into a ``(rows, payload_bytes(fields))`` uint8 tensor.

    ``message[f.name]`` is a ``(rows, >= f.count)`` tensor; only the first ``f.count`` columns
    are sent. Byte-aligned fields of 8/16/32/64-bit width are copied as bytes; the others go
    through a bit expansion of just that field. Computed on the device of the first field sent
    (the others are moved there); the bytes are returned on the CPU.
    """
    sent = [f for f in fields if f.count and f.width]
    device = message[sent[0].name].device if sent else torch.device("cpu")
    out = torch.zeros(rows, payload_bytes(fields), dtype=torch.uint8, device=device)
    offset = 0
    for field in fields:
        if field.count == 0 or field.width == 0:
            continue
        values = message[field.name][:, : field.count].to(device)
        if offset % 8 == 0 and field.width % 8 == 0:
            start = offset // 8
            out[:, start : start + field.bits // 8] = _bytes_of(field, values)
        else:
            lead = offset % 8
            bits = _bits_of(field, values)
            if lead:
                bits = torch.cat([torch.zeros(rows, lead, dtype=torch.uint8, device=device), bits], dim=1)
            start = offset // 8
            chunk = _pack_bits(bits)
            out[:, start : start + chunk.shape[1]] |= chunk
        offset += field.bits
    return out.cpu()


def _aligned(flat: torch.Tensor, itemsize: int) -> torch.Tensor:
    """``flat`` itself if a dtype view of ``itemsize`` bytes is allowed on it, else an aligned copy."""
    if itemsize in (2, 4, 8) and flat.storage_offset() % itemsize:
        return flat.clone()
    return flat


def _from_bytes(field: Field, data: torch.Tensor) -> torch.Tensor:
    rows = data.shape[0]
    data = _aligned(data.reshape(-1), field.width // 8)
    if field.kind is Kind.F32:
        return data.view(torch.float32).reshape(rows, field.count)
    if field.kind is Kind.F64:
        return data.view(torch.float64).reshape(rows, field.count)
    if field.width == 8:
        return data.to(torch.int64).reshape(rows, field.count)
    if field.width == 16:
        return data.view(torch.int16).to(torch.int64).reshape(rows, field.count) & 0xFFFF
    if field.width == 32:
        return data.view(torch.int32).to(torch.int64).reshape(rows, field.count) & 0xFFFFFFFF
    padded = torch.zeros(rows, field.count, 8, dtype=torch.uint8, device=data.device)
    padded[:, :, : field.width // 8] = data.reshape(rows, field.count, field.width // 8)
    return padded.view(torch.int64).reshape(rows, field.count)


def _from_bits(field: Field, bits: torch.Tensor) -> torch.Tensor:
    rows = bits.shape[0]
    if field.kind is Kind.UINT and field.width == 1:
        return bits.reshape(rows, field.count)
    if field.kind is Kind.UINT and field.width <= 8:
        shifts = torch.arange(field.width - 1, -1, -1, dtype=torch.uint8, device=bits.device)
        return (bits.reshape(rows, field.count, field.width) << shifts).sum(-1, dtype=torch.int64)
    else:
        shifts = torch.arange(field.width - 1, -1, -1, dtype=torch.int64, device=bits.device)
        raw = (bits.reshape(rows, field.count, field.width).to(torch.int64) << shifts).sum(-1)
    if field.kind is Kind.F32:
        return raw.to(torch.int32).view(torch.float32).reshape(rows, field.count)
    if field.kind is Kind.F64:
        return raw.view(torch.float64).reshape(rows, field.count)
    return raw.reshape(rows, field.count)


def unpack_rows(fields: list[Field], data: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_rows`: ``(rows, payload_bytes(fields))`` uint8 -> field tensors.

    UINT fields come back as int64 -- except 1-bit fields (flags, signs), which come back as
    uint8 0/1 to spare a 64-bit copy -- F32 as float32, F64 as float64, each ``(rows, count)``,
    on the device of ``data``.
    """
    rows = data.shape[0]
    out: dict[str, torch.Tensor] = {}
    offset = 0
    for field in fields:
        if field.count == 0 or field.width == 0:
            dtype = {Kind.F32: torch.float32, Kind.F64: torch.float64}.get(field.kind, torch.int64)
            out[field.name] = torch.zeros(rows, field.count, dtype=dtype, device=data.device)
            continue
        start, stop = offset // 8, (offset + field.bits + 7) // 8
        if offset % 8 == 0 and field.width % 8 == 0:
            out[field.name] = _from_bytes(field, data[:, start:stop])
        else:
            bits = _unpack_bits(data[:, start:stop])
            lead = offset % 8
            out[field.name] = _from_bits(field, bits[:, lead : lead + field.bits])
        offset += field.bits
    return out
