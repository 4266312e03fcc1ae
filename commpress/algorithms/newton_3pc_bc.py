"""Newton-3PC-BC: Newton-3PC with bidirectional compression (a 3PC on Hessians, a 3PC on models,
Bernoulli aggregation of gradients)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._newton import Silent, frobenius
from commpress.algorithms.base import _describe, algorithm_state, check_positive, compressor_theory, \
    resolve_compressor, shared_uniform
from commpress.algorithms.newton_3pc import Newton3PC
from commpress.algorithms.registry import register
from commpress.errors import ConfigError
from commpress.theory.second_order import model_learning_rate

MODEL_MECHANISMS = ("ef21", "cbag", "3pcv4")


@algorithm_state
class Newton3PCBCState:
    x: torch.Tensor       # (d,)       server Newton iterate x^k (the output)
    z: torch.Tensor       # (d,)       compressed model z^k known to the clients (next round's point)
    w: torch.Tensor       # (d,)       last point where gradients were computed
    H_i: torch.Tensor     # (rows, N)  client Hessian estimates (upper triangles)
    Y_i: torch.Tensor     # (rows, N)  client memory: the last local Hessian computed (LAG/CLAG's Y)
    H: torch.Tensor       # (N,)       mean of H_i
    grad_w: torch.Tensor  # (d,)       ∇f(w^k) as received
    t: int                # round number
    hessians: int         # local Hessian evaluations so far (per client)


@register("newton_3pc_bc")
class Newton3PCBC(Newton3PC):
    r"""Newton-3PC-BC (Islamov, Qian, Hanzely, Safaryan, Richtárik, *Distributed Newton-Type Methods with
    Communication Compression and Bernoulli Aggregation*, TMLR 2023, Alg. Newton-3PC-BC).

    .. math::
        x^{k+1}=z^k-[H^k]_\mu^{-1}g^k\ \ (\text{option 2: }(H^k+l^kI)^{-1}),\qquad
        z^{k+1}=\mathcal C^M_{z^k,x^k}(x^{k+1}),\qquad \xi^{k+1}\sim\mathrm{Bernoulli}(p)\ \text{(shared)},

    .. math::
        H_i^{k+1}=\mathcal C^W_{H_i^k,\nabla^2f_i(z^k)}\big(\nabla^2f_i(z^{k+1})\big),\qquad
        g^{k+1}=\begin{cases}\nabla f(z^{k+1}) & \xi^{k+1}=1\ (w^{k+1}=z^{k+1})\\
        M^{k+1}(z^{k+1}-w^{k+1})+\nabla f(w^{k+1}) & \xi^{k+1}=0\ (w^{k+1}=w^k),\end{cases}

    :math:`M^{k+1}` the step matrix (:math:`[H^{k+1}]_\mu` or :math:`H^{k+1}+l^{k+1}I`). The worker 3PC
    :math:`\mathcal C^W` is any mechanism of :class:`~commpress.algorithms.newton_3pc.Newton3PC` (``mechanism``,
    ``p_hess``, ``zeta``; its coin for the point :math:`z^{k+1}` is Newton-3PC's coin of round k+1). The master
    3PC on models (``model_mechanism``, :math:`\mathcal C` = ``model_compressor``):

    - ``"ef21"``: :math:`z+\eta\,\mathcal C(x^{k+1}-z)` (FedNL-BC's model compression);
    - ``"cbag"``: with a shared coin of probability ``p_model``: :math:`z+\mathcal C(x^{k+1}-z)`, else :math:`z`
      (nothing sent down, 0 bits);
    - ``"3pcv4"``: :math:`b=z+\mathcal C_1(x^{k+1}-z)`, :math:`z^{k+1}=b+\mathcal C_2(x^{k+1}-b)`
      (``model_compressor`` and ``model_compressor2``, both sent down).

    With the identity model compressor and :math:`p=1` this is Newton-3PC iterate for iterate. Theory
    (N3PC Thm. "3PC-BL1"): :math:`\mathbb E\Phi_1^k\le(1-\min\{A_M/4,3p/8\})^k\Phi_1^0` locally,
    :math:`\Phi_1^k=\|z^k-x^*\|^2+C_M\|x^k-x^*\|^2+\frac{A_M(1-p)}{4p}\|w^k-x^*\|^2`,
    :math:`C_M=\frac4{A_M}+1+\frac{5B_M}2`.

    Round bookkeeping: round k is "clients at :math:`z^k`": the worker 3PC step at :math:`z^k` (Newton-3PC's
    round-k step and coin), the gradient if :math:`\xi^k=1` (:math:`\xi^0=1`), the server's Newton step and the
    model message :math:`z^{k+1}`. This is the algorithm above with the initial Hessian passed once through
    the worker 3PC at :math:`z^0` (as Newton-3PC does at :math:`x^0`).
    Bits per client and round: down the model message(s) (0 when the model CBAG coin is 0); up the Hessian
    3PC message, the gradient (32d) only when :math:`\xi=1`, and :math:`l_i` (32) for option 2. One-time
    (round -1): the dense :math:`H_i^0` (``h0="hessian"``). The coins come from the shared stream (0 bits).

    .. note:: The Hessian is learned at :math:`z^{k+1}` (the algorithm); the reference code of FedNL-BC
       learns it at :math:`z^k`. Option 2 with CBAG/BAG on Hessians is refused (no :math:`l_i` without a Hessian).

    Args:
        compressor, alpha, option, mu, h0, mechanism, zeta: as :class:`~commpress.algorithms.newton_3pc.Newton3PC`.
        p_hess: coin probability of the Hessian CBAG/BAG (default 0.75, the paper's).
        model_mechanism: ``"ef21"`` (default), ``"cbag"`` or ``"3pcv4"``.
        model_compressor: vector compressor of the model (default Top-K, K = d/2; ``"identity"`` for none).
        model_compressor2: the second compressor of ``"3pcv4"`` (default as ``model_compressor``).
        eta: EF21 model learning rate (``"auto"``: 1 contractive, :math:`1/(\omega_M+1)` unbiased).
        p_model: coin probability of the model CBAG (default 0.75). p: gradient probability (default 0.75).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with Communication
        Compression and Bernoulli Aggregation, TMLR 2023, Alg. Newton-3PC-BC, Thm. 3PC-BL1, Sect. 6 (Fig. BC).
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", option: int = 1, mu: float | None = None,
                 h0: str = "hessian", mechanism: str = "cbag", p_hess: float = 0.75, zeta: float = 2.0,
                 model_mechanism: str = "ef21", model_compressor: Any = None, model_compressor2: Any = None,
                 eta: Any = "auto", p_model: float = 0.75, p: float = 0.75) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         alpha=alpha, option=option, mu=mu, h0=h0, mechanism=mechanism, p=p_hess, zeta=zeta)
        owner = type(self).__name__
        if model_mechanism not in MODEL_MECHANISMS:
            raise ConfigError(f"{owner} needs model_mechanism in {list(MODEL_MECHANISMS)}; got {model_mechanism!r}.")
        self.model_mechanism = model_mechanism
        default = {"name": "topk", "ratio": 0.5}
        self.model_compressor = resolve_compressor(model_compressor, "model_compressor", None) or \
            resolve_compressor(default, "model_compressor")
        self.model_compressor2 = None
        if model_mechanism == "3pcv4":
            self.model_compressor2 = resolve_compressor(model_compressor2, "model_compressor2", None) or \
                self.model_compressor
        elif model_compressor2 is not None:
            raise ConfigError(f"{owner}: model_compressor2 is used by model_mechanism='3pcv4' only; drop it.")
        th = compressor_theory(self.model_compressor, 1, self.d)
        self.eta = model_learning_rate(th.kind if th else "biased", th.delta if th else None,
                                       th.omega if th else None, eta, owner)
        if model_mechanism != "ef21":
            self.eta = 1.0  # the 3PC mechanisms send z + C(x - z)
        self.p_model = check_positive("p_model", p_model, owner, upper=1.0)
        if model_mechanism != "cbag":
            self.p_model = 1.0
        self.p_grad = check_positive("p", p, owner, upper=1.0)

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "model_mechanism": self.model_mechanism, "eta": self.eta,
                "p_model": self.p_model, "p_grad": self.p_grad,
                "model_compressor": _describe(self.model_compressor),
                "model_compressor2": _describe(self.model_compressor2)}

    def grad_coin(self, t: int) -> bool:
        """Round t's shared gradient coin ξ^t ~ Bernoulli(p) (0 bits; round 0 always sends)."""
        return shared_uniform(self._seed(t, "grad_coin"), "newton_3pc_bc/grad") < self.p_grad

    def model_coin(self, t: int) -> bool:
        """Round t's shared coin of the model CBAG (always True otherwise), 0 bits."""
        if self.model_mechanism != "cbag":
            return True
        return shared_uniform(self._seed(t, "model_coin"), "newton_3pc_bc/model") < self.p_model

    # ---- pieces
    def _model(self, z: torch.Tensor, x: torch.Tensor, t: int) -> torch.Tensor:
        """z^{k+1} = C^M_{z^k, x^k}(x^{k+1}) as every client decodes it."""
        if not self.model_coin(t):
            return z
        if self.model_mechanism == "ef21":
            return z + self.eta * self._down(x - z, t, "model", compressor=self.model_compressor)
        b = z + self._down(x - z, t, "model", compressor=self.model_compressor)
        if self.model_mechanism == "cbag":
            return b
        return b + self._down(x - b, t, "model2", compressor=self.model_compressor2)

    def _learn(self, H_i, Y_i, H, z, t, evals):
        """The worker 3PC at the clients' point z (Newton-3PC's round-t Hessian step); returns H_i, Y_i, H, l, evals."""
        l = 0.0
        if not self.coin(t):
            return H_i, Y_i, H, l, evals
        X = self._hess(z)
        evals += 1
        if self.mechanism in ("lag", "clag"):
            fire = frobenius(X - H_i, self.d) ** 2 > self.zeta * frobenius(X - Y_i, self.d) ** 2
            full = torch.zeros(self.n, dtype=torch.bool)
            full[self.network.clients] = fire.cpu()
            if self.mechanism == "lag":
                X_hat = self._up(X, Silent(self.dense, full), t, "hess")
                S = torch.where(fire[:, None], X_hat - H_i, 0.0)
            else:
                S = self._up(X - H_i, Silent(self.hess_compressor, full), t, "hess")
        else:
            comp = self.dense if self.mechanism == "bag" else self.hess_compressor
            S = self._up(X - H_i, comp, t, "hess")
        H_i = H_i + self.alpha * S
        H = H + self.alpha * self.network.mean(S)
        if self.option == 2:
            l = self._send_shifts(H_i, X, t)
        return H_i, X, H, l, evals

    def init(self, x0: torch.Tensor | None = None) -> Newton3PCBCState:
        x = self._x0(x0)
        H_i = self._init_hessians(x)
        zeros = torch.zeros(self.d, dtype=self.problem.dtype, device=self.problem.device)
        return Newton3PCBCState(x=x, z=x.clone(), w=x.clone(), H_i=H_i, Y_i=self._hess(x), H=self.network.mean(H_i),
                                grad_w=zeros, t=0, hessians=1)

    def step(self, state: Newton3PCBCState) -> Newton3PCBCState:
        t, z = state.t, state.z
        H_i, Y_i, H, l, evals = self._learn(state.H_i, state.Y_i, state.H, z, t, state.hessians)
        M = self._matrix(H, l)
        if t == 0 or self.grad_coin(t):  # xi^0 = 1
            g = self.network.mean(self._up(self._grads(z), self.dense, t, "grad"))
            w, grad_w = z, g
        else:
            w, grad_w = state.w, state.grad_w
            g = M @ (z - w) + grad_w
        x = z - self.gamma * torch.linalg.solve(M, g)
        return Newton3PCBCState(x=x, z=self._model(z, x, t), w=w, H_i=H_i, Y_i=Y_i, H=H, grad_w=grad_w, t=t + 1,
                                hessians=evals)
