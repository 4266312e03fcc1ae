"""Shared machinery of the sparsifiers (RandK, TopK, Wangni, sketches): k, index sets on the wire.

- :func:`check_k_params` / :func:`resolve_k`: ``k`` (an int) or ``ratio`` (a fraction of d), resolved
  per call from d (the default must work for every d >= 1);
- index sets (our wire convention): a set of ``c`` of d indices travels as ``c`` indices of
  ``ceil(log2 d)`` bits, ascending, or as a d-bit bitmap, whichever is shorter (ties: the list;
  d = 1 needs 0 bits). :func:`index_fields` gives the fields, :func:`index_message` the numbers,
  :func:`mask_from_message` the validated mask back.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import torch

from commpress._rng import row_counts
from commpress.compressors._checks import check_float, check_int
from commpress.errors import ConfigError, PayloadError
from commpress.wire import UINT, Field

__all__ = ["check_k_params", "check_k_for_d", "resolve_k", "index_width", "index_bits", "uses_bitmap", "index_fields", "index_message",
           "mask_from_message", "scatter_kept", "row_counts", "check_bool", "ragged_rows", "unragged"]


def check_bool(name: str, value: Any, owner: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner} needs {name}=True or False; got {name}={value!r}.")
    return value


def check_k_params(k: Any, ratio: Any, owner: str) -> tuple[int | None, float | None]:
    """Validate ``k`` (int >= 1) or ``ratio`` (in (0, 1]); at most one of them."""
    if k is not None and ratio is not None:
        raise ConfigError(f"{owner} takes k or ratio, not both; got k={k!r}, ratio={ratio!r}. Drop one of them.")
    if k is not None:
        k = check_int("k", k, owner, hint=" k is the number of coordinates kept per client (1 <= k <= d).")
    if ratio is not None:
        ratio = check_float("ratio", ratio, owner, low=0.0, high=1.0, low_open=True,
                            hint=" ratio is the kept fraction of the d coordinates, e.g. ratio=0.01.")
    return k, ratio


def resolve_k(k: int | None, ratio: float | None, d: int, default_ratio: float, rounding: str) -> int:
    """The k of a call: ``k``, or ``max(1, round(ratio d))`` (``rounding`` = ``"half_up"`` or ``"ceil"``).

    The ratio is taken as the decimal it prints as (``Fraction(repr(ratio))``), so ``0.1 * 30``
    is 3, not 3.0000000000000004 (which ``ceil`` would make 4).
    """
    if k is not None:
        return k
    r = Fraction(repr(float(default_ratio if ratio is None else ratio))) * d
    value = math.ceil(r) if rounding == "ceil" else math.floor(r + Fraction(1, 2))
    return max(1, value)


def check_k_for_d(k: int, d: int, owner: str) -> None:
    if not 1 <= k <= d:
        raise ConfigError(
            f"{owner} needs 1 <= k <= d; got k={k} with d={d}. Choose k in [1, {d}], "
            f"or pass ratio= (a fraction of d) instead of k."
        )


def index_width(d: int) -> int:
    """Bits of one index: ceil(log2 d) (0 for d = 1)."""
    return (d - 1).bit_length()


def uses_bitmap(count: int, d: int) -> bool:
    """A d-bit bitmap is strictly shorter than ``count`` indices of ceil(log2 d) bits."""
    return d < count * index_width(d)


def index_bits(count: int, d: int) -> int:
    """Information bits of a set of ``count`` indices: min(count ceil(log2 d), d)."""
    return min(count * index_width(d), d)


def index_fields(count: int, d: int) -> list[Field]:
    """The wire fields of a set of ``count`` indices out of d."""
    if uses_bitmap(count, d):
        return [Field("bitmap", UINT, 1, d)]
    return [Field("index", UINT, index_width(d), count)]


def index_message(mask: torch.Tensor, counts: torch.Tensor | int, indices: torch.Tensor | None = None,
                  flat: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The numbers of the index fields of every row of a bool ``(rows, d)`` mask.

    ``counts``: the number of True per row (an int if all rows agree; then ``indices``, the
    ``(rows, counts)`` ascending positions, may be given to spare a scan; otherwise ``flat``, the
    row-major flat positions of the True entries, may be). Returns ``"index"``
    (``(rows, max count)`` int64, ascending, zero-padded) for the rows that send a list and/or
    ``"bitmap"`` (``(rows, d)`` uint8) for the rows that send a bitmap.
    """
    rows, d = mask.shape
    if isinstance(counts, int):
        if uses_bitmap(counts, d):
            return {"bitmap": mask.view(torch.uint8)}
        if indices is None:
            flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
            indices = flat.view(rows, counts) - (torch.arange(rows, device=flat.device) * d).unsqueeze(1)
        return {"index": indices}
    out: dict[str, torch.Tensor] = {}
    width = index_width(d)
    bitmap_rows = d < counts * width
    if bool(bitmap_rows.any()):
        out["bitmap"] = mask.view(torch.uint8)
    list_rows = ~bitmap_rows
    if bool(list_rows.any()):
        if flat is None:
            flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        r_idx = torch.div(flat, d, rounding_mode="floor")
        c_idx = flat - r_idx * d
        start = torch.cumsum(counts, 0) - counts
        slots = max(1, int(counts[list_rows].max()))
        pos = torch.arange(r_idx.numel()) - start[r_idx]
        keep = list_rows[r_idx]
        index = torch.zeros(rows, slots, dtype=torch.int64)
        index[r_idx[keep], pos[keep]] = c_idx[keep]
        out["index"] = index
    return out


