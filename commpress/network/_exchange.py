"""Framing of a rank's payload rows for the all-gather, and their checked unframing.

A rank sends its clients' payloads as one byte string (the payloads back to back) plus a small
int64 header of ``HEADER_WORDS + max_rows`` words:

====================  ==========================================================================
word 0                status: 0 = ok, 1 = this rank could not encode (a diverged message),
                      2 = this rank failed otherwise
word 1                CRC-32 of the byte string (catches bytes damaged after framing)
words 2 .. 2+rows-1   the length of each payload, in client order; unused words are 0
====================  ==========================================================================

:func:`unframe` checks every rank's header against what was received (lengths non-negative,
summing to at most the padded width, unused words zero, checksum) and raises
:class:`~commpress.errors.PayloadError` naming the rank before any byte is decoded.
"""

from __future__ import annotations

import zlib

import torch

from commpress.errors import PayloadError

HEADER_WORDS = 2
STATUS_OK, STATUS_DIVERGED, STATUS_FAILED = 0, 1, 2


def frame(payloads: list[bytes] | None, max_rows: int, status: int = STATUS_OK) -> tuple[torch.Tensor, bytes]:
    """``(header, blob)`` of one rank; ``payloads=None`` sends only the failure ``status``."""
    header = torch.zeros(HEADER_WORDS + max_rows, dtype=torch.int64)
    if payloads is None:
        header[0] = status if status != STATUS_OK else STATUS_FAILED
        return header, b""
    blob = b"".join(payloads)
    header[1] = zlib.crc32(blob)
    header[HEADER_WORDS : HEADER_WORDS + len(payloads)] = torch.tensor([len(p) for p in payloads], dtype=torch.int64)
    return header, blob


def blob_width(headers: torch.Tensor) -> int:
    """The padded width of the byte all-gather: the longest blob announced (0 if none)."""
    lengths = headers[:, HEADER_WORDS:].clamp(min=0)
    return int(lengths.sum(dim=1).max()) if headers.numel() else 0


def unframe(headers: torch.Tensor, blobs: list[torch.Tensor], counts: list[int], starts: list[int], what: str) -> list[bytes]:
    """The payloads of every client in client order, from the gathered headers and blobs.

    Args:
        headers: ``(world, HEADER_WORDS + max_rows)`` int64, one row per rank.
        blobs: the ``world`` padded uint8 tensors (empty list when every blob was empty).
        counts: clients per rank; ``starts``: the first client of each rank.
        what: context for error messages (e.g. ``"uplink of round 3"``).
    """
    payloads: list[bytes] = []
    width = int(blobs[0].numel()) if blobs else 0
    for rank, (count, start) in enumerate(zip(counts, starts)):
        row = headers[rank]
        lengths = row[HEADER_WORDS : HEADER_WORDS + count]
        clients = f"clients {start}..{start + count - 1}"
        if bool((lengths < 0).any()) or bool((row[HEADER_WORDS + count :] != 0).any()):
            raise PayloadError(
                f"{what}: rank {rank} ({clients}) sent a malformed header (payload lengths "
                f"{row[HEADER_WORDS:].tolist()[:8]}...); its messages are rejected. The ranks run different "
                "code or the stream is corrupted."
            )
        total = int(lengths.sum())
        if total > width:
            raise PayloadError(
                f"{what}: rank {rank} ({clients}) announced {total} payload bytes but only {width} arrived; "
                "its messages are truncated and rejected."
            )
        raw = blobs[rank][:total].numpy().tobytes() if total else b""
        if zlib.crc32(raw) != int(row[1]):
            raise PayloadError(
                f"{what}: the {total} payload bytes from rank {rank} ({clients}) fail their CRC-32 check "
                f"(got {zlib.crc32(raw):#010x}, announced {int(row[1]):#010x}); they were damaged and are rejected."
            )
        offset = 0
        for size in lengths.tolist():
            payloads.append(raw[offset : offset + size])
            offset += size
    return payloads


def owner_of(client: int, starts: list[int], counts: list[int]) -> int:
    """The rank that holds ``client`` (contiguous blocks)."""
    for rank, (start, count) in enumerate(zip(starts, counts)):
        if start <= client < start + count:
            return rank
    raise IndexError(client)
