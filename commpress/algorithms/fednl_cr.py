"""FedNL-CR: FedNL with cubic regularisation (global convergence)."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms._newton import NewtonBase
from commpress.algorithms.base import algorithm_state
from commpress.algorithms.registry import register
from commpress.compressors.matrix import tri_to_sym
from commpress.errors import ConfigError
from commpress.theory.second_order import logistic_hessian_lipschitz


def cubic_step(A: torch.Tensor, g: torch.Tensor, M: float, *, iters: int = 200) -> torch.Tensor:
    r"""Exact minimiser of :math:`\langle g,h\rangle+\frac12h^\top Ah+\frac M6\|h\|^3` for symmetric ``A``.

    :math:`h=-(A+\frac{Mr}2I)^{-1}g` with :math:`r=\|h\|` the root of the monotone secular equation
    :math:`\|(\Lambda+\frac{Mr}2)^{-1}U^\top g\|=r` on :math:`r>\max(0,-2\lambda_{\min}/M)`, found by
    bisection in the eigenbasis (the hard case, g orthogonal to a negative eigenvector, is not treated).
    ``M = 0``: the Newton step :math:`-A^{-1}g`.
    """
    if M <= 0:
        return -torch.linalg.solve(A, g)
    lam, U = torch.linalg.eigh(A)
    q = U.T @ g
    gn = float(g.norm())
    if gn == 0.0:
        return torch.zeros_like(g)

    def phi(r: float) -> float:
        return float((q / (lam + 0.5 * M * r)).norm()) - r

    lo = max(0.0, -2.0 * float(lam[0]) / M) * (1 + 1e-12) + 1e-300
    hi = lo + math.sqrt(2.0 * gn / M) + 2.0 * gn / max(float(lam[-1]) + 0.5 * M * lo, 1e-300)
    while phi(hi) > 0:
        hi *= 2.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if phi(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    r = hi
    return -(U @ (q / (lam + 0.5 * M * r)))


@algorithm_state
class FedNLCRState:
    x: torch.Tensor    # (d,)       server iterate x^k
    H_i: torch.Tensor  # (rows, N)  client Hessian estimates (upper triangles)
    H: torch.Tensor    # (N,)       server estimate, the mean of H_i
    t: int             # round number


@register("fednl_cr")
class FedNLCR(NewtonBase):
    r"""FedNL-CR (Safaryan et al., ICML 2022; = Newton-3PC-CR with EF21, Islamov et al., TMLR 2023).

    .. math::
        h^k=\arg\min_h\ \langle\nabla f(x^k),h\rangle+\tfrac12\langle(H^k+l^kI)h,h\rangle+\tfrac{L_*}6\|h\|^3,
        \qquad x^{k+1}=x^k+h^k,

    :math:`l^k=\frac1n\sum_i\|H_i^k-\nabla^2f_i(x^k)\|_F` and FedNL's Hessian learning. The subproblem is
    solved exactly (secular equation in the eigenbasis of :math:`H^k+l^kI`, ``cubic_step``).
    Per round and client: :math:`x^k` down, :math:`\nabla f_i` (32d), the Hessian message and :math:`l_i`
    (32) up. Theory: global linear rate (strongly convex), :math:`O(1/k)` (convex), plus the local rates.

    .. note:: The FedNL reference code's ``FedNL_CR`` updates one client's :math:`H_i` per round and
       its secular solver uses :math:`Ug` for :math:`U^\top g`; this implementation follows the algorithm.

    Args:
        compressor, alpha, h0: as :class:`~commpress.algorithms.fednl.FedNL` (the shift of option 2).
        L_star: Hessian Lipschitz constant :math:`L_*`; ``"auto"``: the logistic bound
            :math:`\frac1{6\sqrt3}\frac1n\sum_i\frac1{m_i}\sum_j\|a_{ij}\|^3` for ``logreg``, 0 for problems with
            constant Hessians (least squares, quadratics).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with Communication
        Compression and Bernoulli Aggregation, TMLR 2023, Alg. Newton-3PC-CR; Safaryan et al., FedNL, ICML 2022.
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", h0: str = "hessian",
                 L_star: Any = "auto") -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=2, mu=0.0, h0=h0)
        self.L_star = self._lipschitz(L_star)

    def _lipschitz(self, L_star: Any) -> float:
        from commpress.problems.least_squares import LeastSquares
        from commpress.problems.logreg import LogReg
        from commpress.problems._quadratic_base import _Quadratic

        owner = type(self).__name__
        if L_star == "auto":
            if isinstance(self.problem, LogReg):
                return logistic_hessian_lipschitz(self.problem.data.features, self.problem.data.counts)
            if isinstance(self.problem, (LeastSquares, _Quadratic)):
                return 0.0
            raise ConfigError(f"{owner}: no Hessian Lipschitz constant known for {type(self.problem).__name__}; "
                              "pass L_star=<bound>.")
        try:
            value = float(L_star)
        except (TypeError, ValueError):
            value = float("nan")
        if not (value >= 0 and math.isfinite(value)):
            raise ConfigError(f"{owner} needs L_star >= 0 or 'auto'; got L_star={L_star!r}.")
        return value

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "L_star": self.L_star}

    def init(self, x0: torch.Tensor | None = None) -> FedNLCRState:
        x = self._x0(x0)
        H_i = self._init_hessians(x)
        return FedNLCRState(x=x, H_i=H_i, H=self.network.mean(H_i), t=0)

    def step(self, state: FedNLCRState) -> FedNLCRState:
        t = state.t
        x_c = self._down(state.x, t)
        G = self._up(self._grads(x_c), self.dense, t, "grad")
        Hx = self._hess(x_c)
        S = self._up(Hx - state.H_i, self.hess_compressor, t, "hess")
        l = self._send_shifts(state.H_i, Hx, t)
        g = self.network.mean(G)
        A = tri_to_sym(state.H, self.d) + float(l) * self._eye
        x = state.x + self.gamma * cubic_step(A, g, self.L_star)
        return FedNLCRState(x=x, H_i=state.H_i + self.alpha * S, H=state.H + self.alpha * self.network.mean(S), t=t + 1)