def ragged_rows(mask: torch.Tensor, counts: torch.Tensor, values: torch.Tensor,
                flat: torch.Tensor | None = None) -> torch.Tensor:
    """The row-major values of the True entries of ``mask`` as ``(rows, max count)`` rows,
    zero-padded (each row's values in index order). ``flat``: their flat positions, if known."""
    rows, d = mask.shape
    slots = max(1, int(counts.max())) if counts.numel() else 1
    out = torch.zeros(rows, slots, dtype=values.dtype, device=values.device)
    if values.numel():
        if flat is None:
            flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        r_idx = torch.div(flat, d, rounding_mode="floor")
        start = torch.cumsum(counts, 0) - counts
        out[r_idx, torch.arange(r_idx.numel(), device=r_idx.device) - start[r_idx]] = values
    return out


def unragged(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ragged_rows`: the first ``counts[i]`` values of every row, row-major, flat."""
    valid = torch.arange(values.shape[1], device=values.device).unsqueeze(0) < counts.to(values.device).unsqueeze(1)
    return values.masked_select(valid)


def scatter_kept(out: torch.Tensor, message: dict[str, torch.Tensor], k: int, values: torch.Tensor,
                 name: str) -> torch.Tensor:
    """Write the ``(rows, k)`` values of a fixed-size index set (validated) into the zero matrix ``out``."""
    rows, d = out.shape
    if uses_bitmap(k, d):
        mask = mask_from_message(message, torch.full((rows,), k, dtype=torch.int64), d, name)
        return out.masked_scatter_(mask.to(out.device), values)
    index = message["index"][:, :k]
    if bool((index >= d).any()):
        raise PayloadError(f"{name}: an index is >= d={d}; the payload is corrupted.")
    if k > 1 and bool((index[:, 1:] <= index[:, :-1]).any()):
        raise PayloadError(f"{name}: the index list is not strictly ascending; the payload is corrupted.")
    return out.scatter_(1, index.to(device=out.device, dtype=torch.int64), values)


def mask_from_message(message: dict[str, torch.Tensor], counts: torch.Tensor, d: int, name: str) -> torch.Tensor:
    """The validated bool ``(rows, d)`` mask of the index fields (``counts`` ``(rows,)`` int64).

    Raises :class:`PayloadError` for an index >= d, a list that is not strictly ascending, or a
    bitmap whose number of ones is not the count.
    """
    rows = counts.numel()
    width = index_width(d)
    bitmap_rows = d < counts * width
    if bool(bitmap_rows.all()):  # one d-bit bitmap per row: it is the mask
        bitmap = message["bitmap"][:, :d]
        bitmap = bitmap.view(torch.bool) if bitmap.dtype == torch.uint8 and bitmap.is_contiguous() else bitmap.to(torch.bool)
        if not bool(torch.equal(row_counts(bitmap), counts)):
            raise PayloadError(f"{name}: the bitmap's number of ones differs from the count; the payload is corrupted.")
        return bitmap
    mask = torch.zeros(rows, d + 1, dtype=torch.bool)
    list_rows = ~bitmap_rows
    if bool(list_rows.any()):
        index = message["index"]
        slots = index.shape[1]
        valid = torch.arange(slots).unsqueeze(0) < counts.unsqueeze(1)
        valid &= list_rows.unsqueeze(1)
        if bool((index.masked_select(valid) >= d).any()):
            raise PayloadError(f"{name}: an index is >= d={d}; the payload is corrupted.")
        if slots > 1:
            steps = index[:, 1:] - index[:, :-1]
            if bool((steps.masked_select(valid[:, 1:]) <= 0).any()):
                raise PayloadError(f"{name}: the index list is not strictly ascending; the payload is corrupted.")
        mask.scatter_(1, torch.where(valid, index, torch.full_like(index, d)), True)
    mask = mask[:, :d]
    if bool(bitmap_rows.any()):
        bitmap = message["bitmap"].to(torch.bool)
        rows_b = bitmap_rows.nonzero().flatten()
        if not bool(torch.equal(row_counts(bitmap[rows_b].contiguous()), counts[rows_b])):
            raise PayloadError(f"{name}: the bitmap's number of ones differs from the count; the payload is corrupted.")
        mask[rows_b] = bitmap[rows_b]
    return mask.contiguous()
