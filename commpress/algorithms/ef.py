"""EF / MEM-SGD: error feedback on the uplink (sparsified SGD with memory)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import Algorithm, algorithm_state, contractive_scale
from commpress.algorithms.registry import register


@algorithm_state
class EFState:
    x: torch.Tensor  # (d,)      model x^t
    e: torch.Tensor  # (rows, d) client memories e_i^t
    t: int


@register("ef")
class EF(Algorithm):
    r"""EF / MEM-SGD (Stich, Cordonnier, Jaggi, NeurIPS 2018), distributed uplink form.

    .. math::
        p_i^t = e_i^t + \gamma\,g_i^t,\qquad
        x^{t+1} = x^t - \frac1n\sum_i \mathcal C(p_i^t),\qquad
        e_i^{t+1} = p_i^t - \mathcal C(p_i^t),\qquad e_i^0 = 0,

    with :math:`g_i^t` the exact or stochastic local gradient. The server broadcasts the averaged
    update (downlink compressor); every replica subtracts the received vector.
    The compressor should be contractive; with ``scale="auto"`` an unbiased :math:`\mathcal C \in \mathbb U(\omega)`
    is used as :math:`\frac1{1+\omega}\mathcal C \in \mathbb B(\frac1{1+\omega})` (the standard rescaling).
    No closed-form stepsize: pass ``gamma`` (tuned).

    Args:
        compressor: contractive (Top-K, unscaled Rand-K, ...) or unbiased (rescaled, see ``scale``).
        scale: ``"auto"`` (default), None (raw compressor) or a positive factor.
        batch_size, noise: stochastic oracle.

    References:
        Stich, Cordonnier, Jaggi, Sparsified SGD with memory, NeurIPS 2018, Alg. 1 (single node);
        the NEOLITHIC talk's distributed "MEM-SGD".
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
        self.scale_arg = scale
        self.scale, self.delta = contractive_scale(self.compressor, self.n, self.d, scale, owner)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"delta": self.delta}

    def _extra_params(self) -> dict[str, Any]:
        return {"scale": self.scale, "delta": self.delta, **self.oracle.params()}

    def init(self, x0: torch.Tensor | None = None) -> EFState:
        x = self._x0(x0)
        return EFState(x=x, e=torch.zeros(self.network.rows, self.d, dtype=x.dtype, device=x.device), t=0)

    def step(self, state: EFState) -> EFState:
        t = state.t
        P = state.e + self.gamma * self.oracle(state.x, self._seed(t, "oracle"))
        C = self.scale * self._up(P, self.compressor, t)
        update = self._down(self.network.mean(C), t)
        return EFState(x=state.x - update, e=P - C, t=t + 1)
