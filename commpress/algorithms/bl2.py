"""BL2: Basis Learn with bidirectional compression, Bernoulli aggregation and partial participation."""

from __future__ import annotations

from typing import Any

import torch

from commpress._rng import shared_generator
from commpress.algorithms._newton import Silent
from commpress.algorithms.base import INIT_ROUND, _describe, algorithm_state, check_int, check_positive, \
    compressor_theory, resolve_compressor
from commpress.algorithms.basis_learn import BasisLearn
from commpress.algorithms.registry import register
from commpress.compressors.base import Context
from commpress.errors import ConfigError
from commpress.network.sampling import make_sampler
from commpress.theory.second_order import model_learning_rate


@algorithm_state
class BL2State:
    x: torch.Tensor    # (d,)       server iterate x^k
    z_i: torch.Tensor  # (rows, d)  compressed model each client holds
    w_i: torch.Tensor  # (rows, d)  last point where each client computed its gradient
    C_i: torch.Tensor  # (rows, T)  coefficient estimates L_i (upper triangles, r_max x r_max, padded)
    l_i: torch.Tensor  # (rows,)    l_i = ||L_i - Lambda_i(z_i)||_F (as the server knows it)
    g_i: torch.Tensor  # (rows, d)  g_i = (H_i + l_i I) w_i - ∇f_i(w_i) (as the server knows it)
    H: torch.Tensor    # (d, d)     (1/n) sum_i V_i L_i V_i^T (the known l2 I excluded)
    l: torch.Tensor    # ()         mean of l_i
    g: torch.Tensor    # (d,)       mean of g_i
    t: int             # round number


