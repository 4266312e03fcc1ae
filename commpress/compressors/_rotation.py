r"""Random rotations of DRIVE and EDEN (Vargaftik et al. 2021, 2022), drawn from keyed streams.

Randomized Hadamard: pad x with zeros to :math:`d' = 2^{\lceil\log_2 d\rceil}`, then

.. math:: R(x') = \tfrac{1}{\sqrt{d'}} H_{d'} D x', \qquad R^{-1}(y) = \tfrac{1}{\sqrt{d'}} D H_{d'} y,
          \qquad D = \operatorname{diag}(\varepsilon),

with Rademacher signs :math:`\varepsilon`. The signs come from random 64-bit words: client i's
coordinate m takes bit ``m % 64`` (least significant first) of word ``m // 64`` of its row,
bit 1 meaning :math:`\varepsilon_m = -1`. Client i's words are its first ``ceil(d'/64)`` private
words (:func:`commpress._rng.private_words`, counter-based, computed on the data's device for
the rows asked only), or the shared words of the round (:func:`commpress._rng.shared_words`)
when the rotation is shared. 64 signs per word make the draw ~50x cheaper than one uniform per
coordinate. (Bytes of a word are read little-endian, as on every platform torch supports.)

Haar (``rotation="haar"``, no padding, :math:`O(d^3)` per client, for tests and small d): Q is the
Q factor of a standard Gaussian ``(d, d)`` matrix with the signs of R's diagonal moved into Q
(the Haar measure on O(d), Mezzadri 2007); client i's Gaussians are
:func:`commpress._rng.private_randn` (a CPU generator of its own stream, row-major), the shared
matrix ``torch.randn`` on the shared stream. :math:`R(x) = Qx`, :math:`R^{-1}(y) = Q^\top y`.

:class:`Rotation` applies either to a batch with as few fresh (rows, d') tensors as possible:
the Hadamard path skips the :math:`1/\sqrt{d'}` passes (callers fold the gain into their scalars)
and transforms in place in a buffer that already holds the signs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from commpress._rng import generator, private_randn, private_words, shared_words
from commpress.compressors._hadamard import fwht


def padded_dim(d: int) -> int:
    """:math:`d' = 2^{\\lceil \\log_2 d \\rceil}`."""
    return 1 << (d - 1).bit_length()


def _sign_table(dtype: torch.dtype) -> torch.Tensor:
    """(256, 8): the ±1 signs of the 8 bits (LSB first) of every byte value; bit 1 -> -1."""
    byte = torch.arange(256).unsqueeze(1)
    bits = (byte >> torch.arange(8)) & 1
    return (1 - 2 * bits).to(dtype)


_TABLES: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _sign_words(seed: int, tag: str, n: int, size: int, clients: torch.Tensor | None, shared: bool,
                device: torch.device | str) -> torch.Tensor:
    """The random 64-bit words behind the signs: ``(rows, ceil(size/64))`` int64 (one row if shared)."""
    words_per_row = -(-size // 64)
    if shared:
        return shared_words(seed, tag, words_per_row, device).unsqueeze(0)
    return private_words(seed, tag, n, words_per_row, clients, device)


def rademacher(seed: int, tag: str, n: int, size: int, clients: torch.Tensor | None, *, shared: bool,
               dtype: torch.dtype, device: torch.device | str = "cpu", out: torch.Tensor | None = None) -> torch.Tensor:
    """Rademacher signs ``(rows, size)`` (``(1, size)`` if shared) of ``dtype`` on ``device``.

    ``out``: an optional contiguous ``(rows, size)`` tensor to write into (saves an allocation).
    """
    words = _sign_words(seed, tag, n, size, clients, shared, device)
    device = words.device
    table = _TABLES.get((dtype, device))
    if table is None:
        table = _TABLES[(dtype, device)] = _sign_table(dtype).to(device)
    index = words.view(torch.uint8).reshape(-1).to(torch.int32)  # little-endian: byte j = bits 8j..8j+7
    rows, full = words.shape[0], words.shape[1] * 64
    if out is not None and full == size and out.is_contiguous():
        torch.index_select(table, 0, index, out=out.view(-1, 8))
        return out
    signs = torch.index_select(table, 0, index).view(rows, full)
    return signs[:, :size].contiguous() if size < full else signs


def haar(seed: int, tag: str, n: int, d: int, clients: torch.Tensor | None, *, shared: bool) -> torch.Tensor:
    """Haar-distributed orthogonal matrices ``(rows, d, d)`` (``(1, d, d)`` if shared), float64, CPU."""
    if shared:
        G = torch.randn(1, d, d, generator=generator(seed, tag, -1), dtype=torch.float64)
    else:
        G = private_randn(seed, tag, n, (d, d), clients)
    # One QR per matrix, each on its own (aligned) copy: LAPACK's rounding depends on the memory
    # alignment of its input, so a batched call would give a client other bits in another batch.
    Q, R = (torch.stack(parts) for parts in zip(*(torch.linalg.qr(g.clone()) for g in G)))
    diag = torch.diagonal(R, dim1=-2, dim2=-1)
    return Q * torch.where(diag < 0, -1.0, 1.0).unsqueeze(-2)


@dataclass(frozen=True)
class Rotation:
    """The rotation of one call's rows, as a recipe (the randomness is drawn when applied).

    Works with *raw* rotated vectors :math:`y_{raw} = g\\,R(x')`, ``gain`` :math:`g = \\sqrt{d'}` for
    Hadamard (no normalisation pass: :math:`y_{raw} = H D x'`) and 1 for Haar; callers fold
    :math:`g` into their scalars.
    """

    kind: str
    seed: int
    tag: str
    n: int
    d: int
    clients: torch.Tensor | None
    shared: bool
    dtype: torch.dtype
    device: torch.device

    @property
    def dim(self) -> int:
        """d' (d for Haar)."""
        return self.d if self.kind == "haar" else padded_dim(self.d)

    @property
    def gain(self) -> float:
        return 1.0 if self.kind == "haar" else math.sqrt(self.dim)

    def _Q(self) -> torch.Tensor:
        Q = haar(self.seed, self.tag, self.n, self.d, self.clients, shared=self.shared)
        return Q.to(device=self.device, dtype=self.dtype)

    def _signs(self, out: torch.Tensor | None = None) -> torch.Tensor:
        return rademacher(self.seed, self.tag, self.n, self.dim, self.clients, shared=self.shared,
                          dtype=self.dtype, device=self.device, out=out)

    def forward_raw(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:math:`g R(x')` of every row of ``X`` ``(rows, d)`` -> ``(Y, spare)``: Y ``(rows, d')`` and a
        spare buffer like Y the caller may overwrite (None for Haar)."""
        if self.kind == "haar":
            return torch.matmul(self._Q(), X.unsqueeze(-1)).squeeze(-1), None
        rows, d, dim = X.shape[0], self.d, self.dim
        if self.shared:
            buf = torch.empty(rows, dim, dtype=X.dtype, device=X.device)
            torch.mul(X, self._signs()[:, :d], out=buf[:, :d])
        else:
            buf = self._signs(out=torch.empty(rows, dim, dtype=X.dtype, device=X.device))
            buf[:, :d].mul_(X)
        if dim > d:
            buf[:, d:].zero_()
        spare = torch.empty_like(buf)
        Y = fwht(buf, inplace=True, scratch=spare)
        return Y, (buf if Y is spare else spare)

    def inverse_raw(self, V: torch.Tensor) -> torch.Tensor:
        """:math:`[R^{-1}(V)]_{1..d} \\cdot g` for ``V`` ``(rows, d')`` (V is consumed: overwritten)."""
        if self.kind == "haar":
            return torch.matmul(self._Q().transpose(-1, -2), V.unsqueeze(-1)).squeeze(-1)
        spare = torch.empty_like(V)
        Z = fwht(V, inplace=True, scratch=spare)
        if self.shared:
            Z.mul_(self._signs())
        else:
            Z.mul_(self._signs(out=V if Z is spare else spare))
        return Z if self.dim == self.d else Z[:, : self.d].contiguous()


def draw_rotation(kind: str, seed: int, tag: str, n: int, d: int, clients: torch.Tensor | None, *, shared: bool,
                  dtype: torch.dtype, device: torch.device) -> Rotation:
    """The rotation of a call (for Haar with ``shared``, one matrix for all rows)."""
    return Rotation(kind, seed, tag, n, d, clients, shared, dtype, device)
