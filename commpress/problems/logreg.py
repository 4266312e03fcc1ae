"""l2-regularised logistic regression, distributed over clients."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F

from commpress._checks import check_float
from commpress.problems._glm import LinearModel, lambda_max, newton_optimum
from commpress.problems.base import Smoothness
from commpress.problems.registry import register


class _Logistic(LinearModel):
    """The logistic data term :math:`\\phi(z, b) = \\log(1 + e^{-bz})`, b in {-1, +1}."""

    classification = True

    def _phi(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.softplus(-t * z)

    def _dphi(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -t * torch.sigmoid(-t * z)

    @staticmethod
    def _d2phi(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(z)
        return s * (1.0 - s)


@register("logreg")
class LogReg(_Logistic):
    r"""l2-regularised logistic regression, a finite sum per client.

    .. math::
        f_i(x) = \frac1{m_i}\sum_{j<m_i}\log\big(1+e^{-b_{ij}a_{ij}^\top x}\big) + \frac{\lambda_2}2\|x\|^2,
        \qquad b_{ij}\in\{-1,+1\}.

    Labels are mapped to ±1 whatever the file's convention (smaller value -> -1). No feature
    scaling, no bias column (as the reference loaders). Constants (bounds
    from :math:`\nabla^2 f_i \preceq A_i^\top A_i/(4m_i) + \lambda_2 I`, ``exact=False``),
    with :math:`G_i = A_i^\top A_i/m_i`, :math:`B_i = G_i/4 + \lambda_2 I`:

    .. math::
        L_i \le \lambda_{\max}(B_i),\quad L_- \le \lambda_{\max}\big(\tfrac1n\textstyle\sum_i B_i\big),\quad
        L_+^2 \le \lambda_{\max}\big(\tfrac1n\textstyle\sum_i L_iB_i\big) \le L_{QM}^2,\quad
        L_\pm \le L_+,\quad \mu = \lambda_2,\quad L_{ij} \le \|a_{ij}\|^2/4 + \lambda_2.

    (The :math:`L_+` bound: :math:`\nabla f_i(x)-\nabla f_i(y) = M_ih` with :math:`0\preceq M_i\preceq B_i`,
    so :math:`\|M_ih\|^2 \le \|M_i\|\,h^\top M_ih \le L_i\,h^\top B_ih`.) :math:`L_\pm` has no closed
    form; the reported value is the bound :math:`L_\pm\le L_+`.
    Optimum: damped Newton to :math:`\|\nabla f\|<10^{-10}`, cached.

    Your data: ``data=(A, b)`` with ``A`` the ``(m, d)`` features (a NumPy array, a SciPy sparse
    matrix in any format, or a torch tensor) and ``b`` the ``(m,)`` labels, two distinct values
    (bool, 0/1, ±1, 1/2, ...): the smaller is mapped to -1, the larger to +1, as for LibSVM files
    (``describe()["labels"]`` says which was which). The rows are split, the constants and the
    optimum computed as for a named dataset. ``data=`` is for Python: a TOML config cannot hold
    arrays, so a config names a file, ``dataset = "path/to/file"`` (LibSVM, or an ``.npz`` file
    written by :func:`commpress.datasets.save_npz`, read exactly like ``data=``)::

        prob = cp.problems.make("logreg", data=(A, b), n_clients=8, l2=1e-3)

    Args:
        dataset: a LibSVM name (``commpress.datasets.known()``) or path, or an ``.npz`` path of
            arrays; None (with ``data`` None) for the seeded synthetic generator
            (:mod:`commpress.problems._data`).
        data: ``(A, b)`` arrays instead of ``dataset`` (exactly one of the two; Python only).
        n_clients: n, 1 <= n <= m (every client needs a sample).
        l2: :math:`\lambda_2 \ge 0` (default 1e-3, ours; the VR-DIANA poster used 5e-4, 5e-5, 0.2).
        split: ``"contiguous"`` (the papers'), ``"shuffled"`` or ``"label_skew"`` (:mod:`._splits`).
        n_features: columns of the LibSVM file (default: known value / inferred).
        dim, samples_per_client, heterogeneity, noise: synthetic data only (defaults 20, 50, 1.0, 0.1).
        seed: data / split / start seed.
        start: ``"zeros"`` (default, MiniFL) or ``"normal"`` (:math:`x^0\sim\mathcal N(0,I)`, EF21 scripts).
        dtype: ``"float64"`` or ``"float32"``.

    References:
        Horváth, Kovalev, Mishchenko, Richtárik, Stich, Stochastic distributed learning with
        gradient quantization and double variance reduction, 2019 (the VR-DIANA experiments).
    """

    def __init__(
        self,
        dataset: str | None = None,
        n_clients: int = 10,
        l2: float = 1e-3,
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
        self.l2 = check_float("l2", l2, "logreg", low=0.0, finite=True)
        self._build(
            "logreg", dataset=dataset, n_features=n_features, n_clients=n_clients, split=split, dim=dim,
            samples_per_client=samples_per_client, heterogeneity=heterogeneity, noise=noise, seed=seed,
            dtype=dtype, start=start, data=data, extra=dict(l2=self.l2),
        )

    def reg_value(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.l2 * x.pow(2).sum(-1)

    def reg_grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2 * x

    def _reg_hessian_diag(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.l2)

    def smoothness_matrices(self) -> torch.Tensor:
        r""":math:`\mathbf L_i = A_i^\top A_i/(4m_i) + \lambda_2 I`, ``(n, d, d)`` float64: the smallest
        smoothness matrices (the Hessian at x = 0 equals them, since :math:`\sup\phi'' = \phi''(0) = 1/4`)."""
        return self._grams() / 4.0 + self.l2 * torch.eye(self.d, dtype=torch.float64)

    def smoothness(self) -> Smoothness:
        if "smooth" not in self._cache:
            eye = torch.eye(self.d, dtype=torch.float64)
            B = self._grams() / 4.0 + self.l2 * eye
            L_i = lambda_max(B)
            L_minus = float(lambda_max(B.mean(0)))
            L_plus = math.sqrt(float(lambda_max((L_i[:, None, None] * B).mean(0))))
            self._cache["smooth"] = Smoothness(
                L_i=L_i, L_minus=L_minus, L_plus=L_plus, L_pm=L_plus, mu=self.l2, exact=False,
                L_sample=self._row_norm2_max() / 4.0 + self.l2,
                notes="upper bounds (Hessian <= A^T A/(4m) + l2 I); L_pm not computable, reported as the bound L_pm <= L_plus",
            )
        return self._cache["smooth"]

    def optimum(self) -> tuple[float, torch.Tensor] | None:
        """(f*, x*) by damped Newton (||∇f(x*)|| < 1e-10 where float64 allows) on the CPU, cached; x* on
        the problem's device."""
        if "opt" not in self._cache:
            if self.l2 == 0.0:
                warnings.warn("logreg with l2=0 may have no minimiser (separable data); Newton may stop early.",
                              stacklevel=2)
            val, x, gnorm = newton_optimum(self, self._d2phi)
            if gnorm >= 1e-10:
                warnings.warn(f"logreg optimum: Newton stopped at ||grad f|| = {gnorm:.3g} (>= 1e-10).",
                              RuntimeWarning, stacklevel=2)
            self._cache["opt"] = (val, x)
        val, x = self._cache["opt"]  # x* computed on the CPU (the same on every device), then moved
        return val, x.to(device=self.device, dtype=self.dtype, copy=True)
