"""DoubleSqueeze: error-compensated compression in both directions."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import Algorithm, algorithm_state, contractive_scale
from commpress.algorithms.registry import register


@algorithm_state
class DoubleSqueezeState:
    x: torch.Tensor    # (d,)      model (replicated)
    v_i: torch.Tensor  # (rows, d) client errors v_i^k
    v: torch.Tensor    # (d,)      server error v^k
    t: int


@register("double_squeeze")
class DoubleSqueeze(Algorithm):
    r"""DoubleSqueeze (Tang, Yu, Lian, Zhang, Liu, ICML 2019), as written in the NEOLITHIC talk.

    .. math::
        \tilde g_i^k = O_i(x^k;\zeta_i^k) + v_i^k,\quad v_i^{k+1} = \tilde g_i^k - \mathcal C_i(\tilde g_i^k),

        \tilde g^k = \tfrac1n\textstyle\sum_i\mathcal C_i(\tilde g_i^k) + v^k,\quad
        v^{k+1} = \tilde g^k - \mathcal C_0(\tilde g^k),\quad
        x^{k+1} = x^k - \gamma\,\mathcal C_0(\tilde g^k).

    :math:`\mathcal C_i` = ``compressor`` (uplink), :math:`\mathcal C_0` = ``downlink_compressor``
    (default: the float32 identity, i.e. unidirectional EF-SGD). Both directions are counted.
    ``scale="auto"`` rescales unbiased compressors to contractive ones (both directions).
    No closed-form stepsize: pass ``gamma`` (tuned).

    References:
        Tang et al., DoubleSqueeze: Parallel stochastic gradient descent with double-pass
        error-compensated compression, ICML 2019, Alg. 1.
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
        scale: Any = "auto",
        batch_size: int | None = None,
        noise: float = 0.0,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        self.scale, self.delta = contractive_scale(self.compressor, self.n, self.d, scale, owner)
        self.scale0, self.delta0 = contractive_scale(self.downlink_compressor, 1, self.d, scale, owner)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"sigma2": self.oracle.noise ** 2} if self.oracle.noise > 0 else {}

    def _extra_params(self) -> dict[str, Any]:
        return {"scale": self.scale, "delta": self.delta, "scale0": self.scale0, "delta0": self.delta0,
                **self.oracle.params()}

    def init(self, x0: torch.Tensor | None = None) -> DoubleSqueezeState:
        x = self._x0(x0)
        return DoubleSqueezeState(x=x, v_i=torch.zeros(self.network.rows, self.d, dtype=x.dtype, device=x.device),
                                  v=torch.zeros_like(x), t=0)

    def step(self, state: DoubleSqueezeState) -> DoubleSqueezeState:
        t = state.t
        G = self.oracle(state.x, self._seed(t, "oracle")) + state.v_i
        C = self.scale * self._up(G, self.compressor, t)
        g = self.network.mean(C) + state.v
        c0 = self.scale0 * self._down(g, t)
        return DoubleSqueezeState(x=state.x - self.gamma * c0, v_i=G - C, v=g - c0, t=t + 1)
