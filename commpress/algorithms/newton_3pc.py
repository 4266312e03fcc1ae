"""Newton-3PC: Newton-type steps with Hessians learned by any three-point compressor (EF21, LAG, CLAG, CBAG, BAG,
3PCv1, 3PCv2, 3PCv4, 3PCv5, adaptive Top-K, rotation)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._newton import NewtonBase, Silent, frobenius
from commpress.algorithms.base import algorithm_state, check_positive, shared_uniform
from commpress.algorithms.registry import register
from commpress.compressors.base import Context
from commpress.compressors.matrix import MatrixCompressor, Rotation
from commpress.compressors.matrix import make as make_matrix
from commpress.errors import ConfigError
from commpress.theory.second_order import newton_3pc_constants

MECHANISMS = ("ef21", "cbag", "bag", "lag", "clag", "3pcv1", "3pcv2", "3pcv4", "3pcv5", "adaptive_topk", "rotation")
#: mechanisms whose (outer) compressor must be contractive
_CONTRACTIVE = ("3pcv1", "3pcv2", "3pcv4", "3pcv5", "rotation")


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
    - ``"clag"``: :math:`H+\mathcal C(X-H)` if the same trigger fires, else :math:`H`;
    - ``"3pcv1"``: :math:`Y+\mathcal C(X-Y)`; the server does not know :math:`Y`, so the client sends it
      densely (:math:`32\,d(d+1)/2` bits, as the authors' code) besides :math:`\mathcal C(X-Y)`;
    - ``"3pcv2"``: :math:`b=H+\mathcal Q(X-Y)`, then :math:`b+\mathcal C(X-b)` (``inner_compressor``
      :math:`\mathcal Q` unbiased, default Rand-:math:`d`; both parts sent);
    - ``"3pcv4"``: :math:`b=H+\mathcal C_1(X-H)`, then :math:`b+\mathcal C_2(X-b)` (``compressor2``
      :math:`\mathcal C_2`, default Top-:math:`d`; both parts sent);
    - ``"3pcv5"``: with a shared coin :math:`\xi\sim\mathrm{Bernoulli}(p)`: :math:`X` (sent densely) if
      :math:`\xi=1`, else :math:`H+\mathcal C(X-Y)`;
    - ``"adaptive_topk"``: :math:`H+\text{Top-}K_i(X-H)`, :math:`K_i=\min\{\lceil d^2\|Y-H\|_F^2/\|X-H\|_F^2\rceil, d_0\}`
      per client (``d0``, default :math:`d`; nothing sent when :math:`K_i=0`; the receiver learns
      :math:`K_i` from the message, which carries its :math:`K_i` (index, value) pairs);
    - ``"rotation"``: :math:`H+Q\,\mathcal C(Q^\top(X-H)Q)\,Q^\top` (Basis Learn's rotation: the
      compressor wrapped in :class:`~commpress.compressors.matrix.Rotation` with ``basis`` Q unless it
      already is one).

    The 3PCv* and adaptive constants are derived (3PCv1/v2/v4/v5) or N3PC App. A's; the mechanisms use
    :math:`\alpha=1`.

    3PC constants :math:`(A, B)`: :func:`commpress.theory.newton_3pc_constants`; local rate
    :math:`1-\min\{A/2,1/3\}` (N3PC Thm. 1). A client that does not send is charged 0 bits (the
    server learns it from the missing message). Per round and client also :math:`x^k` down and
    :math:`\nabla f_i(x^k)` up (32d each), and :math:`l_i` (32) for option 2.

    Args:
        compressor, alpha, option, mu, h0: as :class:`~commpress.algorithms.fednl.FedNL` (``alpha``
            scales the EF21 mechanism only).
        mechanism: one of ``"ef21"``, ``"cbag"``, ``"bag"``, ``"lag"``, ``"clag"``, ``"3pcv1"``, ``"3pcv2"``,
            ``"3pcv4"``, ``"3pcv5"``, ``"adaptive_topk"``, ``"rotation"``.
        p: coin probability of CBAG/BAG/3PCv5 (default 0.75, the paper's). zeta: LAG/CLAG trigger (default 2).
        inner_compressor: 3PCv2's unbiased :math:`\mathcal Q` (default ``{"name": "randk", "k": d}``).
        compressor2: 3PCv4's :math:`\mathcal C_2` (default ``{"name": "topk", "k": d}``).
        d0: adaptive Top-K budget (default d). basis: the rotation's orthogonal Q (default identity).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with Communication
        Compression and Bernoulli Aggregation, TMLR 2023, Alg. 1, Thm. 1, Sect. 3 (mechanisms).
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", option: int = 1, mu: float | None = None,
                 h0: str = "hessian", mechanism: str = "cbag", p: float = 0.75, zeta: float = 2.0,
                 inner_compressor: Any = None, compressor2: Any = None, d0: int | None = None,
                 basis: Any = None) -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=option, mu=mu, h0=h0, default_compressor={"name": "topk"})
        owner = type(self).__name__
        if mechanism not in MECHANISMS:
            raise ConfigError(f"{owner} needs mechanism in {list(MECHANISMS)}; got mechanism={mechanism!r}.")
        if mechanism == "adaptive_topk" and compressor is not None:
            raise ConfigError(f"{owner}: mechanism='adaptive_topk' chooses its own Top-K and takes no compressor; "
                              "pass d0=<budget> instead.")
        if mechanism == "rotation" and not isinstance(self.hess_compressor, Rotation):
            self.hess_compressor = self.compressor = Rotation(basis=basis, inner=self.hess_compressor)
            self.hess_compressor.check_shape(self._ctx0())
        elif basis is not None and mechanism != "rotation":
            raise ConfigError(f"{owner}: basis is used by mechanism='rotation' only; got mechanism={mechanism!r}.")
        if mechanism in _CONTRACTIVE and self.hess_compressor.theory(self.n, self.N).kind != "contractive":
            raise ConfigError(f"{owner}: mechanism={mechanism!r} needs a contractive compressor (topk, rank, "
                              f"threshold); got {self.hess_compressor.name}.")
        self.inner_compressor: MatrixCompressor | None = None
        self.compressor2: MatrixCompressor | None = None
        if mechanism == "3pcv2":
            self.inner_compressor = make_matrix({"name": "randk", "k": self.d} if inner_compressor is None
                                                else inner_compressor)
            self.inner_compressor.check_shape(self._ctx0())
            if self.inner_compressor.theory(self.n, self.N).kind != "unbiased":
                raise ConfigError(f"{owner}: 3pcv2's inner_compressor must be unbiased (e.g. 'randk'); got "
                                  f"{self.inner_compressor.name}.")
        elif inner_compressor is not None:
            raise ConfigError(f"{owner}: inner_compressor is used by mechanism='3pcv2' only.")
        if mechanism == "3pcv4":
            self.compressor2 = make_matrix({"name": "topk", "k": self.d} if compressor2 is None else compressor2)
            self.compressor2.check_shape(self._ctx0())
            if self.compressor2.theory(self.n, self.N).kind != "contractive":
                raise ConfigError(f"{owner}: 3pcv4's compressor2 must be contractive (e.g. 'topk'); got "
                                  f"{self.compressor2.name}.")
        elif compressor2 is not None:
            raise ConfigError(f"{owner}: compressor2 is used by mechanism='3pcv4' only.")
        self.d0 = self.d if d0 is None else int(d0)
        if not 0 < self.d0 <= self.N:
            raise ConfigError(f"{owner} needs 0 < d0 <= d(d+1)/2 = {self.N}; got d0={d0!r}.")
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
        if mechanism != "ef21":
            self.alpha = 1.0  # the 3PC mechanisms of N3PC send H + C(X - H) (or their own update)
        if mechanism in ("lag", "clag"):
            Silent.check_inner(self.hess_compressor, self.n, self.N)

    def _ctx0(self) -> Context:
        return Context(0, self.n, self.N, torch.arange(1), torch.float64, torch.device("cpu"))

    def _extra_params(self) -> dict[str, Any]:
        out = {**super()._extra_params(), "mechanism": self.mechanism, "p": self.p, "zeta": self.zeta}
        if self.mechanism == "adaptive_topk":
            out["d0"] = self.d0
        for key in ("inner_compressor", "compressor2"):
            comp = getattr(self, key)
            if comp is not None:
                out[key] = {"name": comp.name, **comp.params()}
        return out

    def three_pc(self) -> tuple[float, float]:
        """(A, B) of the mechanism with this compressor's constants."""
        if self.mechanism == "adaptive_topk":
            return newton_3pc_constants("adaptive_topk", d0=self.d0, dim=self.d)
        th = self.hess_compressor.theory(self.n, self.N)
        if self.mechanism == "3pcv2":
            return newton_3pc_constants("3pcv2", delta=th.delta,
                                        omega=self.inner_compressor.theory(self.n, self.N).omega)
        if self.mechanism == "3pcv4":
            return newton_3pc_constants("3pcv4", delta=th.delta,
                                        delta2=self.compressor2.theory(self.n, self.N).delta)
        delta = 1.0 if self.mechanism in ("bag", "lag") else (self.alpha * th.delta if th.delta is not None
                                                              else 1.0 / (1.0 + th.omega))
        return newton_3pc_constants(self.mechanism, delta=delta, p=self.p, zeta=self.zeta)

    def coin(self, t: int) -> bool:
        """Round t's shared coin (CBAG/BAG: compute and send; 3PCv5: send X densely; always True otherwise), 0 bits."""
        if self.mechanism not in ("cbag", "bag", "3pcv5"):
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
        if self.mechanism in ("3pcv1", "3pcv2", "3pcv4", "3pcv5", "adaptive_topk"):
            X = self._hess(x_c)
            evals += 1
            H_new = self._learn(H_i, Y_i, X, t)
            H = H + self.network.mean(H_new - H_i)
            H_i, Y_i = H_new, X
            if self.option == 2:
                l = self._send_shifts(H_i, X, t)
        elif self.coin(t):
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

    def _learn(self, H_i: torch.Tensor, Y_i: torch.Tensor, X: torch.Tensor, t: int) -> torch.Tensor:
        """The new estimates C_{H_i, Y_i}(X) of the 3PCv* and adaptive mechanisms, charging what is sent."""
        m = self.mechanism
        if m == "3pcv1":  # the server needs Y: sent densely, then C(X - Y) relative to the Y it received
            Y_hat = self._up(Y_i, self.dense, t, "hess_ref")
            return Y_hat + self._up(X - Y_hat, self.hess_compressor, t, "hess")
        if m == "3pcv2":
            b = H_i + self._up(X - Y_i, self.inner_compressor, t, "hess_inner")
            return b + self._up(X - b, self.hess_compressor, t, "hess")
        if m == "3pcv4":
            b = H_i + self._up(X - H_i, self.hess_compressor, t, "hess")
            return b + self._up(X - b, self.compressor2, t, "hess2")
        if m == "3pcv5":
            if self.coin(t):
                return self._up(X, self.dense, t, "hess")
            return H_i + self._up(X - Y_i, self.hess_compressor, t, "hess")
        # adaptive Top-K: K_i per client; one message per distinct K (a loop over budgets, not clients)
        num = frobenius(Y_i - H_i, self.d) ** 2
        den = frobenius(X - H_i, self.d) ** 2
        ratio = torch.where(den > 0, self.d**2 * num / den.clamp_min(torch.finfo(den.dtype).tiny), 0.0)
        K = torch.ceil(ratio.clamp(max=float(self.d0))).to(torch.int64).clamp(0, self.d0)
        K = torch.where(den > 0, K, 0)
        S = torch.zeros_like(H_i)
        for k in sorted(set(K.tolist()) - {0}):
            rows = (K == k)
            mask = torch.zeros(self.n, dtype=torch.bool)
            mask[self.network.clients] = rows.cpu()
            S = S + self._up(X - H_i, Silent(make_matrix({"name": "topk", "k": int(k)}), mask), t, "hess", int(k))
        return H_i + S
