"""QSVRG: quantized SVRG (epochs with a dense anchor gradient and quantized inner steps)."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import Algorithm, algorithm_state, check_int
from commpress.algorithms.registry import register


@algorithm_state
class QSVRGState:
    x: torch.Tensor    # (d,) inner iterate x_t
    y: torch.Tensor    # (d,) anchor y^(p) of the current epoch
    H: torch.Tensor    # (d,) full gradient at the anchor, ∇f(y^(p))
    acc: torch.Tensor  # (d,) sum of the inner iterates x_1..x_s of the epoch so far
    s: int             # inner step within the epoch (0: a new epoch starts)
    t: int             # round number (inner steps so far)


@register("qsvrg")
class QSVRG(Algorithm):
    r"""QSVRG (Alistarh et al., NeurIPS 2017, Sec. 3.3 "Quantized SVRG", Thm. 3.6; recalled).

    Epoch p with anchor :math:`y^{(p)}`: every client sends its full local gradient at the anchor
    densely (32 d bits) and the server broadcasts :math:`H = \nabla f(y^{(p)})`; :math:`x_1 = y^{(p)}`;
    then for :math:`t = 1..T` client i samples l from its data and

    .. math::
        u_{t,i} = \nabla f_l(x_t) - \nabla f_l(y^{(p)}) + H,\qquad
        x_{t+1} = x_t - \frac\eta n\sum_i Q(u_{t,i}),\qquad
        y^{(p+1)} = \frac1T\sum_{t=1}^T x_t .

    One ``step`` is one inner iteration (the anchor exchange happens at the start of an epoch,
    in the same round). The step size is ``gamma`` (η).

    Args:
        compressor: the quantizer Q (default ``"qsgd"``).
        epoch_length: T inner steps per epoch (default: the mean number of samples per client).

    References:
        Alistarh, Grubic, Li, Tomioka, Vojnović, QSGD, NeurIPS 2017, Thm 3.6 (recalled).
    """

    default_compressor = "qsgd"

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        epoch_length: int | None = None,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        self.oracle = Oracle(problem, self.network, owner=owner)
        self.oracle.num_samples()  # raises ConfigError for non-finite-sum problems
        if epoch_length is None:
            epoch_length = max(1, math.ceil(float(torch.as_tensor(problem.num_samples()).double().mean())))
        self.epoch_length = check_int("epoch_length", epoch_length, owner)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        sm = self.problem.smoothness()
        return {"epoch_length": self.epoch_length, "L_sample": getattr(sm, "L_sample", None)}

    def _extra_params(self) -> dict[str, Any]:
        return {"epoch_length": self.epoch_length}

    def init(self, x0: torch.Tensor | None = None) -> QSVRGState:
        x = self._x0(x0)
        z = torch.zeros_like(x)
        return QSVRGState(x=x, y=x.clone(), H=z, acc=z.clone(), s=0, t=0)

    def step(self, state: QSVRGState) -> QSVRGState:
        t = state.t
        x, y, H, acc = state.x, state.y, state.H, state.acc
        if state.s == 0:
            y = x
            G = self.oracle.exact(y)
            H = self._down(self.network.mean(self._up(G, self.dense, t, "anchor")), t, "anchor", compressor=self.dense)
            acc = torch.zeros_like(x)
        index = self.oracle.sample_index(self._seed(t, "oracle"))
        U = self.oracle.samples(x, index) - self.oracle.samples(y, index) + H
        direction = self._down(self.network.mean(self._up(U, self.compressor, t)), t)
        acc = acc + x
        x_next = x - self.gamma * direction
        s = state.s + 1
        if s == self.epoch_length:
            x_next, s = acc / self.epoch_length, 0
        return QSVRGState(x=x_next, y=y, H=H, acc=acc, s=s, t=t + 1)
