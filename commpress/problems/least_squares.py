"""Least squares, distributed over clients (synthetic heterogeneous data or a LibSVM dataset)."""

from __future__ import annotations

from typing import Any

import torch

from commpress._checks import check_float
from commpress.problems._glm import LinearModel
from commpress.problems._quadform import dense_constants
from commpress.problems.base import Smoothness
from commpress.problems.registry import register


@register("least_squares")
class LeastSquares(LinearModel):
    r"""Least squares, a finite sum per client (a synthetic task of Huang et al., NEOLITHIC, NeurIPS 2022).

    .. math::
        f_i(x) = \frac1{2m_i}\sum_{j<m_i}(a_{ij}^\top x - y_{ij})^2 + \frac{\lambda_2}2\|x\|^2,\qquad
        \nabla f_{ij}(x) = (a_{ij}^\top x - y_{ij})\,a_{ij} + \lambda_2 x.

    A quadratic with :math:`A_i = A_i^\top A_i/m_i + \lambda_2 I` (data matrix rows :math:`a_{ij}`), so
    every smoothness constant is **exact** (eigen-solves), including :math:`L_\pm` and
    the weighted ones; :math:`L_{ij} = \|a_{ij}\|^2 + \lambda_2`. Optimum: direct solve of
    :math:`\bar A x = \frac1n\sum_i A_i^\top y_i/m_i` (minimum-norm least-squares solution if
    :math:`\bar A` is singular).

    On a LibSVM dataset the targets are the labels (binary labels mapped to ±1; others as read).
    Your arrays, ``data=(A, b)`` (or an ``.npz`` file), are taken as given: ``b`` are the
    targets, never remapped.

    Args:
        dataset: LibSVM name or path, or an ``.npz`` path of arrays; None (default) for the seeded
            synthetic generator (:mod:`commpress.problems._data`: heterogeneity shifts features and
            true models per client).
        data: ``(A, b)``, ``A`` ``(m, d)`` features and ``b`` ``(m,)`` targets, instead of
            ``dataset`` (NumPy, SciPy sparse or torch; Python only; as
            :class:`~commpress.problems.logreg.LogReg`).
        n_clients, split, n_features, dim, samples_per_client, heterogeneity, noise, seed, start, dtype:
            as :class:`~commpress.problems.logreg.LogReg`.
        l2: :math:`\lambda_2 \ge 0`, default 0.

    References:
        Huang, Chen, Yin, Yuan, Lower bounds and nearly optimal algorithms in distributed learning
        with communication compression (NEOLITHIC), NeurIPS 2022 — the task's form; its data
        laws are not recovered, the generator is ours.
    """

    classification = False

    def __init__(
        self,
        dataset: str | None = None,
        n_clients: int = 10,
        l2: float = 0.0,
        split: str = "contiguous",
        n_features: int | None = None,
        dim: int | None = None,
        samples_per_client: int | None = None,
        heterogeneity: float | None = None,
        noise: float | None = None,
        seed: int = 0,
        start: str = "zeros",
        dtype: Any = "float64",
        data: Any = None,
    ) -> None:
        self.l2 = check_float("l2", l2, "least_squares", low=0.0, finite=True)
        self._build(
            "least_squares", dataset=dataset, n_features=n_features, n_clients=n_clients, split=split,
            dim=dim, samples_per_client=samples_per_client, heterogeneity=heterogeneity, noise=noise,
            seed=seed, dtype=dtype, start=start, data=data, extra=dict(l2=self.l2),
        )

    def _phi(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * (z - t) ** 2

    def _dphi(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return z - t

    def reg_value(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.l2 * x.pow(2).sum(-1)

    def reg_grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2 * x

    @staticmethod
    def _d2phi(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(z)

    def _reg_hessian_diag(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.l2)

    def hessians(self, x: torch.Tensor | None = None, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """The client Hessians :math:`A_i^\\top A_i/m_i + \\lambda_2 I`, ``(rows, d, d)`` float64 on the
        problem's device (constant: ``x`` is accepted for the second-order interface and ignored)."""
        H = self._hessians_cpu().to(self.device)
        rows = self._rows(clients)
        return H if rows is None else H[rows]

    def _hessians_cpu(self) -> torch.Tensor:
        return self._grams() + self.l2 * torch.eye(self.d, dtype=torch.float64)

    def smoothness_matrices(self) -> torch.Tensor:
        r""":math:`\mathbf L_i = A_i^\top A_i/m_i + \lambda_2 I` (the constant Hessians), ``(n, d, d)`` float64; exact."""
        return self._grams() + self.l2 * torch.eye(self.d, dtype=torch.float64)

    def smoothness(self) -> Smoothness:
        if "smooth" not in self._cache:
            c = dense_constants(self._hessians_cpu())  # on the CPU: the same constants on every device
            c["mu"] = max(c["mu"], 0.0)
            self._cache["smooth"] = Smoothness(
                exact=True, notes="exact (constant Hessians, eigen-solves)",
                L_sample=self._row_norm2_max() + self.l2, **c,
            )
        return self._cache["smooth"]

    def optimum(self) -> tuple[float, torch.Tensor] | None:
        if "opt" not in self._cache:
            cpu = dict(device="cpu", dtype=torch.float64)  # x* on the CPU (the same on every device), then moved
            F = self.data.features.to(**cpu)
            t = self.data.targets.to(**cpu)
            w = self._weights.to(**cpu)
            A_bar = self._hessians_cpu().mean(0)
            b_bar = torch.einsum("nmd,nm->d", F, t * w) / self.n
            evals, evecs = torch.linalg.eigh(A_bar)
            cut = evals.max() * self.d * torch.finfo(torch.float64).eps
            inv = torch.where(evals > cut, 1.0 / evals.clamp_min(cut), torch.zeros_like(evals))
            x = evecs @ (inv * (evecs.T @ b_bar))
            val = float((0.5 * (F @ x - t) ** 2 * w).sum() / self.n + 0.5 * self.l2 * x @ x)
            self._cache["opt"] = (val, x)
        val, x = self._cache["opt"]
        return val, x.to(device=self.device, dtype=self.dtype, copy=True)
