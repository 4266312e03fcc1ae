"""Shared machinery of DRIVE and EDEN: rotate, quantise each rotated coordinate, send a scale.

Vargaftik et al., DRIVE (NeurIPS 2021) and EDEN (ICML 2022). A client rotates its (zero-padded)
vector, :math:`y = R(x')`, quantises every
coordinate of y to a codebook point :math:`c_m` (DRIVE: a sign, EDEN: a Lloyd-Max centroid of the
normalised coordinate), and sends the codes with one float32 scale S; the server returns
:math:`R^{-1}(S c)` truncated to d entries. Subclasses say how codes and the scale are made.
"""

from __future__ import annotations

import math

import torch

from commpress.compressors._checks import check_choice
from commpress.compressors._sparse import check_bool
from commpress.compressors._rotation import Rotation, draw_rotation, padded_dim
from commpress.compressors.base import Compressor, Context, Layout, Message, f32, padded_bits, uniform_layout
from commpress.errors import PayloadError
from commpress.wire import F32, UINT, Field

#: DRIVE's asymptotic (and Haar-rotation upper) vNMSE with the unbiased scale.
HALF_PI_MINUS_ONE = math.pi / 2 - 1


class RotatedQuantizer(Compressor):
    """Base of DRIVE and EDEN: rotation, padding, float32 scale header, b-bit codes."""

    code_bits: int = 1

    def __init__(self, rotation: str = "hadamard", scale: str = "unbiased", shared_rotation: bool = False) -> None:
        owner = type(self).__name__
        self.rotation = check_choice("rotation", rotation, owner, ("hadamard", "haar"))
        self.scale = check_choice("scale", scale, owner, ("unbiased", "biased"))
        self.shared_rotation = check_bool("shared_rotation", shared_rotation, owner)

    def params(self) -> dict:
        return {"rotation": self.rotation, "scale": self.scale, "shared_rotation": self.shared_rotation}

    # ------------------------------------------------------------------ helpers
    def rotated_dim(self, d: int) -> int:
        """Length of the rotated vector: d' = 2^ceil(log2 d) (Hadamard) or d (Haar)."""
        return d if self.rotation == "haar" else padded_dim(d)

    def _draw_rotation(self, ctx: Context) -> Rotation:
        return draw_rotation(
            self.rotation, ctx.seed, f"{self.name}/rot", ctx.n, ctx.d,
            None if ctx.is_full else ctx.clients, shared=self.shared_rotation,
            dtype=ctx.dtype, device=ctx.device,
        )

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        fields = [Field("scale", F32, 32, 1), Field("code", UINT, self.code_bits, self.rotated_dim(ctx.d))]
        return uniform_layout(fields, ctx.rows)

    # ------------------------------------------------------------------ subclass hooks
    def _quantize(self, Y: torch.Tensor, norm: torch.Tensor, gain: float,
                  spare: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``(rows, d')`` and the unrounded scale S ``(rows, 1)`` from the raw rotated rows
        ``Y = gain * R(x')``; ``norm`` = ``||x||`` ``(rows, 1)``; ``spare``: a free buffer like Y or None."""
        raise NotImplementedError

    def _values(self, code: torch.Tensor, step: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A fresh ``(rows, d')`` tensor ``step * c(code)`` (``step`` ``(rows, 1)``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ contract
    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        rot = self._draw_rotation(ctx)
        Y, spare = rot.forward_raw(X)
        norm = torch.linalg.vector_norm(X, dim=1, keepdim=True)
        code, scale = self._quantize(Y, norm, rot.gain, spare)
        return {"scale": f32(scale), "code": code}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        rot = self._draw_rotation(ctx)
        step = message["scale"].to(device=ctx.device, dtype=ctx.dtype) / rot.gain
        return rot.inverse_raw(self._values(message["code"].to(ctx.device), step, ctx.dtype))

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        if bool((message["scale"] < 0).any()):
            raise PayloadError(f"{self.name}: negative scale header; the payload is corrupted.")

    # ------------------------------------------------------------------ theory helpers
    def _bits_per_client(self, d: int) -> int:
        return padded_bits(self.code_bits * self.rotated_dim(d) + 32)

    @staticmethod
    def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        """num / den where den > 0, else 0 (a zero row gets scale 0)."""
        ok = den > 0
        return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))

