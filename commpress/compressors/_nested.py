"""Shared machinery of the wrappers that hold other compressors (Compose, FCC, ISCC).

- :func:`resolve`: a nested compressor given as a name, an instance or a ``{"name": ..., **params}``
  dict (what a TOML config holds); :func:`spec_of` is its inverse for ``params()``.
- :func:`decode_context`: the validated :class:`Context` of a ``decode`` call (the same checks as
  :meth:`Compressor.decode`) for wrappers that override ``decode``.
- :func:`piece_widths`: the byte length of the next payload of a nested compressor inside a
  concatenation of payloads, read from its header alone (wrappers that concatenate the payloads
  of several calls, FCC and ISCC, split them with it). A wrapper that overrides ``decode``
  provides ``_piece_widths(blobs, offsets, ctx)`` itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from commpress.compressors.base import Compressor, Context
from commpress.errors import ConfigError, PayloadError
from commpress.wire import payload_bytes, unpack_rows


def resolve(spec: Any, owner: str, what: str) -> Compressor:
    """A compressor from a registry name, an instance, or a ``{"name": ..., **params}`` dict."""
    from commpress.compressors.registry import make

    if isinstance(spec, Compressor):
        return spec
    if isinstance(spec, str):
        return make(spec)
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ConfigError(
                f"{owner} {what}={spec!r} is a dict without 'name'; write e.g. {{'name': 'iq', 'levels': 3}}."
            )
        params = {k: v for k, v in spec.items() if k != "name"}
        return make(spec["name"], **params)
    raise ConfigError(
        f"{owner} needs {what} as a compressor name, instance or {{'name': ..., **params}} dict; "
        f"got {spec!r} ({type(spec).__name__})."
    )


def spec_of(comp: Compressor) -> dict[str, Any]:
    """``{"name": ..., **params}``: what :func:`resolve` turns back into an equal compressor."""
    return {"name": comp.name, **comp.params()}


def with_seed(ctx: Context, seed: int) -> Context:
    """The same call with another round seed (a nested part's independent randomness)."""
    return replace(ctx, seed=seed)


def decode_context(
    owner: Compressor, payloads: Any, seed: int, d: int, clients: Any, n: int | None, dtype: torch.dtype, device: Any
) -> Context:
    """Validate the arguments of ``decode`` exactly as :meth:`Compressor.decode` does."""
    return owner._decode_context(payloads, seed, d, clients, n, dtype, device)


def piece_widths(comp: Compressor, blobs: list[bytes], offsets: list[int], ctx: Context) -> list[int]:
    """Byte length of ``comp``'s payload starting at ``offsets[r]`` of ``blobs[r]``, for every row.

    Uses only what a decoder may trust: the compressor's header fields (validated with its
    ``check_header`` before the layout uses them) and its layout for ``ctx``.
    """
    own = getattr(comp, "_piece_widths", None)
    if own is not None:
        return own(blobs, offsets, ctx)
    rows = ctx.rows
    header = None
    header_fields = comp.header_fields(ctx)
    if header_fields:
        hb = payload_bytes(header_fields)
        for r in range(rows):
            if len(blobs[r]) - offsets[r] < hb:
                raise PayloadError(
                    f"{comp.name}: a nested payload of row {r} is cut inside its {hb}-byte header; it is truncated."
                )
        head = bytearray(b"".join(bytes(blobs[r][offsets[r] : offsets[r] + hb]) for r in range(rows)))
        header = unpack_rows(header_fields, torch.frombuffer(head, dtype=torch.uint8).reshape(rows, hb))
        comp.check_header(header, ctx)
    try:
        layout = comp.layout(ctx, header)
    except NotImplementedError:
        raise ConfigError(
            f"{comp.name} cannot be nested where payloads are concatenated (FCC, ISCC): its payload length "
            "is not derivable from its header; give it a _piece_widths(blobs, offsets, ctx) method."
        ) from None
    widths = [0] * rows
    for fields, idx in layout:
        w = payload_bytes(fields)
        for r in idx.tolist():
            widths[r] = w
    return widths


def check_finite(owner: Compressor, out: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Reject a decode whose values overflowed (as :meth:`Compressor.decode` does)."""
    if not bool(torch.isfinite(out).all()):
        raise PayloadError(
            f"{owner.name}: the payload decodes to non-finite values (a header out of range for {dtype}); "
            "it is corrupted or was not made by this compressor."
        )
    return out
