"""FedNL: Newton's method with compressed Hessian learning (Safaryan et al., ICML 2022)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._newton import NewtonBase
from commpress.algorithms.base import algorithm_state
from commpress.algorithms.registry import register


@algorithm_state
class FedNLState:
    x: torch.Tensor    # (d,)       server iterate x^k
    H_i: torch.Tensor  # (rows, N)  client Hessian estimates H_i^k (upper triangles, N = d(d+1)/2)
    H: torch.Tensor    # (N,)       server estimate H^k = mean of the H_i^k
    t: int             # round number


@register("fednl")
class FedNL(NewtonBase):
    r"""FedNL (Safaryan, Islamov, Qian, Richtárik, ICML 2022, Alg. 1; N3PC Alg. 1 with EF21).

    .. math::
        S_i^k = \mathcal C\big(\nabla^2 f_i(x^k) - H_i^k\big),\quad
        H_i^{k+1} = H_i^k + \alpha S_i^k,\quad
        l^k = \tfrac1n\textstyle\sum_i\|H_i^k-\nabla^2 f_i(x^k)\|_F,

    .. math::
        x^{k+1} = x^k - \gamma\,[H^k]_\mu^{-1}\nabla f(x^k)\ \ \text{(option 1)},\qquad
        x^{k+1} = x^k - \gamma\,(H^k + l^kI)^{-1}\nabla f(x^k)\ \ \text{(option 2)},

    :math:`H^{k+1}=H^k+\frac\alpha n\sum_iS_i^k`; :math:`[A]_\mu=\sum_j\max(\lambda_j,\mu)u_ju_j^\top`.
    The step uses :math:`H^k`, the estimate before this round's update. :math:`\gamma=1` (default) is
    the paper's method.

    Per round and client: the server broadcasts :math:`x^k` (32d bits), the client sends
    :math:`\nabla f_i(x^k)` (32d), the compressed Hessian difference (the matrix compressor's payload)
    and, option 2, :math:`l_i^k` (32). :math:`H_i^0=\nabla^2 f_i(x^0)` (``h0="hessian"``) is sent once,
    densely, in round -1 (:math:`32\,d(d+1)/2` bits); ``h0="zero"`` starts from 0.

    Hessian learning rate ``alpha``: ``"auto"`` (1 for a contractive compressor, the papers' choice;
    :math:`1/(\omega+1)` for an unbiased one), ``"conservative"`` (:math:`1-\sqrt{1-\delta}`) or a number.
    Local theory (N3PC Thm. 1 with EF21's :math:`(A, B)`): :math:`\|x^k-x^*\|^2\le2^{-k}\|x^0-x^*\|^2` near
    :math:`x^*`, independently of the condition number (:mod:`commpress.theory`).

    .. note:: :math:`l_i` is the Frobenius norm, as the algorithm states (the reference code of
       ``FedNL.method`` uses the spectral norm). Top-K's contraction is :math:`K/d^2`, not the
       reference code's :math:`2K/(d(d+1))`.

    Args:
        compressor: a symmetric-matrix compressor of :mod:`commpress.compressors.matrix`
            (``"rank"`` = Rank-1, default; ``"topk"``, ``"randk"``, ``"threshold"``, a dict or an instance).
        alpha: Hessian learning rate.
        option: 1 (projection, needs ``mu``) or 2 (shift).
        mu: :math:`\mu` of the projection (default: the problem's strong convexity).
        h0: ``"hessian"`` or ``"zero"``.
        gamma: step scale (default 1).

    References:
        Safaryan, Islamov, Qian, Richtárik, FedNL: Making Newton-Type Methods Applicable to Federated
        Learning, ICML 2022, Alg. 1; Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed
        Newton-Type Methods with Communication Compression and Bernoulli Aggregation, TMLR 2023, Thm. 1.
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", option: int = 1, mu: float | None = None,
                 h0: str = "hessian") -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=option, mu=mu, h0=h0)

    def init(self, x0: torch.Tensor | None = None) -> FedNLState:
        x = self._x0(x0)
        H_i = self._init_hessians(x)
        return FedNLState(x=x, H_i=H_i, H=self.network.mean(H_i), t=0)

    def step(self, state: FedNLState) -> FedNLState:
        t = state.t
        x_c = self._down(state.x, t)
        G = self._up(self._grads(x_c), self.dense, t, "grad")
        Hx = self._hess(x_c)
        S = self._up(Hx - state.H_i, self.hess_compressor, t, "hess")
        l = self._send_shifts(state.H_i, Hx, t) if self.option == 2 else 0.0
        g = self.network.mean(G)
        x = state.x - self.gamma * torch.linalg.solve(self._matrix(state.H, l), g)
        return FedNLState(x=x, H_i=state.H_i + self.alpha * S, H=state.H + self.alpha * self.network.mean(S), t=t + 1)
