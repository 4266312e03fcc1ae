"""Tiny problems for the algorithm tests (independent of commpress.problems' generators).

``ToyLeastSquares``: client i holds m samples (a_ij, y_ij) and

    f_i(x) = 1/(2m) sum_j (a_ij^T x - y_ij)^2 + lam/2 ||x||^2 + nc * sum_k x_k^2 / (1 + x_k^2).

With ``nc = 0`` it is a strongly convex quadratic with exact constants and optimum; with
``nc > 0`` the (Lipschitz-smooth, bounded-below) nonconvex regulariser of the CQ/EF21 papers is
added. It follows the Problem conventions: points ``(d,)`` or ``(rows, d)``, ``clients=``,
per-sample gradients and minibatches.
"""

from __future__ import annotations

import math

import torch

from commpress._rng import shared_generator
from commpress.problems.base import Problem, Smoothness


class ToyLeastSquares(Problem):
    name = "toy_least_squares"

    def __init__(self, n: int = 4, d: int = 6, m: int = 8, *, lam: float = 0.1, nc: float = 0.0,
                 homogeneous: bool = False, hetero: float = 1.0, seed: int = 0) -> None:
        g = shared_generator(seed, "toy")
        self.n, self.d, self.m = n, d, m
        self.dtype = torch.float64
        if homogeneous:
            A = torch.randn(1, m, d, generator=g, dtype=torch.float64).expand(n, m, d).clone()
            y = torch.randn(1, m, generator=g, dtype=torch.float64).expand(n, m).clone()
        else:
            A = torch.randn(n, m, d, generator=g, dtype=torch.float64)
            y = hetero * torch.randn(n, m, generator=g, dtype=torch.float64)
        self.A, self.y, self.lam, self.nc = A, y, float(lam), float(nc)
        self._x0 = torch.full((d,), 1.0, dtype=torch.float64)
        self.params = {"n": n, "d": d, "m": m, "lam": lam, "nc": nc, "homogeneous": homogeneous}

    def x0(self) -> torch.Tensor:
        return self._x0.clone()

    # ---- helpers
    def _sel(self, clients):
        rows = self._rows(clients)
        return (self.A, self.y) if rows is None else (self.A[rows], self.y[rows])

    def _reg_grad(self, X):
        return self.lam * X + self.nc * 2 * X / (1 + X * X) ** 2

    def _reg_value(self, X):
        return 0.5 * self.lam * (X * X).sum(-1) + self.nc * (X * X / (1 + X * X)).sum(-1)

    # ---- oracles
    def client_grads(self, x, *, clients=None):
        A, y = self._sel(clients)
        X = self._point(x, A.shape[0])
        Xb = X.expand(A.shape[0], self.d) if X.dim() == 1 else X
        r = torch.einsum("imd,id->im", A, Xb) - y
        return torch.einsum("imd,im->id", A, r) / self.m + self._reg_grad(Xb)

    def client_losses(self, x, *, clients=None):
        A, y = self._sel(clients)
        X = self._point(x, A.shape[0])
        Xb = X.expand(A.shape[0], self.d) if X.dim() == 1 else X
        r = torch.einsum("imd,id->im", A, Xb) - y
        return 0.5 * (r * r).mean(-1) + self._reg_value(Xb)

    def num_samples(self):
        return torch.full((self.n,), self.m, dtype=torch.int64)

    def sample_grads(self, x, index, *, clients=None):
        A, y = self._sel(clients)
        rows = A.shape[0]
        X = self._point(x, rows)
        Xb = X.expand(rows, self.d) if X.dim() == 1 else X
        index = self._index(index, self._rows(clients))
        ar = torch.arange(rows)
        if index.dim() == 1:
            a, yy = A[ar, index], y[ar, index]
            return a * ((a * Xb).sum(-1) - yy)[:, None] + self._reg_grad(Xb)
        a, yy = A[ar[:, None], index], y[ar[:, None], index]  # (rows, k, d), (rows, k)
        r = torch.einsum("ikd,id->ik", a, Xb) - yy
        return a * r[..., None] + self._reg_grad(Xb)[:, None, :]

    def hessians(self, x, *, clients=None):
        """Client Hessians at x, ``(rows, d, d)`` (the second-order methods' oracle)."""
        A, _ = self._sel(clients)
        X = self._point(x, A.shape[0])
        Xb = X.expand(A.shape[0], self.d) if X.dim() == 1 else X
        reg = self.lam + self.nc * (2 - 6 * Xb * Xb) / (1 + Xb * Xb) ** 3
        return torch.einsum("imd,ime->ide", A, A) / self.m + torch.diag_embed(reg)

    # ---- facts
    def _hessians(self):
        H = torch.einsum("imd,ime->ide", self.A, self.A) / self.m
        return H + self.lam * torch.eye(self.d, dtype=torch.float64)

    def smoothness_matrices(self) -> torch.Tensor:
        """A_i^T A_i/m + (lam + 2 nc) I: the smallest smoothness matrices (the nonconvex term's curvature is <= 2 nc)."""
        return self._hessians() + 2.0 * self.nc * torch.eye(self.d, dtype=torch.float64)

    def smoothness(self) -> Smoothness:
        H = self._hessians()
        extra = 2.0 * self.nc  # |phi''| <= 2
        L_i = torch.linalg.eigvalsh(H).abs().max(dim=1).values + extra
        Hb = H.mean(0)
        L_minus = float(torch.linalg.eigvalsh(Hb).max()) + extra
        L_plus = math.sqrt(float(torch.linalg.eigvalsh((H @ H).mean(0)).max())) + extra
        L_pm = math.sqrt(max(float(torch.linalg.eigvalsh((H @ H).mean(0) - Hb @ Hb).max()), 0.0))
        mu = float(torch.linalg.eigvalsh(Hb).min()) if self.nc == 0 else 0.0
        L_sample = float((self.A * self.A).sum(-1).max()) + self.lam + extra
        return Smoothness(L_i=L_i, L_minus=L_minus, L_plus=L_plus, L_pm=L_pm + 2 * extra, mu=mu,
                          exact=self.nc == 0, L_sample=L_sample)

    def optimum(self):
        if self.nc != 0:
            return None
        Hb = self._hessians().mean(0)
        bb = torch.einsum("imd,im->d", self.A, self.y) / (self.m * self.n)
        x = torch.linalg.solve(Hb, bb)
        return float(self.loss(x)), x


def toy(**kw) -> ToyLeastSquares:
    return ToyLeastSquares(**kw)
