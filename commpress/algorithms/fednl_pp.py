"""FedNL-PP: FedNL with partial participation (tau-nice client sampling)."""

from __future__ import annotations

from typing import Any

import torch

from commpress._rng import shared_generator
from commpress.algorithms._newton import NewtonBase, Silent, frobenius
from commpress.algorithms.base import INIT_ROUND, algorithm_state, check_int
from commpress.algorithms.registry import register
from commpress.compressors.matrix import tri_to_sym
from commpress.errors import ConfigError


@algorithm_state
class FedNLPPState:
    x: torch.Tensor    # (d,)       server iterate x^k
    w_i: torch.Tensor  # (rows, d)  last model each client saw
    H_i: torch.Tensor  # (rows, N)  client Hessian estimates (upper triangles)
    l_i: torch.Tensor  # (rows,)    l_i = ||H_i - ∇²f_i(w_i)||_F (as the server knows it)
    g_i: torch.Tensor  # (rows, d)  g_i = (H_i + l_i I) w_i - ∇f_i(w_i) (as the server knows it)
    H: torch.Tensor    # (N,)       mean of H_i
    l: torch.Tensor    # ()         mean of l_i
    g: torch.Tensor    # (d,)       mean of g_i
    t: int             # round number


def tau_nice(seed: int, n: int, tau: int) -> torch.Tensor:
    """Bool ``(n,)``: a uniformly random tau-subset of the n clients, from the round's shared stream."""
    keys = torch.rand(n, generator=shared_generator(seed, "fednl_pp/sample"), dtype=torch.float64)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[keys.argsort()[:tau]] = True
    return mask


@register("fednl_pp")
class FedNLPP(NewtonBase):
    r"""FedNL-PP (Safaryan, Islamov, Qian, Richtárik, ICML 2022, Alg. FedNL-PP).

    .. math::
        x^{k+1}=\big(H^k+l^kI\big)^{-1}g^k,\qquad
        H^k=\tfrac1n\textstyle\sum_iH_i^k,\ l^k=\tfrac1n\sum_il_i^k,\ g^k=\tfrac1n\sum_ig_i^k;

    a :math:`\tau`-nice sample :math:`S^k` (uniform, without replacement, from the round's shared stream)
    receives :math:`x^{k+1}`; each :math:`i\in S^k` sets :math:`w_i=x^{k+1}`,
    :math:`H_i\leftarrow H_i+\alpha\,\mathcal C(\nabla^2f_i(w_i)-H_i)`,
    :math:`l_i=\|H_i-\nabla^2f_i(w_i)\|_F`, :math:`g_i=(H_i+l_iI)w_i-\nabla f_i(w_i)` and sends the compressed
    matrix, :math:`l_i^{new}-l_i^{old}` (32 bits) and :math:`g_i^{new}-g_i^{old}` (32d); the server adds
    :math:`\frac1n` of each. The others send nothing (0 bits) and keep their state.
    Init: :math:`w_i=x^0`, all quantities at :math:`x^0`, sent densely in round -1.
    Theory: linear rate :math:`1-O(\tau/n)` in a Lyapunov function of :math:`\frac1n\sum\|w_i-x^*\|^2`
    (constants not recovered).

    .. note:: The server sends :math:`x^{k+1}` to the sampled clients only (a per-client downlink:
       32d bits each, 0 for the others). Client and server keep the float32-decoded increments, so both
       hold the same :math:`l_i, g_i`.

    Args:
        compressor, alpha, h0: as :class:`~commpress.algorithms.fednl.FedNL` (no header-carrying compressor).
        tau: clients per round, :math:`1\le\tau\le n` (default :math:`\lceil n/2\rceil`, the reference notebook's).

    References:
        Safaryan, Islamov, Qian, Richtárik, FedNL: Making Newton-Type Methods Applicable to Federated
        Learning, ICML 2022 (FedNL-PP).
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", h0: str = "hessian",
                 tau: int | None = None) -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=2, mu=0.0, h0=h0)
        owner = type(self).__name__
        self.tau = (self.n + 1) // 2 if tau is None else check_int("tau", tau, owner)
        if self.tau > self.n:
            raise ConfigError(f"{owner} needs tau <= n = {self.n}; got tau={tau}.")
        Silent.check_inner(self.hess_compressor, self.n, self.N)

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "tau": self.tau}

    def sample(self, t: int) -> torch.Tensor:
        """Round t's participating clients, bool ``(n,)`` (0 bits: the shared stream)."""
        return tau_nice(self._seed(t, "sample"), self.n, self.tau)

    def _g(self, H_tri: torch.Tensor, l: torch.Tensor, w: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        M = tri_to_sym(H_tri, self.d)
        return torch.einsum("rij,rj->ri", M, w) + l[:, None] * w - G

    def init(self, x0: torch.Tensor | None = None) -> FedNLPPState:
        x = self._x0(x0)
        rows = self.network.rows
        w = x.expand(rows, self.d).clone()
        H_i = self._init_hessians(x)
        l_i = self._up(frobenius(H_i - self._hess(x), self.d)[:, None], self.dense, INIT_ROUND, "shift0")[:, 0]
        g_i = self._up(self._g(H_i, l_i, w, self._grads(x)), self.dense, INIT_ROUND, "g0")
        return FedNLPPState(x=x, w_i=w, H_i=H_i, l_i=l_i, g_i=g_i, H=self.network.mean(H_i),
                            l=self.network.mean(l_i), g=self.network.mean(g_i), t=0)

    def step(self, state: FedNLPPState) -> FedNLPPState:
        t = state.t
        A = tri_to_sym(state.H, self.d) + state.l * self._eye
        x = torch.linalg.solve(A, state.g)
        x = state.x + self.gamma * (x - state.x)
        full = self.sample(t)
        mask = self.network.local(full).to(x.device)  # the shared draws are made on the CPU
        rows = self.network.rows
        x_c = self.network.downlink_rows(x.expand(rows, self.d).contiguous(), Silent(self.dense, full),
                                         self._seed(t, "downlink"), round=t)
        w = torch.where(mask[:, None], x_c, state.w_i)
        Hx = self._hess(w)
        S = self._up(Hx - state.H_i, Silent(self.hess_compressor, full), t, "hess")
        H_i = state.H_i + self.alpha * S
        l_new = torch.where(mask, frobenius(H_i - Hx, self.d), state.l_i)
        dl = self._up((l_new - state.l_i)[:, None], Silent(self.dense, full), t, "shift")[:, 0]
        l_i = state.l_i + dl
        g_new = self._g(H_i, l_i, w, self._grads(w))
        dg = self._up(torch.where(mask[:, None], g_new - state.g_i, 0.0), Silent(self.dense, full), t, "g")
        return FedNLPPState(x=x, w_i=w, H_i=H_i, l_i=l_i, g_i=state.g_i + dg,
                            H=state.H + self.alpha * self.network.mean(S), l=state.l + self.network.mean(dl),
                            g=state.g + self.network.mean(dg), t=t + 1)
