"""FedNL-BC: FedNL with bidirectional compression and Bernoulli gradient aggregation."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._newton import NewtonBase, project_mu
from commpress.algorithms.base import INIT_ROUND, algorithm_state, check_positive, compressor_theory, resolve_compressor, shared_uniform
from commpress.algorithms.registry import register
from commpress.compressors.matrix import tri_to_sym
from commpress.theory.second_order import model_learning_rate


@algorithm_state
class FedNLBCState:
    x: torch.Tensor       # (d,)       server Newton iterate x^k
    z: torch.Tensor       # (d,)       compressed model z^k known to the clients
    w: torch.Tensor       # (d,)       last point where gradients were computed
    H_i: torch.Tensor     # (rows, N)  client Hessian estimates (upper triangles)
    H: torch.Tensor       # (N,)       mean of H_i
    g: torch.Tensor       # (d,)       server's gradient estimate g^k
    grad_w: torch.Tensor  # (d,)       ∇f(w^k) as received
    t: int                # round number


@register("fednl_bc")
class FedNLBC(NewtonBase):
    r"""FedNL-BC (Safaryan et al., ICML 2022; = Newton-3PC-BC with EF21 on Hessians and models,
    Islamov et al., TMLR 2023, Alg. Newton-3PC-BC).

    .. math::
        x^{k+1}=z^k-[H^k]_\mu^{-1}g^k,\qquad z^{k+1}=z^k+\eta\,\mathcal C^M(x^{k+1}-z^k),\qquad
        \xi^{k+1}\sim\mathrm{Bernoulli}(p)\ \text{(shared)},

    .. math::
        H_i^{k+1}=H_i^k+\alpha\,\mathcal C\big(\nabla^2f_i(z^{k+1})-H_i^k\big),\qquad
        g^{k+1}=\begin{cases}\nabla f(z^{k+1}) & \xi^{k+1}=1\ (w^{k+1}=z^{k+1})\\
        [H^{k+1}]_\mu(z^{k+1}-w^{k+1})+\nabla f(w^{k+1}) & \xi^{k+1}=0\ (w^{k+1}=w^k).\end{cases}

    Per round and client: the model compressor's payload down; the Hessian message up; the gradient
    (32d) up only when :math:`\xi=1`. Model learning rate ``eta``: ``"auto"`` (1 for a contractive model
    compressor, :math:`1/(\omega_M+1)` for an unbiased one) or a number. Theory (N3PC Thm. "3PC-BL1"):
    :math:`\mathbb E\Phi_1^k\le(1-\min\{A_M/4,3p/8\})^k\Phi_1^0` locally.

    .. note:: The Hessian is learned at :math:`z^{k+1}` (the algorithm); the FedNL reference code learns
       it at :math:`z^k`, one round earlier. Option 1 (projection) only.

    Args:
        compressor, alpha, mu, h0: as :class:`~commpress.algorithms.fednl.FedNL`.
        model_compressor: vector compressor of the model difference (default Top-K with K = d/2,
            the reference notebook's).
        eta: model learning rate. p: probability of a gradient round (default 0.5).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with Communication
        Compression and Bernoulli Aggregation, TMLR 2023, Alg. Newton-3PC-BC, Thm. 3PC-BL1; Safaryan et al.,
        FedNL, ICML 2022 (FedNL-BC).
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", mu: float | None = None, h0: str = "hessian",
                 model_compressor: Any = None, eta: Any = "auto", p: float = 0.5) -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=1, mu=mu, h0=h0)
        owner = type(self).__name__
        self.model_compressor = resolve_compressor(model_compressor, "model_compressor", None) or \
            resolve_compressor({"name": "topk", "ratio": 0.5}, "model_compressor")
        th = compressor_theory(self.model_compressor, 1, self.d)
        self.eta = model_learning_rate(th.kind if th else "biased", th.delta if th else None,
                                       th.omega if th else None, eta, owner)
        self.p = check_positive("p", p, owner, upper=1.0)

    def _extra_params(self) -> dict[str, Any]:
        from commpress.algorithms.base import _describe

        return {**super()._extra_params(), "eta": self.eta, "p": self.p,
                "model_compressor": _describe(self.model_compressor)}

    def coin(self, t: int) -> bool:
        """Round t's shared coin ξ ~ Bernoulli(p) (0 bits)."""
        return shared_uniform(self._seed(t, "coin"), "fednl_bc/coin") < self.p

    def init(self, x0: torch.Tensor | None = None) -> FedNLBCState:
        x = self._x0(x0)
        H_i = self._init_hessians(x)
        g = self.network.mean(self._up(self._grads(x), self.dense, INIT_ROUND, "grad0"))
        return FedNLBCState(x=x, z=x.clone(), w=x.clone(), H_i=H_i, H=self.network.mean(H_i), g=g, grad_w=g, t=0)

    def step(self, state: FedNLBCState) -> FedNLBCState:
        t = state.t
        x = state.z - self.gamma * torch.linalg.solve(self._matrix(state.H), state.g)
        z = state.z + self.eta * self._down(x - state.z, t, "model", compressor=self.model_compressor)
        S = self._up(self._hess(z) - state.H_i, self.hess_compressor, t, "hess")
        H_i = state.H_i + self.alpha * S
        H = state.H + self.alpha * self.network.mean(S)
        if self.coin(t):
            g = self.network.mean(self._up(self._grads(z), self.dense, t, "grad"))
            w, grad_w = z, g
        else:
            w, grad_w = state.w, state.grad_w
            g = project_mu(tri_to_sym(H, self.d), self.mu) @ (z - w) + grad_w
        return FedNLBCState(x=x, z=z, w=w, H_i=H_i, H=H, g=g, grad_w=grad_w, t=t + 1)
