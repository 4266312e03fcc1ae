r"""Smoothness matrices (Safaryan, Hanzely, Richtárik, *Smoothness matrices beat smoothness constants*,
NeurIPS 2021): helpers shared by the problems' ``smoothness_matrices()``.

:math:`f_i` is :math:`\mathbf L_i`-smooth, :math:`\mathbf L_i\succeq0`, if for all x, y

.. math:: f_i(y) \le f_i(x) + \langle\nabla f_i(x), y - x\rangle + \tfrac12\|y - x\|_{\mathbf L_i}^2 .

For a quadratic with Hessian :math:`A_i` the smallest such matrix is :math:`A_i` when
:math:`A_i\succeq0`; for an indefinite :math:`A_i` the problems return its positive part
:math:`A_i^+ = \sum_j\max(\lambda_j, 0)u_ju_j^\top` (a minimal element of
:math:`\{\mathbf L\succeq0: \mathbf L\succeq A_i\}`).
"""

from __future__ import annotations

import torch

__all__ = ["psd_part", "check_smoothness_matrices"]


def psd_part(A: torch.Tensor) -> torch.Tensor:
    """Positive part of symmetric matrices ``(..., d, d)`` (float64): eigenvalues clamped at 0.

    Returns ``A`` itself (as float64) when every eigenvalue is already >= 0.
    """
    A = A.to(torch.float64)
    evals, evecs = torch.linalg.eigh(A)
    if bool((evals >= 0).all()):
        return A.clone()
    out = (evecs * evals.clamp_min(0.0)[..., None, :]) @ evecs.transpose(-1, -2)
    return 0.5 * (out + out.transpose(-1, -2))


def check_smoothness_matrices(L: torch.Tensor, n: int, d: int) -> torch.Tensor:
    """``L`` as float64 ``(n, d, d)``; shape-checked (a problem's own result, so an AssertionError-free check)."""
    L = torch.as_tensor(L).to(torch.float64)
    if L.shape != (n, d, d):
        from commpress.errors import InputError

        raise InputError(f"smoothness matrices must have shape ({n}, {d}, {d}); got {tuple(L.shape)}.")
    return L
