"""CSER: communication-efficient SGD with error reset."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import Algorithm, algorithm_state, check_int, contractive_scale, dense_compressor, resolve_compressor
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


@algorithm_state
class CSERState:
    z: torch.Tensor  # (d,)      synchronised model z = x_i - e_i (identical on every client)
    e: torch.Tensor  # (rows, d) local residuals e_i (local model x_i = z + e_i)
    m: torch.Tensor  # (rows, d) momentum buffers m_i
    t: int


@register("cser")
class CSER(Algorithm):
    r"""CSER (Xie, Zheng, Koyejo, Gupta, Li, Lin, NeurIPS 2020), from the public reference optimizer.

    Client i keeps a local model :math:`x_i`, residual :math:`e_i` and momentum :math:`m_i`
    (invariant: :math:`x_i - e_i = z` is the same on every client). Step t:

    .. math::
        m_i \leftarrow \beta m_i + \nabla f_i(x_i;\zeta) + \lambda_{wd}x_i,\quad \delta_i = \eta m_i,

        \bar c = \tfrac1n\textstyle\sum_j\mathcal C_1(\delta_j),\quad r_i = \delta_i - \mathcal C_1(\delta_i),\quad
        x_i \leftarrow x_i - (\bar c + r_i),\quad e_i \leftarrow e_i - r_i,

    and every H steps (error reset, after steps :math:`t+1 \equiv 0 \pmod H`):

    .. math::
        \bar c' = \tfrac1n\textstyle\sum_j\mathcal C_2(e_j),\quad r_i' = e_i - \mathcal C_2(e_i),\quad
        x_i \leftarrow x_i - e_i + \bar c' + r_i',\quad e_i \leftarrow r_i'.

    The state stores :math:`z` and :math:`e_i` (then :math:`x_i = z + e_i`): the first update is
    :math:`z \leftarrow z - \bar c`, the reset :math:`z \leftarrow z + \bar c'`. The server
    broadcasts :math:`\bar c` and :math:`\bar c'` (downlink compressor). ``output`` is the average
    local model :math:`z + \frac1n\sum_i e_i`. Gradients are taken at the clients' own points
    (``problem.client_grads_at`` when the problem has it). ``gamma`` is η; no closed form.

    .. note:: The reset schedule counts steps from 1 (reset after steps H, 2H, ...), i.e. the
       reference optimizer's :math:`t \equiv 0 \pmod H` with 1-based t (Xie et al., NeurIPS 2020).

    Args:
        compressor: :math:`\mathcal C_1` (every step).
        reset_compressor: :math:`\mathcal C_2` (every H steps; default the float32 identity: full re-sync).
        H: reset period (default 4, a choice: the paper's value per experiment is not recovered).
        beta: momentum in [0, 1); weight_decay: :math:`\lambda_{wd}`.
        scale: ``"auto"`` rescales unbiased compressors to contractive ones.
        batch_size, noise: stochastic oracle.

    References:
        Xie et al., CSER: Communication-efficient SGD with error reset, NeurIPS 2020, Alg. 2.
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
        reset_compressor: Any = None,
        H: int = 4,
        beta: float = 0.0,
        weight_decay: float = 0.0,
        scale: Any = "auto",
        batch_size: int | None = None,
        noise: float = 0.0,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        self.reset_compressor = resolve_compressor(reset_compressor, "reset_compressor", None) or dense_compressor()
        self.H = check_int("H", H, owner)
        if not (isinstance(beta, (int, float)) and 0.0 <= float(beta) < 1.0):
            raise ConfigError(f"{owner} needs momentum beta in [0, 1); got beta={beta!r}.")
        if not (isinstance(weight_decay, (int, float)) and float(weight_decay) >= 0.0):
            raise ConfigError(f"{owner} needs weight_decay >= 0; got weight_decay={weight_decay!r}.")
        self.beta, self.weight_decay = float(beta), float(weight_decay)
        self.scale, self.delta = contractive_scale(self.compressor, self.n, self.d, scale, owner)
        self.scale2, self.delta2 = contractive_scale(self.reset_compressor, self.n, self.d, scale, owner)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"delta": self.delta}

    def _extra_params(self) -> dict[str, Any]:
        rc = self.reset_compressor
        return {"reset_compressor": {"name": rc.name, **rc.params()}, "H": self.H, "beta": self.beta,
                "weight_decay": self.weight_decay, "scale": self.scale, "scale2": self.scale2, **self.oracle.params()}

    def init(self, x0: torch.Tensor | None = None) -> CSERState:
        x = self._x0(x0)
        zeros = torch.zeros(self.network.rows, self.d, dtype=x.dtype, device=x.device)
        return CSERState(z=x, e=zeros, m=zeros.clone(), t=0)

    def output(self, state: CSERState) -> torch.Tensor:
        return state.z + self.network.mean(state.e)

    def step(self, state: CSERState) -> CSERState:
        t = state.t
        X = state.z.unsqueeze(0) + state.e  # local models x_i
        G = self.oracle.at(X, self._seed(t, "oracle"))
        if self.weight_decay:
            G = G + self.weight_decay * X
        m = self.beta * state.m + G
        delta = self.gamma * m
        C = self.scale * self._up(delta, self.compressor, t)
        z = state.z - self._down(self.network.mean(C), t)
        e = state.e - (delta - C)
        if (t + 1) % self.H == 0:
            C2 = self.scale2 * self._up(e, self.reset_compressor, t, "reset")
            z = z + self._down(self.network.mean(C2), t, "reset")
            e = e - C2
        return CSERState(z=z, e=e, m=m, t=t + 1)
