"""Stochastic rounding onto powers of two, by IEEE-754 bit manipulation (vectorised, exact).

Used by natural dithering and natural compression (Horváth et al., Natural compression for
distributed deep learning, 2019). The grid is
:math:`\\{0\\} \\cup \\{2^j : j \\ge m\\}`; for :math:`z \\ge 0` the lower grid point is :math:`2^{\\lfloor\\log_2 z\\rfloor}` (read
off the exponent field) or 0 below :math:`2^m`, and the code of grid point :math:`2^j` is :math:`j - m + 1`
(code 0 is the point 0). Codes are uint8 (at most 255 grid points).

Speed: the hot tensors are large, and a fresh large tensor costs a page-faulting first touch, so
the functions work in place where they can and build narrow (uint8/int16) intermediates.
"""

from __future__ import annotations

import torch

#: dtype -> (integer view dtype, mantissa bits, exponent bits, exponent bias)
_FORMAT = {
    torch.float32: (torch.int32, 23, 8, 127),
    torch.float64: (torch.int64, 52, 11, 1023),
}


def min_normal_exponent(dtype: torch.dtype) -> int:
    """The exponent of the smallest normal number of ``dtype`` (-126 for float32)."""
    return 1 - _FORMAT[dtype][3]


def split(z: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower grid code and position of every ``z >= 0`` on the grid {0} U {2^j : j >= m}.

    Returns ``(code, t)``: ``code`` (uint8, 0 for z < 2^m) and ``t = (z - low) / (high - low)``
    in [0, 1) with low/high the grid points around z. ``z`` is consumed (overwritten by ``t``).
    Only ``m = 0`` (any dtype) and ``m =`` :func:`min_normal_exponent` (the dtype's own subnormal
    boundary) are supported; scale z by a power of two (exact) to reach them. The codes must fit
    in uint8 (z < 2^(m + 255)).
    """
    int_dtype, mant, _, bias = _FORMAT[z.dtype]
    if m not in (0, 1 - bias):
        raise ValueError(f"split supports m = 0 or m = {1 - bias} for {z.dtype}; got m={m}.")
    field = z.view(int_dtype) >> mant  # the biased exponent (z >= 0: no sign bit); 0 for subnormal/zero
    offset = bias + m - 1  # code = field - offset, or 0 below 2^m
    code = field.to(torch.uint8 if z.dtype == torch.float32 else torch.int16)
    if offset:
        code.clamp_(min=offset).sub_(offset)
    code = code.to(torch.uint8)
    low = field.bitwise_left_shift_(mant).view(z.dtype)  # 2^floor(log2 z) (normal z), 0 (subnormal/zero)
    if m == 0:
        low.floor_()  # the powers below 1 are not grid points: low = 0 there
    t = z.sub_(low)
    t.div_(low.clamp_min_(2.0**m))  # width: low (geometric part) or 2^m (bottom interval [0, 2^m])
    return code, t


def signed_pow2(code: torch.Tensor, sign: torch.Tensor, lowest: int, dtype: torch.dtype, max_code: int = 255) -> torch.Tensor:
    """The values ``(1 - 2 sign) * 2^(lowest + code - 1)`` (0 where code = 0) as ``dtype``, built bitwise.

    ``code`` is a non-negative integer tensor with entries <= ``max_code`` (<= 255), ``sign`` 0/1
    (bool or integer); the exponents ``lowest .. lowest + max_code - 1`` must be normal numbers of
    ``dtype``.
    """
    int_dtype, mant, ebits, bias = _FORMAT[dtype]
    k = lowest + bias  # exponent field of code 1 (>= 1)
    narrow = torch.uint8 if max_code + k - 1 <= 255 else torch.int16  # the exponent field fits
    c = code.to(narrow)
    field = c if k == 1 else c.clamp_max(1).mul_(k - 1).add_(c)  # 0 for code 0, code + k - 1 otherwise
    # The top 16 bits of the float: sign, exponent field, high mantissa bits (0), as an int16.
    top = field.to(torch.int16).bitwise_left_shift_(15 - ebits)
    top.sub_(sign.to(torch.int16).bitwise_left_shift_(15))  # sign bit: - 2^15 in two's complement
    bits = top.to(int_dtype).bitwise_left_shift_(torch.iinfo(int_dtype).bits - 16)
    return bits.view(dtype)