@register("bl2")
class BL2(BasisLearn):
    r"""BL2 (Qian, Islamov, Safaryan, Richtárik, *Basis Matters*, AISTATS 2022), in the form of Newton-3PC-BC-PP
    with EF21 mechanisms (Islamov, Qian, Hanzely, Safaryan, Richtárik, TMLR 2023, Alg. Newton-3PC-BC-PP).

    Client i learns the coefficients :math:`L_i\approx\Lambda_i(z_i)` of its Hessian in its basis
    :math:`B_i^{jl}=v_j^iv_l^{i\top}` (:class:`~commpress.algorithms.basis_learn.BasisLearn`):
    :math:`H_i=\sum_{jl}(L_i)_{jl}B_i^{jl}+\lambda I=V_i[L_i]_sV_i^\top+\lambda I`. Round k:

    .. math::
        x^{k+1}=\big(H^k+l^kI\big)^{-1}g^k,\qquad
        H^{k+1}=H^k+\frac\alpha n\sum_{i\in S^k}\sum_{jl}(S_i^k)_{jl}B_i^{jl},

    :math:`S^k` a :math:`\tau`-nice sample (the round's shared stream); each :math:`i\in S^k`:
    :math:`z_i\leftarrow z_i+\eta\,\mathcal C^M(x^{k+1}-z_i)`, :math:`S_i^k=\mathcal C(\Lambda_i(z_i)-L_i)`,
    :math:`L_i\leftarrow L_i+\alpha S_i^k`, :math:`l_i=\|[H_i]_s-\nabla^2f_i(z_i)\|_F=\|L_i-\Lambda_i(z_i)\|_F`
    (orthonormal :math:`V_i`); coin :math:`\xi_i\sim\mathrm{Bernoulli}(p)`: if 1, :math:`w_i=z_i` and the client
    sends :math:`g_i^{new}-g_i^{old}`, :math:`g_i=([H_i]_s+l_iI)w_i-\nabla f_i(w_i)` (32d); if 0 the server adds
    :math:`([H_i^{new}-H_i^{old}]_s+(l_i^{new}-l_i^{old})I)w_i` itself. Always sent by the sampled clients:
    :math:`S_i^k` (the compressor's payload) and :math:`l_i^{new}-l_i^{old}` (32). Others: 0 bits.
    The coefficients travel as upper triangles, so :math:`[\cdot]_s` is the identity here.

    .. note:: BL2's own text is recalled; the server update is the one preserved in Newton-3PC's source,
       the rest follows Newton-3PC-BC-PP with EF21 mechanisms. The coins :math:`\xi_i` come from the shared
       stream (0 bits) [library choice]. One-time costs (round -1): the basis (``basis="data"``),
       :math:`L_i^0`, :math:`l_i^0`, :math:`g_i^0` densely. ``basis="standard"`` with every coefficient sent is
       FedNL-PP / Newton-3PC-BC-PP. BL3 is not implemented (not recovered).

    Args:
        compressor, basis, alpha, h0, rank_tol: as :class:`~commpress.algorithms.basis_learn.BasisLearn`
            (no header-carrying compressor).
        tau: clients per round (default :math:`\lceil n/2\rceil`).
        model_compressor: vector compressor of the model difference (default Top-K, K = d/2).
        eta: model learning rate (``"auto"``). p: gradient probability (default 0.75).

    References:
        Qian, Islamov, Safaryan, Richtárik, Basis Matters: Better Communication-Efficient Second Order Methods
        for Federated Learning, AISTATS 2022 (BL2); Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed
        Newton-Type Methods with Communication Compression and Bernoulli Aggregation, TMLR 2023.
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, basis: str = "data", alpha: float | None = None,
                 h0: str = "hessian", rank_tol: float = 1e-10, tau: int | None = None, model_compressor: Any = None,
                 eta: Any = "auto", p: float = 0.75) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         basis=basis, alpha=alpha, h0=h0, rank_tol=rank_tol)
        owner = type(self).__name__
        self.tau = (self.n + 1) // 2 if tau is None else check_int("tau", tau, owner)
        if self.tau > self.n:
            raise ConfigError(f"{owner} needs tau <= n = {self.n}; got tau={tau}.")
        self.sampler = make_sampler({"name": "nice", "tau": self.tau}).check(self.n)
        if self.compressor.header_fields(Context(0, self.n, self.T, torch.arange(self.n), torch.float64,
                                                 torch.device("cpu"))):
            raise ConfigError(f"{owner}: a compressor with a data-dependent header cannot be used with client "
                              "sampling here; use compressor='topk', 'randk' or 'identity'.")
        self.model_compressor = resolve_compressor(model_compressor, "model_compressor", None) or \
            resolve_compressor({"name": "topk", "ratio": 0.5}, "model_compressor")
        th = compressor_theory(self.model_compressor, 1, self.d)
        self.eta = model_learning_rate(th.kind if th else "biased", th.delta if th else None,
                                       th.omega if th else None, eta, owner)
        self.p = check_positive("p", p, owner, upper=1.0)
        self._eye = torch.eye(self.d, dtype=problem.dtype, device=problem.device)
        self._w = torch.where(torch.arange(self.r_max)[self.iu[0]] == torch.arange(self.r_max)[self.iu[1]], 1.0, 2.0)

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "tau": self.tau, "eta": self.eta, "p": self.p,
                "model_compressor": _describe(self.model_compressor)}

    def participants(self, t: int) -> torch.Tensor:
        """Round t's sampled clients, sorted indices (0 bits: the shared stream)."""
        return self.sampler.sample(self.n, self._seed(t, "sample"))

    def coins(self, t: int) -> torch.Tensor:
        """Round t's per-client gradient coins ξ_i, bool ``(n,)`` (shared stream, 0 bits)."""
        u = torch.rand(self.n, generator=shared_generator(self._seed(t, "xi"), "bl2/xi"), dtype=torch.float64)
        return u < self.p

    # ---- per-client points
    def _clients_arg(self):
        return None if self.network.is_full else self.network.clients

    def _coefficients_rows(self, Z: torch.Tensor) -> torch.Tensor:
        """Upper triangles of :math:`\\Lambda_i(z_i)` for the local clients, ``(rows, T)``."""
        P = self.problem
        if not self._glm:
            H = P.hessians(Z, clients=self._clients_arg()).to(torch.float64)
            return H[:, self.iu[0], self.iu[1]].to(P.dtype)
        m = P.margins(Z, clients=self._clients_arg())
        w = self._local(P._weights).to(torch.float64)
        y = self._local(P.data.targets)
        s = (P._d2phi(m, y) if hasattr(P, "_d2phi") else torch.ones_like(m)).to(torch.float64) * w
        B = self._local(self.B)
        Lam = torch.einsum("nmr,nm,nms->nrs", B, s, B)
        return Lam[:, self.iu[0], self.iu[1]].to(P.dtype)

    def _frob(self, tri: torch.Tensor) -> torch.Tensor:
        return (tri * tri * self._w.to(device=tri.device, dtype=tri.dtype)).sum(-1).sqrt()

    def _Hw(self, tri: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """:math:`V_i\\,\\mathrm{sym}(\\cdot)_i\\,V_i^\\top w_i` per row."""
        V = self._local(self.V)
        return torch.einsum("rdi,rij,rej,re->rd", V, self._sym(tri), V, w.to(torch.float64)).to(w.dtype)

    def _g(self, tri, l, w, G):
        return self._Hw(tri, w) + (self.l2 + l)[:, None] * w - G

    def _grads_rows(self, W: torch.Tensor) -> torch.Tensor:
        return self.problem.client_grads(W, clients=self._clients_arg())

    def init(self, x0: torch.Tensor | None = None) -> BL2State:
        x = self._x0(x0)
        rows = self.network.rows
        w = x.expand(rows, self.d).clone()
        if self.basis == "data":
            V = self._local(self.V)
            self._up(V.reshape(V.shape[0], -1).to(self.problem.dtype), self.dense, INIT_ROUND, "basis")
        Lam = self._coefficients_rows(w)
        C = self._up(Lam, self.dense, INIT_ROUND, "h0") if self.h0 == "hessian" else torch.zeros_like(Lam)
        l_i = self._up(self._frob(C - Lam)[:, None], self.dense, INIT_ROUND, "shift0")[:, 0]
        g_i = self._up(self._g(C, l_i, w, self._grads_rows(w)), self.dense, INIT_ROUND, "g0")
        return BL2State(x=x, z_i=w, w_i=w.clone(), C_i=C, l_i=l_i, g_i=g_i, H=self._server_matrix(C),
                        l=self.network.mean(l_i), g=self.network.mean(g_i), t=0)

    def step(self, state: BL2State) -> BL2State:
        t, rows = state.t, self.network.rows
        x = torch.linalg.solve(state.H + (self.l2 + state.l) * self._eye, state.g)
        x = state.x + self.gamma * (x - state.x)
        S = self.participants(t)
        full = torch.zeros(self.n, dtype=torch.bool)
        full[S] = True
        mask = self.network.local(full).to(x.device)  # the shared draws are made on the CPU
        D = self.network.downlink_rows(x.expand(rows, self.d) - state.z_i, Silent(self.model_compressor, full),
                                       self._seed(t, "downlink", "model"), round=t)
        z = torch.where(mask[:, None], state.z_i + self.eta * D, state.z_i)
        Lam = self._coefficients_rows(z)
        dC = self.alpha * self.network.uplink(Lam - state.C_i, self.compressor, self._seed(t, "uplink", "hess"),
                                              round=t, participants=S)
        C = state.C_i + dC
        l_new = torch.where(mask, self._frob(C - Lam), state.l_i)
        dl = self.network.uplink((l_new - state.l_i)[:, None], self.dense, self._seed(t, "uplink", "shift"),
                                 round=t, participants=S)[:, 0]
        l_i = state.l_i + dl
        coins = self.coins(t)
        xi = self.network.local(coins).to(mask.device) & mask
        w = torch.where(xi[:, None], z, state.w_i)
        g_fresh = self._g(C, l_i, w, self._grads_rows(w))
        send = self.network.uplink(torch.where(xi[:, None], g_fresh - state.g_i, 0.0), Silent(self.dense, full & coins),
                                   self._seed(t, "uplink", "g"), round=t)
        kept = self._Hw(dC, w) + dl[:, None] * w  # the server's own update when xi_i = 0
        dg = torch.where(xi[:, None], send, torch.where(mask[:, None], kept, 0.0))
        return BL2State(x=x, z_i=z, w_i=w, C_i=C, l_i=l_i, g_i=state.g_i + dg, H=state.H + self._server_matrix(dC),
                        l=state.l + self.network.mean(dl), g=state.g + self.network.mean(dg), t=t + 1)
