"""DASHA-PP: DASHA under partial participation (the participants' messages carry the 1/p_a)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._participation import Participation
from commpress.algorithms.base import INIT_ROUND, algorithm_state, check_positive
from commpress.algorithms.dasha import DASHA, dasha_update
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


@algorithm_state
class DASHAPPState:
    x: torch.Tensor      # (d,)      server iterate x^t
    h_i: torch.Tensor    # (rows, d) client estimators h_i^t
    g_i: torch.Tensor    # (rows, d) client states g_i^t
    g: torch.Tensor      # (d,)      g^t = mean of the rows of g_i
    grads: torch.Tensor  # (rows, d) ∇f_i(x^t) (a participant recomputes it from x^t; kept to save the work)
    t: int               # round number


@register("dasha_pp")
class DASHAPP(Participation, DASHA):
    r"""DASHA-PP (Tyurin, Richtárik, NeurIPS 2023; update and defaults from the authors' code,
    ``BaseZeroMarinaPartialParticipation``).

    Every client takes part with the same probability :math:`p_a` (participants :math:`S_t` from the
    sampler). Round t: :math:`x^{t+1}=x^t-\gamma g^t`; each :math:`i\in S_t` computes

    .. math::
        k_i=\nabla f_i(x^{t+1})-\nabla f_i(x^t)-b\big(h_i^t-\nabla f_i(x^t)\big),\qquad
        h_i^{t+1}=h_i^t+\tfrac1{p_a}k_i,

        m_i=\mathcal C_i\Big(\tfrac1{p_a}\big(k_i-a(g_i^t-h_i^t)\big)\Big),\qquad g_i^{t+1}=g_i^t+m_i,

    and sends :math:`m_i`; absent clients keep :math:`h_i, g_i`. Server: :math:`g^{t+1}=g^t+\frac1n\sum_{i\in S_t}m_i`.
    Init: :math:`h_i^0=g_i^0=\nabla f_i(x^0)` (one dense uplink). The participants receive the
    server's broadcast (:math:`g^t`, from which :math:`x^{t+1}` follows), one downlink message each.
    With :math:`p_a=1` (and :math:`b=1`) it is DASHA (``g0="grad"``) iterate for iterate.

    Defaults (authors' code): :math:`a=\frac{p_a}{2\omega+1}`, :math:`b=\frac{p_a}{2-p_a}`. Stepsize
    (``gamma=None``): a labelled library default (the paper's constant was not recovered; the authors
    tune :math:`\gamma=2^j`): :math:`(L_-+L_{QM}\sqrt{\frac{16\omega(2\omega+1)}{np_a^2}+\frac{16}{np_a^2}(1-\frac{p_{aa}}{p_a})})^{-1}`,
    DASHA's recalled theorem value at :math:`p_a=1`.

    Args:
        compressor: independent unbiased compressors :math:`\mathcal C_i\in\mathbb U(\omega)` (e.g. RandK).
        participation: sampler spec with one probability for all clients (``"nice:4"``,
            ``"independent:0.5"``, ``"full"``, a dict or a Sampler).
        a: momentum in (0, 1]; b: momentum of the estimator in (0, 1].

    References:
        Tyurin, Richtárik, A computation and communication efficient method for distributed nonconvex
        problems in the partial participation setting, NeurIPS 2023; code mysteryresearcher/dasha-partial-participation.
    """

    g0_default = "grad"

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        participation: Any = None,
        a: float | None = None,
        b: float | None = None,
    ) -> None:
        self._participation_arg = participation
        self._b_arg = b
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         a=a, g0="grad")

    def _g0_choices(self) -> tuple[str, ...]:
        return ("grad",)

    def _setup(self, owner: str) -> None:
        self._pp()
        if self._p_uniform is None:
            raise ConfigError(f"{owner} needs one participation probability p_a for every client (nice or uniform "
                              f"independent sampling); got participation={self.sampler}.")
        self.p_a = self._p_uniform
        self.b_source = "given" if self._b_arg is not None else "theory"
        self.b = (check_positive("b", self._b_arg, owner, upper=1.0) if self._b_arg is not None
                  else self.p_a / (2.0 - self.p_a))

    def _default_a(self, owner: str) -> float:
        return self.p_a * super()._default_a(owner)

    def _theory_params(self) -> dict[str, Any]:
        return {**super()._theory_params(), "b": self.b}

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "b": self.b, "b_source": self.b_source, "p_a": self.p_a}

    def init(self, x0: torch.Tensor | None = None) -> DASHAPPState:
        x = self._x0(x0)
        G = self.oracle.exact(x)
        g_i = self._up(G, self.dense, INIT_ROUND)
        return DASHAPPState(x=x, h_i=G, g_i=g_i, g=self.network.mean(g_i), grads=G, t=0)

    def step(self, state: DASHAPPState) -> DASHAPPState:
        t = state.t
        S = self.participants(t)
        if S is None and self.b == 1.0:  # p_a = 1, b = 1: h_i^{t+1} = ∇f_i(x^{t+1}), DASHA's round exactly
            x = state.x - self.gamma * self._down(state.g, t)
            G = self.oracle.exact(x)
            _, g_i, g = dasha_update(self, G, state.h_i, state.g_i, state.g, self.a, t)
            return DASHAPPState(x=x, h_i=G, g_i=g_i, g=g, grads=G, t=t + 1)
        g_hat = self.network.downlink(state.g, self.downlink_compressor, self._seed(t, "downlink"), round=t,
                                      participants=S)
        x = state.x - self.gamma * g_hat
        G = self.oracle.exact(x)
        k = (G - state.grads) - self.b * (state.h_i - state.grads)
        msg = (k - self.a * (state.g_i - state.h_i)) / self.p_a
        m = self.network.uplink(msg, self.compressor, self._seed(t, "uplink"), round=t, participants=S)
        if S is None:
            h_i = state.h_i + k / self.p_a
        else:
            mask = self.network.local(self.sampler.mask_of(S, self.n)).unsqueeze(1)
            h_i = torch.where(mask, state.h_i + k / self.p_a, state.h_i)
        return DASHAPPState(x=x, h_i=h_i, g_i=state.g_i + m, g=state.g + self.network.mean(m), grads=G, t=t + 1)

    def known_gradient(self, state: DASHAPPState) -> torch.Tensor | None:
        return self.network.mean(state.grads)
