"""DCGD: distributed compressed gradient descent."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import Algorithm, algorithm_state, check_int
from commpress.algorithms.registry import register


@algorithm_state
class DCGDState:
    x: torch.Tensor  # (d,) server iterate x^k (replicated on the clients)
    t: int           # round number k


@register("dcgd")
class DCGD(Algorithm):
    r"""DCGD (Khirirat, Feyzmahdavian, Johansson 2018; named in Panferov et al. 2024, Sec. 1).

    Client i sends a fresh compression of its (stochastic) gradient; the server averages:

    .. math::
        g_i^k = O_i(x^k;\zeta_i^k),\qquad
        x^{k+1} = x^k - \gamma\,\frac1n\sum_{i=1}^n \mathcal C_i^k(g_i^k).

    The server broadcasts the averaged direction (downlink compressor, float32 by default) and
    every replica applies the same received vector. State: ``x`` only.

    Stepsize: ``gamma=None`` takes ``theory.default_stepsize("dcgd", ...)``
    (:math:`\min\{1/L_-, 1/\sqrt{L_- A K}\}`, :math:`A=\omega L_{\max}/n`; Khaled, Richtárik, Better theory for
    SGD in the nonconvex world, 2020, ABC framework),
    with ``horizon`` = K.

    Args:
        compressor: any compressor (unbiased for the theory).
        batch_size, noise: stochastic oracle (see :class:`~commpress.algorithms._oracle.Oracle`).
        horizon: planned number of rounds K for the theoretical stepsize.

    References:
        Khirirat et al., Distributed learning with compressed gradients, 2018; Khaled & Richtárik,
        Better theory for SGD in the nonconvex world, 2020 (ABC analysis).
    """

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        batch_size: int | None = None,
        noise: float = 0.0,
        horizon: int | None = None,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=type(self).__name__)
        self.horizon = check_int("horizon", horizon, type(self).__name__, allow_none=True)
        self._resolve_gamma()

    def _extra_params(self) -> dict[str, Any]:
        return {**self.oracle.params(), "horizon": self.horizon}

    def _theory_params(self) -> dict[str, Any]:
        return {} if self.horizon is None else {"K": self.horizon}

    def init(self, x0: torch.Tensor | None = None) -> DCGDState:
        return DCGDState(x=self._x0(x0), t=0)

    def step(self, state: DCGDState) -> DCGDState:
        t = state.t
        G = self.oracle(state.x, self._seed(t, "oracle"))
        G_hat = self._up(G, self.compressor, t)
        g = self._down(self.network.mean(G_hat), t)
        return DCGDState(x=state.x - self.gamma * g, t=t + 1)
