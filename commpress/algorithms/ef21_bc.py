"""EF21-BC: EF21 with error feedback on both the uplink and the downlink (bidirectional compression)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import INIT_ROUND, Algorithm, algorithm_state, contractive_scale
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

G0_BROADCAST = ("dense", "compressed")
VARIANTS = ("script", "product")


@algorithm_state
class EF21BCState:
    x: torch.Tensor     # (d,)      x^t (every worker holds the same copy)
    gt_i: torch.Tensor  # (rows, d) workers' estimators g~_i^t
    gt: torch.Tensor    # (d,)      server's g~^t = mean of the g~_i^t
    g: torch.Tensor     # (d,)      the broadcast estimator g^t (server and every worker)
    t: int


@register("ef21_bc")
class EF21BC(Algorithm):
    r"""EF21-BC (Fatkhullin, Sokolov, Gorbunov, Li, Richtárik, *EF21 with Bells & Whistles*, bidirectional compression).

    .. math::
        x^{t+1} = x^t - \gamma g^t,\quad c_i^t = \mathcal C_W\big(\nabla f_i(x^{t+1}) - \tilde g_i^t\big),\quad
        \tilde g_i^{t+1} = \tilde g_i^t + c_i^t,\quad \tilde g^{t+1} = \tilde g^t + \tfrac1n\textstyle\sum_i c_i^t,

        b^{t+1} = \mathcal C_M\big(\tilde g^{t+1} - g^t\big),\qquad g^{t+1} = g^t + b^{t+1}\ \text{(broadcast)}.

    Init (the authors' script ``ef21_bc.py``): :math:`\tilde g_i^0 = \nabla f_i(x^0)` (one dense uplink),
    :math:`g^0 = \tilde g^0`, broadcast densely (``g0_broadcast="dense"``, 32 d bits per worker) or as
    :math:`\mathcal C_M(\tilde g^0)` (``"compressed"``). Uplink: :math:`\mathcal C_W` (``compressor``),
    downlink: :math:`\mathcal C_M` (``downlink_compressor``, default Top-K 5%), both contractive (an unbiased
    one is rescaled by :math:`1/(1+\omega)` with ``scale="auto"``). With :math:`\mathcal C_M = I` it is EF21
    (up to float rounding).

    Stepsize (``gamma=None``): EF21's :math:`(L_- + L_{QM}\sqrt{\beta/\theta})^{-1}` with :math:`\alpha = \alpha_W`, as
    the authors' script (which multiplies it by a tuned factor: use a stepsize multiplier);
    ``variant="product"`` uses :math:`\alpha_W\alpha_M` (library choice reflecting the paper's
    :math:`O(\tilde L\Delta^0/(\alpha_W\alpha_M\varepsilon^2))` rate; its constants were not recovered).

    Args:
        compressor: uplink :math:`\mathcal C_W`.
        downlink_compressor: downlink :math:`\mathcal C_M`.
        scale, downlink_scale: ``"auto"``, None or a factor for each direction.
        g0_broadcast: ``"dense"`` or ``"compressed"``.
        variant: ``"script"`` or ``"product"`` (theory stepsize).
        regime: ``"nonconvex"`` or ``"pl"`` (EF21's PL stepsize).

    References:
        Fatkhullin, Sokolov, Gorbunov, Li, Richtárik, EF21 with bells & whistles: practical algorithmic
        extensions of modern error feedback, 2021 (arXiv 2110.03294), EF21-BC.
    """

    default_compressor = "topk"

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, scale: Any = "auto", downlink_scale: Any = "auto",
                 g0_broadcast: str = "dense", variant: str = "script", regime: str = "nonconvex") -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed,
                         downlink_compressor={"name": "topk", "ratio": 0.05} if downlink_compressor is None
                         else downlink_compressor)
        owner = type(self).__name__
        if g0_broadcast not in G0_BROADCAST:
            raise ConfigError(f"{owner} needs g0_broadcast in {list(G0_BROADCAST)}; got {g0_broadcast!r}.")
        if variant not in VARIANTS:
            raise ConfigError(f"{owner} needs variant in {list(VARIANTS)}; got variant={variant!r}.")
        if regime not in ("nonconvex", "pl"):
            raise ConfigError(f"{owner} needs regime 'nonconvex' or 'pl'; got regime={regime!r}.")
        self.g0_broadcast, self.variant, self.regime = g0_broadcast, variant, regime
        self.scale, self.delta = contractive_scale(self.compressor, self.n, self.d, scale, owner)
        self.downlink_scale, self.delta_m = contractive_scale(self.downlink_compressor, 1, self.d, downlink_scale,
                                                              owner)
        if gamma is None:
            for what, delta, comp in (("uplink", self.delta, self.compressor),
                                      ("downlink", self.delta_m if variant == "product" else 1.0,
                                       self.downlink_compressor)):
                if delta is None:
                    raise ConfigError(
                        f"{owner} needs a contractive {what} compressor; {comp!r} states no contraction constant. "
                        "Use e.g. 'topk', an unbiased one with scale='auto', or pass gamma=<stepsize>.")
        self.oracle = Oracle(problem, self.network, owner=owner)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"delta": self.delta, "delta_m": self.delta_m, "variant": self.variant, "regime": self.regime}

    def _extra_params(self) -> dict[str, Any]:
        return {"scale": self.scale, "downlink_scale": self.downlink_scale, "delta": self.delta,
                "delta_m": self.delta_m, "g0_broadcast": self.g0_broadcast, "variant": self.variant,
                "regime": self.regime}

    def init(self, x0: torch.Tensor | None = None) -> EF21BCState:
        x = self._x0(x0)
        gt_i = self._up(self.oracle.exact(x), self.dense, INIT_ROUND)
        gt = self.network.mean(gt_i)
        if self.g0_broadcast == "dense":
            g = self._down(gt, INIT_ROUND, compressor=self.dense)
        else:
            g = self.downlink_scale * self._down(gt, INIT_ROUND)
        return EF21BCState(x=x, gt_i=gt_i, gt=gt, g=g, t=0)

    def step(self, state: EF21BCState) -> EF21BCState:
        t = state.t
        x = state.x - self.gamma * state.g
        C = self.scale * self._up(self.oracle.exact(x) - state.gt_i, self.compressor, t)
        gt = state.gt + self.network.mean(C)
        g = state.g + self.downlink_scale * self._down(gt - state.g, t)
        return EF21BCState(x=x, gt_i=state.gt_i + C, gt=gt, g=g, t=t + 1)
