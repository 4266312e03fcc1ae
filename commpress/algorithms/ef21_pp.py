"""EF21-PP: EF21 in which only the sampled clients update (and send) their estimators."""

from __future__ import annotations

from typing import Any

from commpress.algorithms._participation import Participation
from commpress.algorithms.ef21 import EF21, EF21State
from commpress.algorithms.registry import register


@register("ef21_pp")
class EF21PP(Participation, EF21):
    r"""EF21-PP (Fatkhullin, Sokolov, Gorbunov, Li, Richtárik, *EF21 with Bells & Whistles*, 2021, Alg. EF21-PP).

    Round t, participants :math:`S_t` from the sampler:

    .. math::
        x^{t+1} = x^t-\gamma g^t,\qquad
        c_i^t = \mathcal C\big(\nabla f_i(x^{t+1})-g_i^t\big),\ g_i^{t+1}=g_i^t+c_i^t\ \ (i\in S_t),\qquad
        g_i^{t+1}=g_i^t\ \ (i\notin S_t),

        g^{t+1} = g^t+\tfrac1n\textstyle\sum_{i\in S_t}c_i^t.

    Absent clients keep their stale :math:`g_i` (no reweighting), send nothing and receive nothing;
    each participant receives the new point (the server's broadcast of :math:`g^t`, one downlink
    message, the B&W scripts count uplink only). ``participation="full"``: EF21 iterate for iterate.

    Stepsize (``gamma=None``, derived by EF21's argument per client): with :math:`p_{\min},p_{\max}` the
    extreme marginals, EF21's :math:`\theta,\beta` and :math:`\rho=\frac{p_{\min}\theta}{2(1-p_{\min})}`,
    :math:`\theta_p=p_{\min}\theta-(1-p_{\min})\rho`, :math:`\beta_p=p_{\max}\beta+(1-p_{\min})(1+\rho^{-1})`,
    :math:`\gamma=(L_-+L_{QM}\sqrt{\beta_p/\theta_p})^{-1}`.

    Args:
        compressor: contractive compressor (or unbiased, rescaled by ``scale="auto"``).
        participation: sampler spec (``"full"``, ``"nice:4"``, ``"independent:0.5"``, a dict or a Sampler).
        g0, scale, batch_size, noise: as EF21.

    References:
        Fatkhullin et al., EF21 with bells & whistles: practical algorithmic extensions of modern error
        feedback, 2021 (EF21-PP; authors' script ``ef21_pp.py``).
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
        g0: str = "grad",
        scale: Any = "auto",
        participation: Any = None,
        **oracle: Any,
    ) -> None:
        self._participation_arg = participation
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         g0=g0, scale=scale, **oracle)
        self._pp()

    def step(self, state: EF21State) -> EF21State:
        t = state.t
        S = self.participants(t)
        if S is None:
            return super().step(state)
        g_hat = self.network.downlink(state.g, self.downlink_compressor, self._seed(t, "downlink"), round=t,
                                      participants=S)
        x = state.x - self.gamma * g_hat
        rows = self.network.uplink(self._grads(x, t) - state.g_i, self.compressor, self._seed(t, "uplink"), round=t,
                                   participants=S)
        C = self.scale * rows
        return EF21State(x=x, g_i=state.g_i + C, g=state.g + self.network.mean(C), t=t + 1)
