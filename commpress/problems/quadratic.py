"""The quadratic task generator "Algorithm 5" (controls the Hessian variance L_±)."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._rng import shared_generator
from commpress.errors import ConfigError
from commpress.problems._quadform import tridiag_eigenvalues
from commpress.problems._quadratic_base import TridiagonalQuadratic
from commpress.problems.registry import register


def _noise_vector(owner: str, name: str, value: Any, n: int) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if t.numel() != n or not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{owner}: {name} must be {n} finite numbers (one per client); got {value!r}.")
    return t


@register("quadratic")
class Quadratic(TridiagonalQuadratic):
    r"""Synthetic quadratics with controlled Hessian variance (CQ paper App. D.3, Algorithm 5).

    For clients i = 1..n, with :math:`\xi_i^s, \xi_i^b \sim \mathcal N(0,1)` and
    :math:`T_d = \mathrm{tridiag}(-1, 2, -1)`:

    .. math::
        \nu_i^s = 1 + s\,\xi_i^s,\quad \nu_i^b = s\,\xi_i^b,\quad
        b_i = \tfrac{L\nu_i^s}{4}(-1+\nu_i^b)\,e_1,\quad
        A_i = \tfrac{L\nu_i^s}{4}T_d + \big(\lambda - \lambda_{\min}(\bar A^{(0)})\big) I,

    with :math:`\bar A^{(0)} = \frac1n\sum_i\frac{L\nu_i^s}{4}T_d`, so :math:`\lambda_{\min}(\bar A)=\lambda`
    exactly; single :math:`A_i` may be indefinite. Start :math:`x^0 = (\sqrt d, 0, \dots, 0)`.
    ``noise_scale = 0`` gives identical clients (:math:`L_\pm = 0`); otherwise
    :math:`L_\pm = L\cos^2\frac{\pi}{2(d+1)}\,s\,\mathrm{sd}_n(\xi^s)`. Constants: exact closed forms
    (eigenvalues of :math:`T_d`). Draws: stream ``(seed, "problems/quadratic")``, one
    ``(n, 2)`` normal draw, per client :math:`\xi^s` then :math:`\xi^b` (the PermK script's order).

    Args:
        n_clients: n >= 1.
        dim: d >= 1.
        noise_scale: s >= 0 (the PermK scripts use 0, 0.05, 0.1, 0.2).
        reg: λ > 0, the smallest eigenvalue of Ā (default 1e-6 as in the PermK scripts and MiniFL).
        scale: overall scale L > 0 (1 in the papers; MiniFL's ``liptschitz_gradient_constant``).
        seed: data seed.
        grad_noise: σ >= 0 of the Gaussian stochastic oracle of :meth:`minibatch_grads`.
        nu_s, nu_b: explicit noise vectors ``(n,)`` replacing the seeded draws (reproductions, tests).
        dtype: ``"float64"`` (default) or ``"float32"``.

    References:
        Szlendak, Tyurin, Richtárik, Permutation compressors for provably faster distributed
        nonconvex optimization, 2021 (the generator); the CQ paper, App. D.3, Algorithm 5.
        The CQ paper's values of n, d, λ, s are not recovered: pass them explicitly.
    """

    def __init__(
        self,
        n_clients: int = 10,
        dim: int = 1000,
        noise_scale: float = 0.05,
        reg: float = 1e-6,
        scale: float = 1.0,
        seed: int = 0,
        grad_noise: float = 0.0,
        nu_s: Any = None,
        nu_b: Any = None,
        dtype: Any = "float64",
    ) -> None:
        owner = "quadratic"
        params = self._check_generator(owner, n_clients, dim, noise_scale, reg, scale, seed, grad_noise, dtype)
        n, d, s, lam, L, seed = (params[k] for k in ("n_clients", "dim", "noise_scale", "reg", "scale", "seed"))
        xi = torch.randn((n, 2), generator=shared_generator(seed, "problems/quadratic"), dtype=torch.float64)
        nu_s_t = 1.0 + s * xi[:, 0] if nu_s is None else _noise_vector(owner, "nu_s", nu_s, n)
        nu_b_t = s * xi[:, 1] if nu_b is None else _noise_vector(owner, "nu_b", nu_b, n)
        alpha = L * nu_s_t / 4.0
        t = tridiag_eigenvalues(d)
        a_bar = float(alpha.mean())
        lam_min0 = min(a_bar * float(t[0]), a_bar * float(t[-1]))
        beta = torch.full((n,), lam - lam_min0, dtype=torch.float64)
        b = torch.zeros((n, d), dtype=torch.float64)
        b[:, 0] = alpha * (-1.0 + nu_b_t)
        x0 = torch.zeros(d, dtype=torch.float64)
        x0[0] = math.sqrt(d)
        self.nu_s, self.nu_b = nu_s_t, nu_b_t
        self.lambda_min0 = lam_min0
        self.params = params
        self._setup(alpha, beta, b, x0)
