"""Shared machinery of the quadratic problems f_i(x) = 1/2 x^T A_i x - b_i^T x."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from commpress._checks import check_dtype, check_float, check_int, check_seed
from commpress._malloc import empty as _empty
from commpress.problems._quadform import dense_constants, tridiag_constants, tridiag_eigenvalues
from commpress.problems.base import Problem, Smoothness, _check_batch


#: Rows are scaled this many entries at a time (a reused buffer, not an (n, d) temporary).
_CHUNK = 1 << 19


def _take(T: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``T[rows]``, as a view when the rows are consecutive (no copy of the (rows, d) block)."""
    k = rows.numel()
    if k and int(rows[-1]) - int(rows[0]) == k - 1 and bool((rows.diff() == 1).all()):
        return T[int(rows[0]) : int(rows[0]) + k]
    return T[rows]


def _no_grad(*tensors: torch.Tensor) -> bool:
    """No autograd graph to record (``out=`` buffers are then allowed)."""
    return not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)


def _row_dots(M: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(M * x).sum(-1)`` for ``M`` ``(rows, d)`` and ``x`` ``(d,)`` or ``(rows, d)``, the products
    formed a few rows at a time in one reused buffer instead of an ``(rows, d)`` temporary.

    The same bits: every row is the same reduction. Chunks keep >= 2 rows (a one-row sum is a full
    reduction, which torch may split over threads)."""
    rows, d = M.shape
    step = max(2, _CHUNK // max(1, d))
    bounds = list(range(0, rows, step)) + [rows]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    if len(bounds) <= 2 or not _no_grad(M, x) or not (M.is_contiguous() and x.is_contiguous()):
        return (M * x).sum(-1)
    dtype = torch.result_type(M, x)
    buffer = torch.empty(max(b - a for a, b in zip(bounds, bounds[1:])), d, dtype=dtype, device=M.device)
    out = torch.empty(rows, dtype=dtype, device=M.device)
    for start, stop in zip(bounds, bounds[1:]):
        part = torch.mul(M[start:stop], x if x.dim() == 1 else x[start:stop], out=buffer[: stop - start])
        torch.sum(part, dim=-1, out=out[start:stop])
    return out


class _Quadratic(Problem):
    """Common oracles: the Hessian action is left to :meth:`_hess` (rows of A_i times x)."""

    b: torch.Tensor  # (n, d)
    grad_noise: float = 0.0
    _x0: torch.Tensor

    def _hess(self, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def x0(self) -> torch.Tensor:
        return self._x0.clone()

    def _all(self, x: torch.Tensor, clients: torch.Tensor | None):
        rows = self._rows(clients)
        x = self._point(x, self.n if rows is None else rows.numel())
        return self._full_point(x, rows), (lambda T: T if rows is None else T[rows])

    #: True when row i of :meth:`_hess` is made of elementwise operations on row i alone, so that
    #: computing only some rows gives the full call's rows bit for bit: subsets then cost their rows.
    _rowwise_hess: bool = False

    def client_grads(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        rows = self._rows(clients)
        if self._rowwise_hess and rows is not None:
            return self._hess(self._point(x, rows.numel()), rows).sub_(_take(self.b, rows))
        xf, sel = self._all(x, clients)
        return sel(self._hess(xf, None) - self.b)

    def client_losses(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        xf, sel = self._all(x, clients)
        return sel(0.5 * _row_dots(self._hess(xf, None), xf) - self._b_dots(xf))

    def _b_dots(self, x: torch.Tensor) -> torch.Tensor:
        """``(b * x).sum(-1)``: b_i^T x of every client (``x``: ``(d,)`` or ``(n, d)``)."""
        return _row_dots(self.b, x)

    def _matrices(self) -> torch.Tensor:
        raise NotImplementedError

    def hessians(self, x: torch.Tensor | None = None, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """The client Hessians :math:`A_i`, ``(rows, d, d)`` (constant: ``x`` is accepted for the
        second-order interface and ignored). Dense, O(n d^2) memory."""
        rows = self._rows(clients)
        H = self._matrices()
        return H if rows is None else H[rows]

    def hessian_vector_products(
        self, x: torch.Tensor | None, v: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:math:`A_i v`, ``(rows, d)``, from the Hessian action (no dense matrices)."""
        rows = self._rows(clients)
        return self._hess(self._point(v, self.n if rows is None else rows.numel()), rows)

    def minibatch_grads(
        self,
        x: torch.Tensor,
        generator: torch.Generator,
        batch_size: int,
        *,
        clients: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""Gaussian stochastic oracle: :math:`\nabla f_i(x) + \frac{\sigma}{\sqrt{b}}\xi_i`,
        :math:`\xi_i \sim \mathcal N(0, I_d)` (σ = ``grad_noise``; exact gradients when σ = 0).

        One ``(n, d)`` draw from ``generator``, then the rows of ``clients``.
        """
        batch_size = _check_batch(batch_size)
        G = self.client_grads(x, clients=clients)
        if self.grad_noise == 0.0:
            return G
        noise = torch.randn((self.n, self.d), generator=generator, dtype=torch.float64).to(G.device)  # CPU draw
        rows = self._rows(clients)
        noise = noise if rows is None else noise[rows]
        return G + (self.grad_noise / math.sqrt(batch_size)) * noise.to(self.dtype)


class QuadraticProblem(_Quadratic):
    r"""Quadratic clients given by their matrices: :math:`f_i(x)=\tfrac12x^\top A_ix-b_i^\top x`.

    .. math:: \nabla f_i(x) = A_i x - b_i,\qquad x^* = \bar A^{-1}\bar b,\quad f^* = -\tfrac12\bar b^\top\bar A^{-1}\bar b.

    Every smoothness constant (Szlendak et al. 2022; weighted ones: Tyurin et al. 2022) is exact
    (eigen-solves of the dense ``A`` ``(n, d, d)``); the individual ``A_i`` may be indefinite.

    Args:
        A: ``(n, d, d)`` symmetric client matrices.
        b: ``(n, d)`` linear terms.
        x0: start point, default 0.
        grad_noise: σ of the Gaussian stochastic oracle (:meth:`minibatch_grads`).
    """

    name = "quadratic_matrix"

    def __init__(self, A: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None, *,
                 grad_noise: float = 0.0, dtype: torch.dtype = torch.float64) -> None:
        from commpress.errors import InputError

        if A.dim() != 3 or A.shape[1] != A.shape[2] or b.shape != A.shape[:2]:
            raise InputError(
                f"QuadraticProblem needs A (n, d, d) and b (n, d); got A {tuple(A.shape)}, b {tuple(b.shape)}."
            )
        if not torch.allclose(A, A.transpose(1, 2), rtol=1e-10, atol=1e-12):
            raise InputError("QuadraticProblem needs symmetric A_i; symmetrise with (A + A.mT) / 2.")
        self.n, self.d = int(A.shape[0]), int(A.shape[1])
        self.dtype = dtype
        self.A = A.to(dtype)
        self.b = b.to(dtype)
        self._x0 = (torch.zeros(self.d, dtype=dtype, device=self.A.device) if x0 is None
                    else x0.to(dtype).reshape(self.d))
        self.grad_noise = float(grad_noise)
        self.params = {"grad_noise": self.grad_noise}
        self._cache: dict = {}

    def _matrices(self) -> torch.Tensor:
        return self.A

    def _hess(self, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        A = self.A if rows is None else self.A[rows]
        return A @ x if x.dim() == 1 else torch.bmm(A, x[:, :, None]).squeeze(-1)

    def smoothness_matrices(self) -> torch.Tensor:
        r""":math:`\mathbf L_i = A_i^+`, the positive part of :math:`A_i` (:math:`=A_i` when :math:`A_i\succeq0`:
        then exact), ``(n, d, d)`` float64 (:mod:`commpress.problems._smoothness`)."""
        from commpress.problems._smoothness import psd_part

        return psd_part(self.A)

    def smoothness(self) -> Smoothness:
        if "smooth" not in self._cache:
            c = dense_constants(self.A.cpu())  # on the CPU: the same constants on every device
            c["mu"] = max(c["mu"], 0.0)
            self._cache["smooth"] = Smoothness(exact=True, notes="exact (eigen-solves)", **c)
        return self._cache["smooth"]

    def optimum(self) -> tuple[float, torch.Tensor] | None:
        if "opt" not in self._cache:
            A_bar = self.A.to(device="cpu", dtype=torch.float64).mean(0)  # x* on the CPU, then moved
            b_bar = self.b.to(device="cpu", dtype=torch.float64).mean(0)
            chol, info = torch.linalg.cholesky_ex(A_bar)
            if int(info) != 0:
                self._cache["opt"] = None
            else:
                x = torch.cholesky_solve(b_bar[:, None], chol).squeeze(-1)
                self._cache["opt"] = (float(-0.5 * (b_bar @ x)), x.to(self.dtype))
        opt = self._cache["opt"]
        return None if opt is None else (opt[0], opt[1].to(self.device, copy=True))


class TridiagonalQuadratic(_Quadratic):
    r"""Quadratic clients :math:`A_i = \alpha_i T_d + \beta_i I` with :math:`T_d = \mathrm{tridiag}(-1, 2, -1)`.

    The structure of the generators of Panferov et al. 2024, App. D.3, Algorithms 5-6: all A_i
    commute, so storage is
    ``O(n + nd)`` (d = 1000 and n = 1000 are cheap), the Hessian action is a stencil, and every
    constant has a closed form (:mod:`commpress.problems._quadform`). Exact.
    """

    alpha: torch.Tensor  # (n,)
    beta: torch.Tensor  # (n,)

    def _check_generator(self, owner: str, n_clients: Any, dim: Any, noise_scale: Any, reg: Any, scale: Any,
                         seed: Any, grad_noise: Any, dtype: Any) -> dict[str, Any]:
        """Check the generators' common settings; set ``grad_noise`` and ``dtype``; return the
        checked values by name (the problem's ``params``)."""
        n = check_int("n_clients", n_clients, owner)
        d = check_int("dim", dim, owner)
        s = check_float("noise_scale", noise_scale, owner, low=0.0, finite=True)
        lam = check_float("reg", reg, owner, low=0.0, low_open=True, finite=True, hint=" Use e.g. reg=1e-6.")
        L = check_float("scale", scale, owner, low=0.0, low_open=True, finite=True)
        seed = check_seed(seed, owner)
        self.grad_noise = check_float("grad_noise", grad_noise, owner, low=0.0, finite=True)
        self.dtype = check_dtype(dtype, owner)
        return dict(n_clients=n, dim=d, noise_scale=s, reg=lam, scale=L, seed=seed, grad_noise=self.grad_noise)

    def _setup(self, alpha: torch.Tensor, beta: torch.Tensor, b: torch.Tensor, x0: torch.Tensor) -> None:
        self.n, self.d = int(b.shape[0]), int(b.shape[1])
        self.alpha = alpha.to(self.dtype)
        self.beta = beta.to(self.dtype)
        self.b = b.to(self.dtype)
        self._x0 = x0.to(self.dtype)
        self._cache: dict = {}

    @staticmethod
    def _T(x: torch.Tensor) -> torch.Tensor:
        big = x.numel() >= _CHUNK and _no_grad(x)  # small ones: plain torch (no buffer bookkeeping)
        y = torch.mul(x, 2.0, out=_empty(x.shape, x.dtype, x.device)) if big else 2.0 * x
        y[..., :-1] -= x[..., 1:]
        y[..., 1:] -= x[..., :-1]
        return y

    _rowwise_hess = True  # alpha_i T x + beta_i x: elementwise per row

    def _hess(self, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        alpha = self.alpha if rows is None else self.alpha[rows]
        if alpha.numel() * x.shape[-1] < _CHUNK:  # small: the direct form (same products, same sums)
            beta = self.beta if rows is None else self.beta[rows]
            Tx = self._T(x)
            if Tx.dim() == 1 and alpha.numel() == 1:
                Tx = Tx.unsqueeze(0)
            out = Tx.mul_(alpha[:, None]) if Tx.dim() == 2 else alpha[:, None] * Tx
            return out.add_(beta[:, None] * x)  # (alpha_i T x) + (beta_i x), each product rounded once
        Tx = self._T(x)  # a fresh tensor: scaled in place when it has the output's shape
        if Tx.dim() == 2 and Tx.shape[0] == alpha.numel():
            out = Tx.mul_(alpha[:, None])
        elif _no_grad(alpha, Tx):  # one point for every row: the (rows, d) result in a fresh buffer
            out = torch.mul(alpha[:, None], Tx, out=_empty((alpha.numel(), x.shape[-1]), x.dtype, x.device))
        else:
            out = alpha[:, None] * Tx
        # + (beta_i x): each product rounded once, then added (without an (n, d) temporary of the products)
        if x.dim() == 1 and self._uniform("beta"):  # one beta for all: the (d,) product once
            return out.add_(self.beta[:1, None] * x)
        beta = self.beta if rows is None else self.beta[rows]
        step = max(1, _CHUNK // max(1, x.shape[-1]))
        for start in range(0, out.shape[0], step):
            part = x if x.dim() == 1 else x[start : start + step]
            out[start : start + step].add_(beta[start : start + step, None] * part)
        return out

    def client_grads(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        # The rows of the stencil minus those of b, in place; only b's columns that are not +0
        # are subtracted (x - (+0) is x, bit for bit): the generators' b has one such column.
        rows = self._rows(clients)
        out = self._hess(self._point(x, self.n if rows is None else rows.numel()), rows)
        lo, hi = self._b_columns()
        if hi > lo:
            b = self.b[:, lo:hi]
            out[:, lo:hi].sub_(b if rows is None else _take(b, rows))
        return out

    def _b_dots(self, x: torch.Tensor) -> torch.Tensor:
        # b with one column lo not +0: b_i^T x is its product b_{i,lo} x_lo (the other terms are
        # signed zeros, which leave a nonzero sum unchanged), unless that product is zero
        lo, hi = self._b_columns()
        if hi - lo == 1:
            product = self.b[:, lo] * x[..., lo]
            if bool((product != 0).all()):
                return product
        return _row_dots(self.b, x)

    def _cached(self, key: str, tensor: torch.Tensor, fn: Any) -> Any:
        """``fn(tensor)``, cached while ``tensor`` is the same object, unmodified (its version counter)."""
        got = self._cache.get(key)
        if got is None or got[0] is not tensor or got[1] != tensor._version:
            got = self._cache[key] = (tensor, tensor._version, fn(tensor))
        return got[2]

    def _uniform(self, name: str) -> bool:
        """All entries of the per-client vector ``name`` (``alpha``, ``beta``) are equal."""
        return self._cached(f"uniform/{name}", getattr(self, name), lambda t: bool((t == t[:1]).all()))

    def _b_columns(self) -> tuple[int, int]:
        """``[lo, hi)``: the columns of b outside which every entry is +0 (``(0, 0)`` if all are)."""

        def columns(b: torch.Tensor) -> tuple[int, int]:
            used = ((b != 0) | torch.signbit(b)).any(dim=0).nonzero().flatten().tolist()
            return (used[0], used[-1] + 1) if used else (0, 0)

        return self._cached("b_columns", self.b, columns)

    def matrices(self) -> torch.Tensor:
        """The dense ``(n, d, d)`` matrices A_i (for checks; O(n d^2) memory)."""
        dev = self.alpha.device
        T = 2.0 * torch.eye(self.d, dtype=self.dtype, device=dev)
        off = torch.arange(self.d - 1, device=dev)
        T[off, off + 1] = -1.0
        T[off + 1, off] = -1.0
        eye = torch.eye(self.d, dtype=self.dtype, device=dev)
        return self.alpha[:, None, None] * T + self.beta[:, None, None] * eye

    def _matrices(self) -> torch.Tensor:
        return self.matrices()

    def _notes(self) -> str:
        return "exact (closed forms over the eigenvalues of tridiag(-1,2,-1))"

    def smoothness_matrices(self) -> torch.Tensor:
        r""":math:`\mathbf L_i = A_i^+`, the positive part of :math:`A_i=\alpha_iT_d+\beta_iI` (:math:`=A_i` when
        :math:`A_i\succeq0`), ``(n, d, d)`` float64 (dense: O(n d^2) memory)."""
        from commpress.problems._smoothness import psd_part

        return psd_part(self.matrices())

    def smoothness(self) -> Smoothness:
        if "smooth" not in self._cache:
            c = tridiag_constants(self.alpha.cpu(), self.beta.cpu(), self.d)  # the same on every device
            c["mu"] = max(c["mu"], 0.0)
            self._cache["smooth"] = Smoothness(exact=True, notes=self._notes(), **c)
        return self._cache["smooth"]

    def optimum(self) -> tuple[float, torch.Tensor] | None:
        """x* = Ā^{-1} b̄ by a banded (tridiagonal) Cholesky solve, O(d) (None if Ā is not positive
        definite: its eigenvalues a λ_k(T_d) + b are known in closed form)."""
        if "opt" not in self._cache:
            a = float(self.alpha.to(device="cpu", dtype=torch.float64).mean())  # on the CPU, then moved
            b = float(self.beta.to(device="cpu", dtype=torch.float64).mean())
            ev = a * tridiag_eigenvalues(self.d) + b
            if float(ev.min()) <= 0.0:
                self._cache["opt"] = None
            else:
                b_bar = self.b.to(device="cpu", dtype=torch.float64).mean(0)
                if self.d == 1:  # T_1 = (2): Ā is the scalar 2a + b (scipy's banded solver needs d >= 2)
                    x = b_bar / (2 * a + b)
                else:
                    from scipy.linalg import solveh_banded

                    bands = np.zeros((2, self.d))
                    bands[0, 1:] = -a  # superdiagonal of Ā = a T_d + b I
                    bands[1, :] = 2 * a + b
                    x = torch.from_numpy(solveh_banded(bands, b_bar.numpy()))
                self._cache["opt"] = (float(-0.5 * (b_bar @ x)), x.to(self.dtype))
        opt = self._cache["opt"]
        return None if opt is None else (opt[0], opt[1].to(self.device, copy=True))
