"""Fast Walsh-Hadamard transform, batched over rows (used by DRIVE and EDEN: Vargaftik et al., NeurIPS 2021, ICML 2022).

:math:`H_1 = [1]`, :math:`H_{2m} = \\begin{bmatrix} H_m & H_m \\\\ H_m & -H_m \\end{bmatrix}` (Sylvester
order, symmetric, :math:`H_{d}^2 = d I`). Because :math:`H_{2^L} = H_{2^{k_1}} \\otimes \\dots \\otimes
H_{2^{k_s}}` for any split :math:`k_1 + \\dots + k_s = L`, the transform of a row is ``s`` stages; stage
``i`` views the row as ``(A, 2^{k_i}, B)`` (``A`` = product of the earlier factors, ``B`` of the
later ones) and multiplies the middle axis by the small dense matrix :math:`H_{2^{k_i}}`, one batched
GEMM per stage, ping-ponging between two buffers (no transposes, no allocation per stage).

Measured on one core (AVX-512, torch 2.13, ``(16, 2^20)`` float32; ``torch.rand`` of the same
shape ~80-95 ms): the radix-2 butterfly on strided views (``out[:, :, 0] = a + b``,
``out[:, :, 1] = a - b``, 20 stages) ~300 ms; stages of ``H_16`` (``[4, 4, 4, 4, 4]``) ~80 ms;
stages of ``H_32`` ~90-130 ms; stages of ``H_8`` ~300 ms (GEMMs with a short inner ``B`` axis
are slow). Hence the plan: stages of 4 bits, the remainder ``L mod 4`` as a first stage acting on
the leading (most significant) bits where ``B`` is long and the GEMM is cheap; ``L <= 6`` is one
GEMM. :func:`_fwht_butterfly` keeps the butterfly as the reference the tests compare against.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


@lru_cache(maxsize=None)
def _plan(bits: int) -> tuple[int, ...]:
    """Stage sizes (in bits) from the most to the least significant index bits."""
    if bits <= 6:
        return (bits,) if bits else ()
    stages = [4] * (bits // 4)
    if bits % 4:
        stages.insert(0, bits % 4)
    return tuple(stages)


def hadamard_matrix(bits: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """The dense Sylvester Hadamard matrix :math:`H_{2^{bits}}` (entries ±1)."""
    return _hadamard_matrix(bits, dtype, torch.device(device)).clone()


@lru_cache(maxsize=64)
def _hadamard_matrix(bits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    idx = torch.arange(1 << bits)
    # Sylvester order: H[a, b] = (-1)^{popcount(a & b)}
    parity = torch.zeros(1 << bits, 1 << bits, dtype=torch.int64)
    anded = idx.unsqueeze(1) & idx.unsqueeze(0)
    for shift in range(bits):
        parity ^= (anded >> shift) & 1
    return (1 - 2 * parity).to(dtype=dtype, device=device)


def fwht(X: torch.Tensor, *, normalized: bool = False, inplace: bool = False,
         scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Walsh-Hadamard transform of every row: ``X @ H`` (``H`` symmetric), ``X`` of shape ``(rows, 2^L)``.

    With ``normalized=True`` the result is divided by :math:`\\sqrt{2^L}` (an orthogonal, self-inverse
    map). By default returns a new tensor and leaves ``X`` alone. With ``inplace=True`` (``X``
    contiguous) the stages ping-pong between ``X`` and ``scratch`` (a tensor like ``X``, allocated
    if None): the result is whichever of the two the last stage wrote, and the other one is left
    as garbage. Fresh large tensors cost page faults (often more than a stage's arithmetic), so
    callers on the hot path pass ``inplace=True`` and reuse the spare buffer.
    """
    rows, size = X.shape
    bits = size.bit_length() - 1
    if size != 1 << bits:
        raise ValueError(f"fwht needs a power-of-two row length; got {size}")
    plan = _plan(bits)
    if inplace:
        if not X.is_contiguous():
            raise ValueError("fwht(inplace=True) needs a contiguous tensor")
        src = X
        buffers = [scratch if scratch is not None else torch.empty_like(X), X] if plan else []
    else:
        src = X.contiguous()
        buffers = [torch.empty_like(src), torch.empty_like(src) if len(plan) > 1 else None]
    outer, inner = 1, size
    for i, k in enumerate(plan):
        m = 1 << k
        inner //= m
        H = _hadamard_matrix(k, X.dtype, X.device)
        out = buffers[i % 2]
        if inner == 1:
            torch.matmul(src.view(-1, m), H, out=out.view(-1, m))
        else:
            torch.matmul(H, src.view(rows * outer, m, inner), out=out.view(rows * outer, m, inner))
        src = out
        outer *= m
    if src is X and not inplace:
        src = X.clone()
    if normalized and size > 1:
        src.mul_(1.0 / math.sqrt(size))
    return src


def _fwht_butterfly(X: torch.Tensor) -> torch.Tensor:
    """Reference radix-2 butterfly on strided views (unnormalized); slower, kept for tests and benchmarks."""
    rows, size = X.shape
    src, dst = X.clone(), torch.empty_like(X)
    half = 1
    while half < size:
        a = src.view(rows, -1, 2, half)
        o = dst.view(rows, -1, 2, half)
        torch.add(a[:, :, 0], a[:, :, 1], out=o[:, :, 0])
        torch.sub(a[:, :, 0], a[:, :, 1], out=o[:, :, 1])
        src, dst = dst, src
        half *= 2
    return src
