"""EF21-SGD: EF21 with stochastic (minibatch) gradients."""

from __future__ import annotations

from typing import Any

from commpress.algorithms.ef21 import EF21
from commpress.algorithms.registry import register


@register("ef21_sgd")
class EF21SGD(EF21):
    r"""EF21-SGD (Fatkhullin, Sokolov, Gorbunov, Li, Richtárik 2021, Sec. 4).

    The EF21 update with a stochastic gradient:

    .. math::
        x^{t+1} = x^t - \gamma g^t,\quad
        c_i^t = \mathcal C\big(\hat g_i(x^{t+1}) - g_i^t\big),\quad
        g_i^{t+1} = g_i^t + c_i^t,\quad g^{t+1} = g^t + \tfrac1n\textstyle\sum_i c_i^t,\qquad
        \hat g_i = \frac1\tau\sum_{j=1}^{\tau}\nabla f_{\xi_{ij}},

    a minibatch of τ = ``batch_size`` samples (finite sums) and/or the additive-noise oracle
    (``noise`` = σ).

    Stepsize (``gamma=None``): the plain EF21 stepsize, as the authors' scripts use (times a tuned
    factor); the theorem's modified θ, β are not re-read (Fatkhullin et al. 2021, Sec. 4).

    References:
        Fatkhullin et al., EF21 with bells & whistles, 2021, Alg. EF21-SGD.
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
        batch_size: int | None = None,
        noise: float = 0.0,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         g0=g0, scale=scale, batch_size=batch_size, noise=noise)
