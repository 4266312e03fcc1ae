"""Newton-3PC: Newton-type steps with Hessians learned by any three-point compressor (EF21, LAG, CLAG, CBAG, BAG)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._newton import NewtonBase, Silent, frobenius
from commpress.algorithms.base import algorithm_state, check_positive, shared_uniform
from commpress.algorithms.registry import register
from commpress.errors import ConfigError
from commpress.theory.second_order import newton_3pc_constants

MECHANISMS = ("ef21", "cbag", "bag", "lag", "clag")


@algorithm_state
class Newton3PCState:
    x: torch.Tensor    # (d,)       server iterate x^k
    H_i: torch.Tensor  # (rows, N)  client Hessian estimates H_i^k (upper triangles)
    Y_i: torch.Tensor  # (rows, N)  client memory: the last local Hessian computed (LAG/CLAG's Y)
    H: torch.Tensor    # (N,)       mean of H_i
    t: int             # round number
    hessians: int      # local Hessian evaluations so far (per client, summed over rounds)


@register("newton_3pc")
class Newton3PC(NewtonBase):
    r"""Newton-3PC (Islamov, Qian, Hanzely, Safaryan, Richtárik, TMLR 2023, Alg. 1).

    .. math::
        H_i^{k}=\mathcal C_{H_i^{k-1},\,\nabla^2f_i(x^{k-1})}\big(\nabla^2f_i(x^{k})\big),\qquad
        x^{k+1}=x^k-[H^k]_\mu^{-1}\nabla f(x^k)\ \text{(option 1)}\ \text{or}\ (H^k+l^kI)^{-1}\nabla f(x^k)\ \text{(option 2)},

    :math:`l^k=\frac1n\sum_i\|H_i^k-\nabla^2f_i(x^k)\|_F`. Mechanisms :math:`\mathcal C_{H,Y}(X)`
    (``mechanism``; :math:`\mathcal C` the matrix compressor):

    - ``"ef21"``: :math:`H+\alpha\mathcal C(X-H)` (FedNL's Hessian learning);
    - ``"cbag"``: with a shared coin :math:`\xi\sim\mathrm{Bernoulli}(p)`: :math:`H+\mathcal C(X-H)` if
      :math:`\xi=1`, else :math:`H` (nothing sent and **no Hessian computed**);
    - ``"bag"``: CBAG with the identity (the full triangle, :math:`32\,d(d+1)/2` bits, w.p. p);
    - ``"lag"``: :math:`X` (sent densely) if :math:`\|X-H\|_F^2>\zeta\|X-Y\|_F^2`, else :math:`H` (nothing sent);
    - ``"clag"``: :math:`H+\mathcal C(X-H)` if the same trigger fires, else :math:`H`.

    3PC constants :math:`(A, B)`: :func:`commpress.theory.newton_3pc_constants`; local rate
    :math:`1-\min\{A/2,1/3\}` (N3PC Thm. 1). A client that does not send is charged 0 bits (the
    server learns it from the missing message). Per round and client also :math:`x^k` down and
    :math:`\nabla f_i(x^k)` up (32d each), and :math:`l_i` (32) for option 2.

    Args:
        compressor, alpha, option, mu, h0: as :class:`~commpress.algorithms.fednl.FedNL` (``alpha``
            scales the EF21 mechanism only).
        mechanism: one of ``"ef21"``, ``"cbag"``, ``"bag"``, ``"lag"``, ``"clag"``.
        p: coin probability of CBAG/BAG (default 0.75, the paper's). zeta: LAG/CLAG trigger (default 2).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with Communication
        Compression and Bernoulli Aggregation, TMLR 2023, Alg. 1, Thm. 1, Sect. 3 (mechanisms).
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", option: int = 1, mu: float | None = None,
                 h0: str = "hessian", mechanism: str = "cbag", p: float = 0.75, zeta: float = 2.0) -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=option, mu=mu, h0=h0, default_compressor={"name": "topk"})
        owner = type(self).__name__
        if mechanism not in MECHANISMS:
            raise ConfigError(f"{owner} needs mechanism in {list(MECHANISMS)}; got mechanism={mechanism!r}.")
        if option == 2 and mechanism in ("cbag", "bag"):
            raise ConfigError(f"{owner}: option 2 needs l_i, hence a local Hessian every round, which "
                              f"{mechanism} skips; use option=1.")
        self.mechanism = mechanism
        self.p = check_positive("p", p, owner, upper=1.0)
        self.zeta = check_positive("zeta", zeta, owner)
        if mechanism == "lag" and compressor is not None:
            raise ConfigError(f"{owner}: mechanism='lag' sends full Hessians and takes no compressor; "
                              "use mechanism='clag' to compress.")
        if mechanism in ("ef21", "lag"):
            self.p = 1.0
        if mechanism == "lag":
            self.alpha = 1.0
        if mechanism in ("cbag", "clag", "bag"):
            self.alpha = 1.0  # the 3PC mechanisms of N3PC send H + C(X - H)
        if mechanism in ("lag", "clag"):
            Silent.check_inner(self.hess_compressor, self.n, self.N)

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "mechanism": self.mechanism, "p": self.p, "zeta": self.zeta}

    def three_pc(self) -> tuple[float, float]:
        """(A, B) of the mechanism with this compressor's constants."""
        th = self.hess_compressor.theory(self.n, self.N)
        delta = 1.0 if self.mechanism in ("bag", "lag") else (self.alpha * th.delta if th.delta is not None
                                                              else 1.0 / (1.0 + th.omega))
        return newton_3pc_constants(self.mechanism, delta=delta, p=self.p, zeta=self.zeta)

    def coin(self, t: int) -> bool:
        """Round t's shared coin (CBAG/BAG; always True otherwise), 0 bits."""
        if self.mechanism not in ("cbag", "bag"):
            return True
        return shared_uniform(self._seed(t, "coin"), "newton_3pc/coin") < self.p

    def init(self, x0: torch.Tensor | None = None) -> Newton3PCState:
        x = self._x0(x0)
        H_i = self._init_hessians(x)
        return Newton3PCState(x=x, H_i=H_i, Y_i=self._hess(x), H=self.network.mean(H_i), t=0, hessians=1)

    def step(self, state: Newton3PCState) -> Newton3PCState:
        t = state.t
        x_c = self._down(state.x, t)
        G = self._up(self._grads(x_c), self.dense, t, "grad")
        H_i, Y_i, H, evals, l = state.H_i, state.Y_i, state.H, state.hessians, 0.0
        if self.coin(t):
            X = self._hess(x_c)
            evals += 1
            if self.mechanism in ("lag", "clag"):
                D2 = frobenius(X - H_i, self.d) ** 2
                fire = D2 > self.zeta * frobenius(X - Y_i, self.d) ** 2
                full = torch.zeros(self.n, dtype=torch.bool)
                full[self.network.clients] = fire.cpu()  # Silent reads the local clients' entries only
                if self.mechanism == "lag":  # the full X, densely; the others keep H_i
                    X_hat = self._up(X, Silent(self.dense, full), t, "hess")
                    S = torch.where(fire[:, None], X_hat - H_i, 0.0)
                else:
                    S = self._up(X - H_i, Silent(self.hess_compressor, full), t, "hess")
            else:
                comp = self.dense if self.mechanism == "bag" else self.hess_compressor
                S = self._up(X - H_i, comp, t, "hess")
            H_i = H_i + self.alpha * S
            H = H + self.alpha * self.network.mean(S)
            Y_i = X
            if self.option == 2:
                l = self._send_shifts(H_i, X, t)
        g = self.network.mean(G)
        x = state.x - self.gamma * torch.linalg.solve(self._matrix(H, l), g)
        return Newton3PCState(x=x, H_i=H_i, Y_i=Y_i, H=H, t=t + 1, hessians=evals)
