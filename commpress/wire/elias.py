"""Elias-omega coding and QSGD's variable-length sparse stream (Alistarh et al., QSGD, NeurIPS 2017).

The Elias-omega code :math:`\\omega(N)`, :math:`N \\ge 1`: start with ``"0"``; while :math:`N > 1`
prepend the binary form of :math:`N` (no leading zeros) and set :math:`N \\leftarrow` (its length) - 1.
Decoding: :math:`N \\leftarrow 1`; read a bit; if it is 0 return :math:`N`; otherwise read :math:`N` more
bits and set :math:`N` to the integer written "1" followed by them. Lengths: :math:`|\\omega(1)| = 1`,
:math:`|\\omega(2)| = |\\omega(3)| = 3`, :math:`|\\omega(4..7)| = 6`, :math:`|\\omega(8..15)| = 7`.

The *sparse stream* of a vector of levels :math:`\\alpha \\in \\{0, \\dots, s\\}^d` with sign bits (QSGD,
Alistarh et al. 2017, after their Elias encoding; the count prefix is ours so that the stream is
self-delimiting under byte padding):

    omega(nnz + 1), then for every i with alpha_i > 0 in increasing order:
    omega(gap_i), one sign bit (1 = negative), omega(alpha_i),

with ``gap_i = i - i_prev`` in 1-based positions and ``i_prev = 0`` at the start. Bits are
written most-significant first and the payload is padded with zero bits to a whole byte.

Encoding and the exact length are vectorised over rows and nonzeros (torch); decoding is a
per-row bit loop (the stream is sequential), acceptable because the format is an option.
"""

from __future__ import annotations

import torch

from commpress.errors import PayloadError
from commpress.wire.pack import _pack_bits

#: Largest integer the codec accepts: keeps every codeword within 63 bits (:math:`|\omega(2^{32} - 1)| = 43`).
MAX_VALUE = (1 << 32) - 1


def omega_bits(value: int) -> str:
    """The Elias-omega codeword of ``value >= 1`` as a string of ``'0'``/``'1'``."""
    value = int(value)
    if not 1 <= value <= MAX_VALUE:
        raise ValueError(f"Elias-omega codes integers in [1, {MAX_VALUE}]; got {value}.")
    code = "0"
    while value > 1:
        binary = format(value, "b")
        code = binary + code
        value = len(binary) - 1
    return code


def omega_length(values: torch.Tensor) -> torch.Tensor:
    """Lengths :math:`|\\omega(N)|` of every entry of an integer tensor (entries >= 1), vectorised."""
    return omega_codes(values)[1]


