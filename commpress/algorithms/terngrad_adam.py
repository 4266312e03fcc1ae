"""TernGrad-Adam: ternarised stochastic gradients, averaged, fed to Adam."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import Algorithm, algorithm_state, check_positive
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


@algorithm_state
class TernGradAdamState:
    x: torch.Tensor  # (d,) model w_t (replicated)
    m: torch.Tensor  # (d,) Adam first moment
    v: torch.Tensor  # (d,) Adam second moment
    t: int


@register("terngrad_adam")
class TernGradAdam(Algorithm):
    r"""TernGrad-Adam (Wen et al., NeurIPS 2017, TernGrad; the VR-DIANA poster's baseline).

    Worker i ternarises its stochastic gradient, :math:`\tilde g_t^{(i)} = s_t\,\mathrm{sign}(g_t^{(i)})\circ b_t`
    (the ``terngrad`` compressor); the server averages and broadcasts
    :math:`\bar g_t = \frac1n\sum_i\tilde g_t^{(i)}` and every replica takes an Adam step

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1)\bar g,\quad v \leftarrow \beta_2 v + (1-\beta_2)\bar g^{\circ 2},\quad
        w \leftarrow w - \gamma\,\frac{m/(1-\beta_1^{t+1})}{\sqrt{v/(1-\beta_2^{t+1})}+\epsilon}.

    Optional gradient clipping (``clip=c``, paper: 2.5): each coordinate to
    :math:`[-c\hat\sigma, c\hat\sigma]`, :math:`\hat\sigma` the std of the client's gradient.

    .. note:: Scaler sharing (one max-norm for all workers) is not implemented: each client
       sends its own scale (32 bits, counted).

    Args:
        compressor: default ``"terngrad"``.
        beta1, beta2, eps: Adam constants (defaults 0.9, 0.999, 1e-8: the poster's values are not recovered).
        clip: None (default) or c > 0.
        batch_size, noise: stochastic oracle.

    References:
        Wen, Xu, Yan, Wu, Wang, Chen, Li, TernGrad: Ternary gradients to reduce communication in
        distributed deep learning, NeurIPS 2017; Kingma & Ba, Adam, 2015.
    """

    default_compressor = "terngrad"

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        clip: float | None = None,
        batch_size: int | None = None,
        noise: float = 0.0,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if not (isinstance(value, (int, float)) and 0.0 <= float(value) < 1.0):
                raise ConfigError(f"{owner} needs {name} in [0, 1); got {name}={value!r}.")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = check_positive("eps", eps, owner)
        self.clip = check_positive("clip", clip, owner, allow_none=True)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self._resolve_gamma()

    def _extra_params(self) -> dict[str, Any]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "clip": self.clip, **self.oracle.params()}

    def init(self, x0: torch.Tensor | None = None) -> TernGradAdamState:
        x = self._x0(x0)
        return TernGradAdamState(x=x, m=torch.zeros_like(x), v=torch.zeros_like(x), t=0)

    def step(self, state: TernGradAdamState) -> TernGradAdamState:
        t = state.t
        G = self.oracle(state.x, self._seed(t, "oracle"))
        if self.clip is not None:
            bound = self.clip * G.std(dim=1, keepdim=True, correction=0)
            G = torch.maximum(torch.minimum(G, bound), -bound)
        g = self._down(self.network.mean(self._up(G, self.compressor, t)), t)
        m = self.beta1 * state.m + (1 - self.beta1) * g
        v = self.beta2 * state.v + (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1 ** (t + 1))
        v_hat = v / (1 - self.beta2 ** (t + 1))
        x = state.x - self.gamma * m_hat / (v_hat.sqrt() + self.eps)
        return TernGradAdamState(x=x, m=m, v=v, t=t + 1)


