"""Newton-3PC-BC-PP: Newton-3PC with bidirectional compression, Bernoulli aggregation and partial participation."""

from __future__ import annotations

from typing import Any

import torch

from commpress._rng import shared_generator
from commpress.algorithms._newton import NewtonBase, Silent, frobenius
from commpress.algorithms.base import INIT_ROUND, _describe, algorithm_state, check_int, check_positive, \
    compressor_theory, resolve_compressor
from commpress.algorithms.registry import register
from commpress.compressors.matrix import tri_to_sym
from commpress.errors import ConfigError
from commpress.network.sampling import make_sampler
from commpress.theory.second_order import model_learning_rate


@algorithm_state
class Newton3PCBCPPState:
    x: torch.Tensor       # (d,)       server iterate x^k
    z_i: torch.Tensor     # (rows, d)  compressed model each client holds
    w_i: torch.Tensor     # (rows, d)  last point where each client computed its gradient
    H_i: torch.Tensor     # (rows, N)  client Hessian estimates (upper triangles)
    l_i: torch.Tensor     # (rows,)    l_i = ||H_i - ∇²f_i(z_i)||_F (as the server knows it)
    g_i: torch.Tensor     # (rows, d)  g_i = (H_i + l_i I) w_i - ∇f_i(w_i) (as the server knows it)
    H: torch.Tensor       # (N,)       mean of H_i
    l: torch.Tensor       # ()         mean of l_i
    g: torch.Tensor       # (d,)       mean of g_i
    t: int                # round number


