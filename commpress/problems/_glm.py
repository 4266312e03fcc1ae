r"""Finite sums of linear-model losses, all clients in padded dense blocks.

Client i holds rows :math:`(a_{ij}, t_{ij})_{j<m_i}` and

.. math:: f_i(x) = \frac1{m_i}\sum_{j<m_i}\phi(a_{ij}^\top x, t_{ij}) + r(x),\qquad
          \nabla f_{ij}(x) = \phi'(a_{ij}^\top x, t_{ij})\,a_{ij} + \nabla r(x).

A per-sample gradient is a *scalar* times the row plus the regulariser's gradient, so a
SAGA-type method can keep a table of scalars ``(n, m_max)`` instead of ``(n, m_max, d)``
gradients: see :meth:`LinearModel.sample_scalars`, :meth:`LinearModel.all_sample_scalars` and
:meth:`LinearModel.scalar_mean`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._checks import check_choice, check_dtype, check_float, check_int, check_seed
from commpress._rng import shared_generator
from commpress.errors import ConfigError, InputError
from commpress.problems._data import binary_labels, data_arrays, is_arrays_file, load_dataset, synthetic_linear
from commpress.problems._splits import SPLITS, ClientData, partition
from commpress.problems.base import Problem

_SYNTHETIC_DEFAULTS = dict(dim=20, samples_per_client=50, heterogeneity=1.0, noise=0.1)


class LinearModel(Problem):
    """Base of least squares and (nonconvex) logistic regression: data, splits, batched oracles."""

    classification: bool = True

    # ---- per-problem pieces
    def _phi(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _dphi(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reg_value(self, x: torch.Tensor) -> torch.Tensor:
        """r(x): ``()`` for ``x`` ``(d,)``, ``(rows,)`` for ``(rows, d)``."""
        raise NotImplementedError

    def reg_grad(self, x: torch.Tensor) -> torch.Tensor:
        """∇r(x), same shape as ``x``."""
        raise NotImplementedError

    # ---- construction
    def _build(
        self,
        owner: str,
        *,
        dataset: str | None,
        n_features: int | None,
        n_clients: int,
        split: str,
        dim: int | None,
        samples_per_client: int | None,
        heterogeneity: float | None,
        noise: float | None,
        seed: int,
        dtype: Any,
        start: str,
        extra: dict[str, Any],
        data: Any = None,
    ) -> None:
        n = check_int("n_clients", n_clients, owner, hint=" Use n_clients >= 1.")
        split = check_choice("split", split, owner, SPLITS)
        seed = check_seed(seed, owner)
        self.dtype = check_dtype(dtype, owner)
        self.start = check_choice("start", start, owner, ("zeros", "normal"))
        synthetic = dict(dim=dim, samples_per_client=samples_per_client, heterogeneity=heterogeneity, noise=noise)
        if dataset is None and data is None:
            if n_features is not None:
                raise ConfigError(f"{owner}: n_features applies to a dataset; for synthetic data use dim=.")
            p = {k: (v if v is not None else _SYNTHETIC_DEFAULTS[k]) for k, v in synthetic.items()}
            d = check_int("dim", p["dim"], owner)
            m = check_int("samples_per_client", p["samples_per_client"], owner)
            h = check_float("heterogeneity", p["heterogeneity"], owner, low=0.0, finite=True)
            sigma = check_float("noise", p["noise"], owner, low=0.0, finite=True)
            X, y = synthetic_linear(n, m, d, h, sigma, seed, self.dtype, self.classification)
            source: dict[str, Any] = dict(dataset="synthetic", dim=d, samples_per_client=m, heterogeneity=h, noise=sigma)
        else:
            if dataset is not None and data is not None:
                raise ConfigError(
                    f"{owner} takes dataset= (a name or a path) or data=(A, b) (arrays), not both; got "
                    f"dataset={dataset!r} and data. Drop one."
                )
            what = "data=(A, b)" if data is not None else f"dataset={dataset!r}"
            given = [k for k, v in synthetic.items() if v is not None]
            if given:
                raise ConfigError(
                    f"{owner}: {given[0]}= applies to synthetic data only, but {what} was given "
                    f"(the data fixes the rows). Drop {given[0]}=, or drop {'data' if data is not None else 'dataset'}= "
                    f"for synthetic data."
                )
            if data is not None:
                if n_features is not None:
                    raise ConfigError(
                        f"{owner}: n_features applies to a LibSVM dataset; data=(A, b) fixes it by the columns of A. "
                        f"Drop n_features={n_features!r}."
                    )
                X, y = data_arrays(owner, data, self.dtype)
                arrays, shown, source = True, "b in data=(A, b)", dict(dataset="arrays")
            else:
                dataset = str(dataset)
                X, y = load_dataset(owner, dataset, n_features, self.dtype)
                arrays, shown, source = is_arrays_file(dataset), f"dataset {dataset!r}", dict(dataset=dataset)
            if self.classification or (not arrays and torch.unique(y).numel() == 2):
                fix = ("Pass b with two distinct values, e.g. b = np.where(y == positive_class, 1, -1)."
                       if arrays else "Use a binary LibSVM file.")
                values = torch.unique(y)
                y = binary_labels(owner, y, shown, fix)
                if arrays:
                    source["labels"] = {"-1": float(values[0]), "+1": float(values[-1])}
            y = y.to(self.dtype)
        data = partition(X, y, n, split, seed, owner)
        self._set_data(data)
        self.seed = seed
        self.params = dict(source, n_clients=n, split=split, seed=seed, start=self.start, **extra)

    def _set_data(self, data: ClientData) -> None:
        self.data = data
        self.n, self.d = data.n, data.d
        self._weights = data.mask.to(self.dtype) / data.counts[:, None].to(self.dtype)  # (n, m_max)
        self._cache: dict[str, Any] = {}

    # ---- data views
    @property
    def features(self) -> torch.Tensor:
        """``(n, m_max, d)`` padded rows (zero on padding)."""
        return self.data.features

    @property
    def targets(self) -> torch.Tensor:
        """``(n, m_max)``: labels in {-1, +1} (classification) or targets; 0 on padding."""
        return self.data.targets

    @property
    def mask(self) -> torch.Tensor:
        return self.data.mask

    def num_samples(self) -> torch.Tensor:
        return self.data.counts.clone()

    def x0(self) -> torch.Tensor:
        if self.start == "zeros":
            return torch.zeros(self.d, dtype=self.dtype, device=self.device)
        x = torch.randn(self.d, generator=shared_generator(self.seed, "problems/x0"), dtype=torch.float64)
        return x.to(device=self.device, dtype=self.dtype)  # drawn on the CPU: the same start on every device

    @staticmethod
    def _margins(F: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return F @ x
        return torch.bmm(F, x[:, :, None]).squeeze(-1)

    def _all(self, x: torch.Tensor, clients: torch.Tensor | None):
        """Validated rows, the point for all n clients, and a selector of the asked rows."""
        rows = self._rows(clients)
        x = self._point(x, self.n if rows is None else rows.numel())
        return rows, self._full_point(x, rows), (lambda T: T if rows is None else T[rows])

    def margins(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`a_{ij}^\\top x` for every row, ``(rows, m_max)`` (0 on padding)."""
        _, xf, sel = self._all(x, clients)
        return sel(self._margins(self.data.features, xf))

    # ---- oracles (every row computed, then the asked rows selected: see Problem._full_point)
    def client_losses(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        _, xf, sel = self._all(x, clients)
        z = self._margins(self.data.features, xf)
        return sel((self._phi(z, self.data.targets) * self._weights).sum(-1) + self.reg_value(xf))

    def client_grads(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        _, xf, sel = self._all(x, clients)
        F = self.data.features
        s = self._dphi(self._margins(F, xf), self.data.targets) * self._weights
        return sel(torch.bmm(s[:, None, :], F).squeeze(1) + self.reg_grad(xf))

    def all_sample_scalars(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`\\phi'(a_{ij}^\\top x_i, t_{ij})` for every row, ``(rows, m_max)``, 0 on padding (a SAGA table)."""
        _, xf, sel = self._all(x, clients)
        z = self._margins(self.data.features, xf)
        return sel(self._dphi(z, self.data.targets) * self.data.mask.to(self.dtype))

    def scalar_mean(self, S: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`\\frac1{m_i}\\sum_j S_{ij}a_{ij}` for a table ``S`` ``(rows, m_max)``: ``(rows, d)``.

        The data part of a SAGA mean; padding entries of ``S`` are ignored.
        """
        rows = self._rows(clients)
        r = self.n if rows is None else rows.numel()
        if S.shape != (r, self._weights.shape[1]):
            raise InputError(f"scalar table must have shape {(r, self._weights.shape[1])}; got {tuple(S.shape)}.")
        S = S.to(device=self._weights.device, dtype=self.dtype)
        if rows is not None:
            full = torch.zeros(self._weights.shape, dtype=self.dtype, device=self._weights.device)
            full[rows] = S
            S = full
        out = torch.bmm((S * self._weights)[:, None, :], self.data.features).squeeze(1)
        return out if rows is None else out[rows]

    # ---- second order (problems with ``_d2phi`` and ``_reg_hessian_diag``)
    def _hessian_weights(self, x: torch.Tensor, clients: torch.Tensor | None):
        """Selector, full point and :math:`\\phi''(a_{ij}^\\top x, t_{ij})/m_i` per row ``(n, m_max)``."""
        if not hasattr(self, "_d2phi") or not hasattr(self, "_reg_hessian_diag"):
            raise NotImplementedError(f"{type(self).__name__} has no second-order oracle")
        _, xf, sel = self._all(x, clients)
        z = self._margins(self.data.features, xf)
        return sel, xf, self._d2phi(z, self.data.targets) * self._weights

    def hessians(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        r"""Client Hessians :math:`\nabla^2 f_i(x) = \frac1{m_i}\sum_j\phi''(a_{ij}^\top x, t_{ij})\,a_{ij}a_{ij}^\top
        + \nabla^2 r(x)`, ``(rows, d, d)`` (exact, one batched product; same point conventions as
        :meth:`client_grads`)."""
        sel, xf, w = self._hessian_weights(x, clients)
        F = self.data.features
        H = torch.bmm(F.transpose(1, 2) * w[:, None, :], F)
        H = H + torch.diag_embed(self._reg_hessian_diag(xf))
        return sel(H)

    def hessian_vector_products(
        self, x: torch.Tensor, v: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        r""":math:`\nabla^2 f_i(x)\,v` without forming the matrices, ``(rows, d)`` (``v`` ``(d,)``): O(n m d)."""
        sel, xf, w = self._hessian_weights(x, clients)
        F = self.data.features
        v = v.to(device=F.device, dtype=F.dtype)
        Fv = F @ v
        return sel(torch.bmm((w * Fv)[:, None, :], F).squeeze(1) + self._reg_hessian_diag(xf) * v)

    # ---- per-sample oracles: like the full oracles, every client's row is computed (index 0 for
    # the clients not asked) and the asked rows selected, so a subset is bit-identical to the full call
    def _full_index(self, index: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        if rows is None:
            return index
        full = torch.zeros((self.n, *index.shape[1:]), dtype=torch.int64, device=index.device)
        full[rows] = index
        return full

    def _sample_setup(self, x, index, clients):
        rows = self._rows(clients)
        x = self._point(x, self.n if rows is None else rows.numel())
        index = self._index(index, rows)
        xf = self._full_point(x, rows)
        idx = self._full_index(index[:, None] if index.dim() == 1 else index, rows)
        ar = torch.arange(self.n, device=idx.device)[:, None]
        A, t = self.data.features[ar, idx], self.data.targets[ar, idx]
        z = (A * (xf if xf.dim() == 1 else xf[:, None, :])).sum(-1)
        sel = (lambda T: T) if rows is None else (lambda T: T[rows])
        return xf, index, A, t, z, sel

    def sample_features(self, index: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """The rows :math:`a_{i,index}`: ``(rows, d)`` or ``(rows, k, d)``."""
        rows = self._rows(clients)
        index = self._index(index, rows)
        r = torch.arange(self.n, device=index.device) if rows is None else rows
        A = self.data.features[r[:, None], index[:, None] if index.dim() == 1 else index]
        return A[:, 0] if index.dim() == 1 else A

    def sample_scalars(
        self, x: torch.Tensor, index: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:math:`\\phi'(a_{ij}^\\top x_i, t_{ij})` for the sampled rows: shape of ``index``.

        ``∇f_ij(x) = sample_scalars * sample_features + reg_grad(x)``.
        """
        _, index, _, t, z, sel = self._sample_setup(x, index, clients)
        s = sel(self._dphi(z, t))
        return s[:, 0] if index.dim() == 1 else s

    def sample_grads(
        self, x: torch.Tensor, index: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        xf, index, A, t, z, sel = self._sample_setup(x, index, clients)
        r = self.reg_grad(xf)
        G = sel(self._dphi(z, t)[..., None] * A + (r if xf.dim() == 1 else r[:, None, :]))
        return G[:, 0] if index.dim() == 1 else G

    def batch_grads(
        self, x: torch.Tensor, index: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Average of the per-sample gradients over ``index`` ``(rows, k)``: ``(rows, d)``."""
        if torch.as_tensor(index).dim() != 2:
            raise InputError(f"batch_grads expects index of shape (rows, k); got {tuple(torch.as_tensor(index).shape)}.")
        xf, _, A, t, z, sel = self._sample_setup(x, index, clients)
        return sel((self._dphi(z, t)[..., None] * A).mean(1) + self.reg_grad(xf))

    # ---- helpers for constants
    def _grams(self) -> torch.Tensor:
        """:math:`A_i^\\top A_i / m_i`, ``(n, d, d)`` float64 on the CPU (constants: the same on every
        device), cached."""
        if "grams" not in self._cache:
            F = self.data.features.to(device="cpu", dtype=torch.float64)
            m = self.data.counts.to(device="cpu", dtype=torch.float64)
            self._cache["grams"] = torch.bmm(F.transpose(1, 2), F) / m[:, None, None]
        return self._cache["grams"]

    def _row_norm2_max(self) -> float:
        return float(self.data.features.to(device="cpu", dtype=torch.float64).pow(2).sum(-1).max())

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        counts = self.data.counts
        out.update(samples=int(counts.sum()), m_min=int(counts.min()), m_max=int(counts.max()))
        return out


def lambda_max(M: torch.Tensor) -> torch.Tensor:
    """Largest eigenvalue of symmetric matrices (batched), float64."""
    return torch.linalg.eigvalsh(M)[..., -1]


def newton_optimum(problem: LinearModel, hess_weights, *, tol: float = 1e-10, max_iter: int = 100) -> tuple[float, torch.Tensor, float]:
    """Damped Newton on f (float64, on the CPU whatever the problem's device) from 0: returns
    (f*, x*, ||∇f(x*)||), x* on the CPU.

    ``hess_weights(z, t) -> (n, m_max)`` gives :math:`\\phi''` per row; the regulariser's Hessian
    is ``problem._reg_hessian_diag(x)``. Armijo backtracking keeps every step a descent step.
    """
    cpu = dict(device="cpu", dtype=torch.float64)
    F = problem.data.features.to(**cpu)
    n, m_max, d = F.shape
    w = problem._weights.to(**cpu) / n
    t = problem.data.targets.to(**cpu)
    flat = F.reshape(n * m_max, d)

    def value_grad(x: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
        z = F @ x
        val = float((problem._phi(z, t) * w).sum() + problem.reg_value(x))
        g = flat.T @ (problem._dphi(z, t) * w).reshape(-1) + problem.reg_grad(x)
        return val, g, z

    x = torch.zeros(d, dtype=torch.float64)
    val, g, z = value_grad(x)
    gnorm = float(g.norm())
    for _ in range(max_iter):
        if gnorm < tol:
            break
        h = (hess_weights(z, t) * w).reshape(-1)
        H = (flat * h[:, None]).T @ flat + torch.diag(problem._reg_hessian_diag(x))
        step = torch.linalg.solve(H, g)
        slope = float(g @ step)
        if not math.isfinite(slope) or slope <= 0:  # not a descent direction (indefinite H): gradient step
            step, slope = g, float(g @ g)
        a, accepted = 1.0, False
        while a >= 1e-12:
            new_val, new_g, new_z = value_grad(x - a * step)
            # Armijo, or (at float64 resolution of f) a step that still shrinks the gradient
            if new_val <= val - 1e-4 * a * slope or (
                new_val <= val + 1e-13 * max(1.0, abs(val)) and float(new_g.norm()) < gnorm
            ):
                accepted = True
                break
            a *= 0.5
        if not accepted:  # no progress possible in float64
            break
        x, val, g, z = x - a * step, new_val, new_g, new_z
        gnorm = float(g.norm())
    return val, x, gnorm
