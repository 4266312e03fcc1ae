"""The quadratic task generator "Algorithm 6" (spread-out L_i, for weighted MARINA / ISCC)."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._rng import shared_generator
from commpress.problems._quadratic_base import TridiagonalQuadratic
from commpress.problems.registry import register


@register("quadratic_spread")
class QuadraticSpread(TridiagonalQuadratic):
    r"""Synthetic quadratics whose smoothness constants L_i spread out with s (CQ paper App. D.3, Algorithm 6).

    .. math::
        \nu_i^s = 1 + s\,\eta_i,\ \eta_i\sim\mathrm{Exp}(1),\quad \nu_i^b = s\,\xi_i^b,\ \xi_i^b\sim\mathcal N(0,1),\\
        b_i = \tfrac{L\nu_i^s}{4}(-1+\nu_i^b)\,e_1,\qquad A_i = \tfrac{L\nu_i^s}{4}T_d + \lambda I \succ 0,

    :math:`x^0 = (\sqrt d, 0, \dots, 0)`. Unlike Algorithm 5 there is no common eigenvalue shift.
    The heavy right tail of :math:`\nu^s` makes :math:`L_{QM}/L_{AM}` grow with s, the regime of
    the weighted constants :math:`L_{+,w}, L_{\pm,w}` (exact, :meth:`Smoothness.weighted`).

    .. note::
       The steps are those of the paper's Algorithm 6, but its laws of :math:`\nu^s, \nu^b` and
       exact :math:`A_i, b_i` formulas are **not recovered** (Panferov et al. 2024, App. D.3): the
       laws above are our labelled placeholder, not the paper's.

    Draws: stream ``(seed, "problems/quadratic_spread")``, one ``(n, 2)`` uniform draw, per client
    :math:`\eta` (inverse CDF of column 0) then :math:`\xi^b` (inverse normal CDF of column 1).

    Args: as :class:`~commpress.problems.quadratic.Quadratic` (``reg`` = λ > 0, default 1e-6).
    """

    def __init__(
        self,
        n_clients: int = 10,
        dim: int = 1000,
        noise_scale: float = 1.0,
        reg: float = 1e-6,
        scale: float = 1.0,
        seed: int = 0,
        grad_noise: float = 0.0,
        dtype: Any = "float64",
    ) -> None:
        owner = "quadratic_spread"
        params = self._check_generator(owner, n_clients, dim, noise_scale, reg, scale, seed, grad_noise, dtype)
        n, d, s, lam, L, seed = (params[k] for k in ("n_clients", "dim", "noise_scale", "reg", "scale", "seed"))
        u = torch.rand((n, 2), generator=shared_generator(seed, "problems/quadratic_spread"), dtype=torch.float64)
        u = u + 2.0**-54  # in (0, 1): both inverse CDFs finite
        eta = -torch.log1p(-u[:, 0])
        xi_b = torch.special.ndtri(u[:, 1])
        self.nu_s = 1.0 + s * eta
        self.nu_b = s * xi_b
        alpha = L * self.nu_s / 4.0
        b = torch.zeros((n, d), dtype=torch.float64)
        b[:, 0] = alpha * (-1.0 + self.nu_b)
        x0 = torch.zeros(d, dtype=torch.float64)
        x0[0] = math.sqrt(d)
        self.params = params
        self._setup(alpha, torch.full((n,), lam, dtype=torch.float64), b, x0)

    def _notes(self) -> str:
        return "exact closed forms; the generator's laws are our placeholder (the paper's are not recovered)"