@register("newton_3pc_bc_pp")
class Newton3PCBCPP(NewtonBase):
    r"""Newton-3PC-BC-PP with EF21 mechanisms (Islamov, Qian, Hanzely, Safaryan, Richtárik, *Distributed
    Newton-Type Methods with Communication Compression and Bernoulli Aggregation*, TMLR 2023,
    Alg. Newton-3PC-BC-PP; it generalises BL2 of Qian et al., Basis Matters, AISTATS 2022, and FedNL-PP).

    .. math::
        x^{k+1}=\big(H^k+l^kI\big)^{-1}g^k,\qquad H^k=\tfrac1n\textstyle\sum_iH_i^k,\ l^k=\tfrac1n\sum_il_i^k,
        \ g^k=\tfrac1n\sum_ig_i^k;

    a :math:`\tau`-nice sample :math:`S^k` (the round's shared stream); each :math:`i\in S^k`:

    .. math::
        z_i^{k+1}=z_i^k+\eta\,\mathcal C^M(x^{k+1}-z_i^k),\quad
        H_i^{k+1}=H_i^k+\alpha\,\mathcal C\big(\nabla^2f_i(z_i^{k+1})-H_i^k\big),\quad
        l_i^{k+1}=\|H_i^{k+1}-\nabla^2f_i(z_i^{k+1})\|_F,

    and a coin :math:`\xi_i\sim\mathrm{Bernoulli}(p)`: if :math:`\xi_i=1`, :math:`w_i=z_i^{k+1}` and the client
    sends :math:`g_i^{new}-g_i^{old}` with :math:`g_i=(H_i+l_iI)w_i-\nabla f_i(w_i)` (32d); if :math:`\xi_i=0`,
    :math:`w_i` is unchanged and the server itself adds
    :math:`g_i^{new}-g_i^{old}=(H_i^{new}-H_i^{old})w_i+(l_i^{new}-l_i^{old})w_i`. Sent always by the sampled
    clients: the Hessian message and :math:`l_i^{new}-l_i^{old}` (32). The server adds :math:`\frac1n` of every
    difference. Clients outside :math:`S^k` send and receive nothing (0 bits) and keep their state.
    Hessians here are upper triangles, so the symmetrisation :math:`[\cdot]_s` of the paper is the identity.

    Theory (N3PC): :math:`\mathbb E\Phi_3^k\le(1-\frac{\tau\min\{2A_M,3p\}}{8n})^k\Phi_3^0` locally,
    :math:`\Phi_3^k=\mathcal Z^k+\frac{2\tau C_M}n\|x^k-x^*\|^2+\frac{A_M}{4p}\mathcal W^k`.

    .. note:: Library choices: the coins :math:`\xi_i` are drawn per client from the round's shared stream
       (the server knows them; 0 bits); only EF21 mechanisms on Hessians and models are offered
       (the paper allows any 3PC). The server sends :math:`\mathcal C^M(x^{k+1}-z_i^k)` to the sampled
       clients only (a per-client downlink). Client and server keep the float32-decoded increments.
       With ``tau = n``, ``p = 1`` and the identity model compressor this is Newton-3PC-BC (option 2,
       EF21) and FedNL-PP up to float32 wire rounding.

    Args:
        compressor, alpha, h0: as :class:`~commpress.algorithms.fednl.FedNL` (no header-carrying compressor).
        tau: clients per round (default :math:`\lceil n/2\rceil`).
        model_compressor: vector compressor of the model difference (default Top-K, K = d/2; ``"identity"``: none).
        eta: model learning rate (``"auto"``: 1 contractive, :math:`1/(\omega_M+1)` unbiased). p: gradient probability (default 0.75).

    References:
        Islamov, Qian, Hanzely, Safaryan, Richtárik, Distributed Newton-Type Methods with Communication
        Compression and Bernoulli Aggregation, TMLR 2023, Alg. Newton-3PC-BC-PP and its theorem;
        Qian, Islamov, Safaryan, Richtárik, Basis Matters, AISTATS 2022 (BL2).
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", h0: str = "hessian", tau: int | None = None,
                 model_compressor: Any = None, eta: Any = "auto", p: float = 0.75) -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=2, mu=0.0, h0=h0)
        owner = type(self).__name__
        self.tau = (self.n + 1) // 2 if tau is None else check_int("tau", tau, owner)
        if self.tau > self.n:
            raise ConfigError(f"{owner} needs tau <= n = {self.n}; got tau={tau}.")
        self.sampler = make_sampler({"name": "nice", "tau": self.tau}).check(self.n)
        Silent.check_inner(self.hess_compressor, self.n, self.N)
        self.model_compressor = resolve_compressor(model_compressor, "model_compressor", None) or \
            resolve_compressor({"name": "topk", "ratio": 0.5}, "model_compressor")
        th = compressor_theory(self.model_compressor, 1, self.d)
        self.eta = model_learning_rate(th.kind if th else "biased", th.delta if th else None,
                                       th.omega if th else None, eta, owner)
        self.p = check_positive("p", p, owner, upper=1.0)

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "tau": self.tau, "eta": self.eta, "p": self.p,
                "model_compressor": _describe(self.model_compressor)}

    def participants(self, t: int) -> torch.Tensor:
        """Round t's sampled clients, sorted indices (0 bits: the shared stream)."""
        return self.sampler.sample(self.n, self._seed(t, "sample"))

    def coins(self, t: int) -> torch.Tensor:
        """Round t's per-client gradient coins ξ_i, bool ``(n,)`` (shared stream, 0 bits)."""
        u = torch.rand(self.n, generator=shared_generator(self._seed(t, "xi"), "newton_3pc_bc_pp/xi"),
                       dtype=torch.float64)
        return u < self.p

    def _g(self, H_tri: torch.Tensor, l: torch.Tensor, w: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        M = tri_to_sym(H_tri, self.d)
        return torch.einsum("rij,rj->ri", M, w) + l[:, None] * w - G

    def init(self, x0: torch.Tensor | None = None) -> Newton3PCBCPPState:
        x = self._x0(x0)
        w = x.expand(self.network.rows, self.d).clone()
        H_i = self._init_hessians(x)
        l_i = self._up(frobenius(H_i - self._hess(x), self.d)[:, None], self.dense, INIT_ROUND, "shift0")[:, 0]
        g_i = self._up(self._g(H_i, l_i, w, self._grads(x)), self.dense, INIT_ROUND, "g0")
        return Newton3PCBCPPState(x=x, z_i=w, w_i=w.clone(), H_i=H_i, l_i=l_i, g_i=g_i, H=self.network.mean(H_i),
                                  l=self.network.mean(l_i), g=self.network.mean(g_i), t=0)

    def step(self, state: Newton3PCBCPPState) -> Newton3PCBCPPState:
        t, rows = state.t, self.network.rows
        x = torch.linalg.solve(tri_to_sym(state.H, self.d) + state.l * self._eye, state.g)
        x = state.x + self.gamma * (x - state.x)
        S = self.participants(t)
        full = torch.zeros(self.n, dtype=torch.bool)
        full[S] = True
        mask = self.network.local(full).to(x.device)  # the shared draws are made on the CPU
        D = self.network.downlink_rows(x.expand(rows, self.d) - state.z_i, Silent(self.model_compressor, full),
                                       self._seed(t, "downlink", "model"), round=t)
        z = torch.where(mask[:, None], state.z_i + self.eta * D, state.z_i)
        X = self._hess(z)
        dH = self.alpha * self.network.uplink(X - state.H_i, self.hess_compressor, self._seed(t, "uplink", "hess"),
                                              round=t, participants=S)
        H_i = state.H_i + dH
        l_new = torch.where(mask, frobenius(H_i - X, self.d), state.l_i)
        dl = self.network.uplink((l_new - state.l_i)[:, None], self.dense, self._seed(t, "uplink", "shift"),
                                 round=t, participants=S)[:, 0]
        l_i = state.l_i + dl
        xi = self.network.local(self.coins(t)).to(mask.device) & mask
        w = torch.where(xi[:, None], z, state.w_i)
        g_fresh = self._g(H_i, l_i, w, self._grads(w))
        send = self.network.uplink(torch.where(xi[:, None], g_fresh - state.g_i, 0.0), Silent(self.dense, full & self.coins(t)),
                                   self._seed(t, "uplink", "g"), round=t)
        kept = torch.einsum("rij,rj->ri", tri_to_sym(dH, self.d), w) + dl[:, None] * w  # the server's own update
        dg = torch.where(xi[:, None], send, torch.where(mask[:, None], kept, 0.0))
        return Newton3PCBCPPState(x=x, z_i=z, w_i=w, H_i=H_i, l_i=l_i, g_i=state.g_i + dg,
                                  H=state.H + self.network.mean(dH), l=state.l + self.network.mean(dl),
                                  g=state.g + self.network.mean(dg), t=t + 1)