def omega_codes(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Codewords of every entry as (int64 code, int64 length), vectorised.

    The codeword's bits are the low ``length`` bits of ``code``, most significant first.
    Entries must lie in ``[1, MAX_VALUE]`` (every codeword then fits in 63 bits).
    """
    n = values.to(torch.int64)
    code = torch.zeros_like(n)  # the terminating "0"
    length = torch.ones_like(n)
    while True:
        active = n > 1
        if not bool(active.any()):
            return code, length
        width = _bit_length(n)
        code = torch.where(active, code | (n << length), code)
        length = length + torch.where(active, width, 0)
        n = torch.where(active, width - 1, n)


def _bit_length(n: torch.Tensor) -> torch.Tensor:
    """Number of binary digits of every non-negative int64 entry (0 for 0)."""
    width = torch.zeros_like(n)
    m = n
    for shift in (32, 16, 8, 4, 2, 1):
        big = m >= (1 << shift)
        width = width + big * shift
        m = torch.where(big, m >> shift, m)
    return width + (m > 0)


def _nonzeros(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, column, gap, nnz-per-row) of the nonzero levels, row-major (increasing column)."""
    rows, d = levels.shape
    if d > MAX_VALUE - 1:
        raise ValueError(f"the Elias stream needs d < {MAX_VALUE}; got d={d}.")
    nz_row, nz_col = (levels > 0).nonzero(as_tuple=True)
    position = nz_col + 1  # 1-based
    previous = torch.zeros_like(position)
    if position.numel() > 1:
        previous[1:] = torch.where(nz_row[1:] == nz_row[:-1], position[:-1], 0)
    return nz_row, nz_col, position - previous, torch.bincount(nz_row, minlength=rows)


def stream_length(levels: torch.Tensor) -> torch.Tensor:
    """Exact bit length of every row's sparse stream, ``(rows,)`` int64, vectorised.

    ``levels`` is ``(rows, d)`` with entries in ``[0, MAX_VALUE]`` (each nonzero costs one sign bit
    whatever its sign, so the signs are not needed).
    """
    nz_row, nz_col, gap, nnz = _nonzeros(levels)
    per_entry = omega_length(gap) + 1 + omega_length(levels[nz_row, nz_col])
    body = torch.zeros(levels.shape[0], dtype=torch.int64).index_add_(0, nz_row, per_entry)
    return omega_length(nnz + 1) + body


def encode_stream(signs: torch.Tensor, levels: torch.Tensor) -> list[torch.Tensor]:
    """The sparse stream of every row as a 0/1 uint8 tensor of its exact length (one per row).

    ``signs`` and ``levels`` are ``(rows, d)``; a sign is sent (1 = negative) only where the level
    is nonzero. Vectorised: every codeword is built at once, then expanded to bits.
    """
    rows = levels.shape[0]
    nz_row, nz_col, gap, nnz = _nonzeros(levels)
    values = levels[nz_row, nz_col].to(torch.int64)
    if bool((values > MAX_VALUE).any()):
        raise ValueError(f"the Elias stream codes levels up to {MAX_VALUE}; got {int(values.max())}.")
    gap_code, gap_len = omega_codes(gap)
    lvl_code, lvl_len = omega_codes(values)
    sign_code = (signs[nz_row, nz_col] != 0).to(torch.int64)
    head_code, head_len = omega_codes(nnz + 1)
    # Stream order per row: the head, then (gap, sign, level) for every nonzero.
    slots = 1 + 3 * nnz
    starts = torch.cumsum(slots, 0) - slots
    total = int(slots.sum())
    codes = torch.empty(total, dtype=torch.int64)
    lengths = torch.empty(total, dtype=torch.int64)
    codes[starts], lengths[starts] = head_code, head_len
    if nz_row.numel():
        rank = torch.arange(nz_row.numel()) - (torch.cumsum(nnz, 0) - nnz)[nz_row]
        slot = ((starts[nz_row] + 1 + 3 * rank).unsqueeze(1) + torch.arange(3)).reshape(-1)
        codes[slot] = torch.stack([gap_code, sign_code, lvl_code], dim=1).reshape(-1)
        lengths[slot] = torch.stack([gap_len, torch.ones_like(gap_len), lvl_len], dim=1).reshape(-1)
    # Expand codewords to bits, most significant first.
    code_of_bit = torch.repeat_interleave(torch.arange(total), lengths)
    first_bit = torch.cumsum(lengths, 0) - lengths
    shift = lengths[code_of_bit] - 1 - (torch.arange(code_of_bit.numel()) - first_bit[code_of_bit])
    bits = ((codes[code_of_bit] >> shift) & 1).to(torch.uint8)
    row_bits = torch.zeros(rows, dtype=torch.int64).index_add_(0, torch.repeat_interleave(torch.arange(rows), slots), lengths)
    return list(torch.split(bits, row_bits.tolist()))


def pack_bits(bits: torch.Tensor) -> bytes:
    """A 0/1 uint8 vector as bytes, most significant bit first, zero-padded to a whole byte
    (packed on its device by :func:`commpress.wire.pack._pack_bits`, then read on the CPU)."""
    return _pack_bits(bits.reshape(1, -1)).cpu().numpy().tobytes()


class _Reader:
    """Most-significant-first bit reader over a bytes object that raises PayloadError at the end."""

    __slots__ = ("bits", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.bits = "".join(format(b, "08b") for b in data)
        self.pos = 0
        self.what = what

    def read(self, k: int) -> str:
        end = self.pos + k
        if end > len(self.bits):
            raise PayloadError(f"{self.what}: the Elias stream ends early (needs bit {end}, has {len(self.bits)}); "
                               "the payload is truncated or corrupted.")
        chunk = self.bits[self.pos:end]
        self.pos = end
        return chunk

    def omega(self, limit: int) -> int:
        """Read one omega codeword and reject a value above ``limit``.

        The values read along a codeword increase strictly (each group is longer than the value
        that announced it), so reading stops as soon as one exceeds ``limit``: a hostile stream
        cannot make us read more than ``limit + 1`` bits in one group.
        """
        n = 1
        while n <= limit and self.read(1) == "1":
            n = int("1" + self.read(n), 2)
        if n > limit:
            raise PayloadError(
                f"{self.what}: an Elias-coded value {n} exceeds its bound {limit}; the payload is corrupted."
            )
        return n


def decode_stream(data: bytes, d: int, max_level: int, what: str = "elias") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Parse one row's sparse stream (``data`` = the stream's bytes, padding included).

    Returns ``(positions, signs, levels)`` of the nonzero entries, int64 ``(nnz,)`` each, positions
    0-based and increasing. Raises :class:`PayloadError` if the stream is truncated, a
    count/gap/level is out of range (count <= d, positions < d, 1 <= level <= ``max_level``), or
    the payload holds anything after the stream but < 8 zero padding bits.
    """
    reader = _Reader(data, what)
    nnz = reader.omega(d + 1) - 1
    signs = [0] * nnz
    levels = [0] * nnz
    positions = [0] * nnz
    pos = 0
    for j in range(nnz):
        pos += reader.omega(d - pos)
        positions[j] = pos - 1
        signs[j] = 1 if reader.read(1) == "1" else 0
        levels[j] = reader.omega(max_level)
    rest = reader.bits[reader.pos:]
    if len(rest) >= 8 or "1" in rest:
        raise PayloadError(
            f"{what}: {len(rest)} bits follow the Elias stream (expected < 8 zero padding bits); "
            "the payload is over-long or corrupted."
        )
    as_tensor = lambda values: torch.tensor(values, dtype=torch.int64)  # noqa: E731
    return as_tensor(positions), as_tensor(signs), as_tensor(levels)
