r"""Exact smoothness constants of client Hessians that do not depend on x (L_pm: Szlendak et al., ICLR 2022;
weighted: Tyurin et al. 2022 and Panferov et al. 2024, Assumptions 7-8).

For f_i with constant Hessian A_i (quadratics, least squares):

.. math::
    L_i = \|A_i\|_2,\quad L_- = \|\bar A\|_2,\quad L_+^2 = \lambda_{\max}\Big(\tfrac1n\sum_i A_i^2\Big),\quad
    L_\pm^2 = \lambda_{\max}\Big(\tfrac1n\sum_i (A_i-\bar A)^2\Big),\\
    L_{+,w}^2 = \lambda_{\max}\Big(\sum_i \tfrac{A_i^2}{n^2 w_i}\Big),\quad
    L_{\pm,w}^2 = \lambda_{\max}\Big(\sum_i \tfrac{A_i^2}{n^2 w_i} - \bar A^2\Big).

Two forms: dense ``A`` ``(n, d, d)`` (eigen-solves), and the commuting family
``A_i = alpha_i T + beta_i I`` with T = tridiag(-1, 2, -1), whose eigenvalues are
``alpha_i t_k + beta_i`` with ``t_k = 4 sin^2(k pi / (2(d+1)))``; every constant above is then the
largest of a convex function of t over [t_1, t_d], attained at an end point.
"""

from __future__ import annotations

import math

import torch


def _lmax(M: torch.Tensor) -> float:
    return float(torch.linalg.eigvalsh(M)[..., -1])


def dense_constants(A: torch.Tensor) -> dict:
    """Constants of ``A`` ``(n, d, d)`` symmetric (computed in float64)."""
    A = A.to(torch.float64)
    n = A.shape[0]
    eig = torch.linalg.eigvalsh(A)  # (n, d) ascending
    L_i = torch.maximum(eig[:, 0].abs(), eig[:, -1].abs())
    A_bar = A.mean(0)
    eig_bar = torch.linalg.eigvalsh(A_bar)
    L_minus = float(eig_bar.abs().max())
    A2 = A @ A  # (n, d, d)
    L_plus = math.sqrt(max(_lmax(A2.mean(0)), 0.0))
    D = A - A_bar
    L_pm = math.sqrt(max(_lmax((D @ D).mean(0)), 0.0))

    def weighted(w: torch.Tensor) -> tuple[float, float]:
        S = (A2 / (n * n * w.to(A2.dtype))[:, None, None]).sum(0)
        lp = math.sqrt(max(_lmax(S), 0.0))
        lpm = math.sqrt(max(_lmax(S - A_bar @ A_bar), 0.0))
        return lp, lpm

    return dict(L_i=L_i, L_minus=L_minus, L_plus=L_plus, L_pm=L_pm, mu=float(eig_bar[0]), weighted_fn=weighted)


def tridiag_eigenvalues(d: int) -> torch.Tensor:
    """Eigenvalues ``t_k = 4 sin^2(k pi / (2(d+1)))``, k = 1..d, of tridiag(-1, 2, -1) (ascending)."""
    k = torch.arange(1, d + 1, dtype=torch.float64)
    return 4.0 * torch.sin(k * math.pi / (2 * (d + 1))) ** 2


def tridiag_eigenvectors(d: int) -> torch.Tensor:
    """Orthonormal eigenvectors ``V[j, k] = sqrt(2/(d+1)) sin((j+1)(k+1) pi/(d+1))`` (columns)."""
    j = torch.arange(1, d + 1, dtype=torch.float64)
    return math.sqrt(2.0 / (d + 1)) * torch.sin(torch.outer(j, j) * math.pi / (d + 1))


def tridiag_constants(alpha: torch.Tensor, beta: torch.Tensor, d: int) -> dict:
    """Constants of ``A_i = alpha_i T_d + beta_i I`` (closed forms, float64)."""
    alpha = alpha.to(torch.float64)
    beta = beta.to(torch.float64)
    n = alpha.numel()
    t = tridiag_eigenvalues(d)[[0, -1]]  # the two end points t_1, t_d
    e = alpha[:, None] * t[None, :] + beta[:, None]  # (n, 2): eig(A_i) at t_1 and t_d
    e_bar = e.mean(0)
    L_i = e.abs().max(1).values
    L_minus = float(e_bar.abs().max())
    L_plus = math.sqrt(float(e.pow(2).mean(0).max()))
    L_pm = math.sqrt(max(float((e - e_bar).pow(2).mean(0).max()), 0.0))

    def weighted(w: torch.Tensor) -> tuple[float, float]:
        c = 1.0 / (n * n * w.to(torch.float64))
        s = (c[:, None] * e.pow(2)).sum(0)
        return math.sqrt(float(s.max())), math.sqrt(max(float((s - e_bar.pow(2)).max()), 0.0))

    return dict(L_i=L_i, L_minus=L_minus, L_plus=L_plus, L_pm=L_pm, mu=float(e_bar.min()), weighted_fn=weighted)
