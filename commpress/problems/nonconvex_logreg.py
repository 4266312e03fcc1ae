"""Logistic regression with the nonconvex regulariser of the EF21 / CQ experiments."""

from __future__ import annotations

from typing import Any

import torch

from commpress._checks import check_float
from commpress.problems._glm import lambda_max
from commpress.problems.base import Smoothness
from commpress.problems.logreg import _Logistic
from commpress.problems.registry import register


@register("nonconvex_logreg")
class NonconvexLogReg(_Logistic):
    r"""Logistic regression with a nonconvex regulariser (Panferov et al. 2024, Sec. 4.2; EF21 experiments).

    .. math::
        f_i(x) = \frac1{m_i}\sum_{j<m_i}\log\big(1+e^{-b_{ij}a_{ij}^\top x}\big)
                 + \lambda\sum_{k=1}^d\frac{x_k^2}{1+x_k^2},\qquad
        \partial_k\Big(\lambda\sum\tfrac{x_k^2}{1+x_k^2}\Big) = \frac{2\lambda x_k}{(1+x_k^2)^2}.

    The regulariser's curvature :math:`\varphi''(t) = (2-6t^2)/(1+t^2)^3 \in [-\frac12, 2]`, so every
    Hessian eigenvalue lies in :math:`[-\lambda/2,\ \lambda_{\max}(A^\top A)/(4m) + 2\lambda]`.
    Constants (bounds, ``exact=False``): :math:`L_i \le \lambda_{\max}(A_i^\top A_i)/(4m_i) + 2\lambda`
    (the EF21 scripts' value), :math:`L_- \le \lambda_{\max}(\frac1n\sum_iA_i^\top A_i/m_i)/4 + 2\lambda`,
    :math:`L_+ \le L_{QM}`, :math:`L_\pm \le L_+` (no closed form), :math:`\mu = 0`,
    :math:`L_{ij}\le\|a_{ij}\|^2/4+2\lambda`. Optimum: None (nonconvex; track :math:`\|\nabla f\|^2`;
    :math:`f \ge 0` is a valid lower bound).

    Args:
        dataset, data, n_clients, split, n_features, dim, samples_per_client, heterogeneity, noise, seed, start, dtype:
            as :class:`~commpress.problems.logreg.LogReg` (``data=(A, b)``: your arrays, binary
            labels mapped to ±1, smaller -> -1). The CQ paper's runs: ``dataset`` in a9a / madelon /
            splice, ``n_clients`` 264 / 4 / 16, ``split="contiguous"``.
        reg: λ >= 0, default 0.1 — the EF21 papers' value; the CQ paper's λ is **not recovered**
            (Panferov et al. 2024, Sec. 4.2), so CQ reproductions inherit it and must say so.
    """

    def __init__(
        self,
        dataset: str | None = None,
        n_clients: int = 10,
        reg: float = 0.1,
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
        self.reg = check_float("reg", reg, "nonconvex_logreg", low=0.0, finite=True)
        self._build(
            "nonconvex_logreg", dataset=dataset, n_features=n_features, n_clients=n_clients, split=split,
            dim=dim, samples_per_client=samples_per_client, heterogeneity=heterogeneity, noise=noise,
            seed=seed, dtype=dtype, start=start, data=data, extra=dict(reg=self.reg),
        )

    def reg_value(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x * x
        return self.reg * (x2 / (1.0 + x2)).sum(-1)

    def reg_grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.reg * 2.0 * x / (1.0 + x * x) ** 2

    def _reg_hessian_diag(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x * x
        return self.reg * (2.0 - 6.0 * x2) / (1.0 + x2) ** 3

    def smoothness_matrices(self) -> torch.Tensor:
        r""":math:`\mathbf L_i = A_i^\top A_i/(4m_i) + 2\,\mathrm{reg}\,I`, ``(n, d, d)`` float64: the smallest
        smoothness matrices (both Hessian bounds are attained at x = 0)."""
        return self._grams() / 4.0 + 2.0 * self.reg * torch.eye(self.d, dtype=torch.float64)

    def smoothness(self) -> Smoothness:
        if "smooth" not in self._cache:
            G = self._grams()
            L_i = lambda_max(G) / 4.0 + 2.0 * self.reg
            L_minus = float(lambda_max(G.mean(0))) / 4.0 + 2.0 * self.reg
            L_qm = float(L_i.pow(2).mean().sqrt())
            self._cache["smooth"] = Smoothness(
                L_i=L_i, L_minus=L_minus, L_plus=L_qm, L_pm=L_qm, mu=0.0, exact=False,
                L_sample=self._row_norm2_max() / 4.0 + 2.0 * self.reg,
                notes="upper bounds (Hessian <= A^T A/(4m) + 2 reg): L_plus reported as L_QM; L_pm not computable, reported as the bound L_pm <= L_plus",
            )
        return self._cache["smooth"]
