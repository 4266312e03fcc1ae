"""FedNL-LS: FedNL with a backtracking line search (global convergence)."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms._newton import NewtonBase
from commpress.algorithms.base import algorithm_state, check_positive, make_compressor
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


@algorithm_state
class FedNLLSState:
    x: torch.Tensor    # (d,)       server iterate x^k
    H_i: torch.Tensor  # (rows, N)  client Hessian estimates (upper triangles)
    H: torch.Tensor    # (N,)       server estimate, the mean of H_i
    t: int             # round number
    trials: int        # line-search trials so far (function evaluations beyond f(x^k))


@register("fednl_ls")
class FedNLLS(NewtonBase):
    r"""FedNL-LS (Safaryan, Islamov, Qian, Richtárik, ICML 2022, Alg. FedNL-LS).

    .. math::
        d^k = -[H^k]_\mu^{-1}\nabla f(x^k),\qquad
        x^{k+1} = x^k + s_kd^k,\quad s_k=\max\{\beta^j: f(x^k+\beta^jd^k)\le f(x^k)+c\beta^j\langle\nabla f(x^k),d^k\rangle\},

    with the Hessian learning of FedNL (:math:`H_i^{k+1}=H_i^k+\alpha\mathcal C(\nabla^2f_i(x^k)-H_i^k)`).
    Defaults :math:`c=\beta=\frac12`. Per round and client: :math:`x^k` down (32d), :math:`\nabla f_i(x^k)` and
    :math:`f_i(x^k)` up, the Hessian message up, the direction :math:`d^k` down once (32d), then per
    trial the step :math:`\beta^j` down and :math:`f_i(x^k+\beta^jd^k)` up. Function values travel as
    float64 (64 bits; the paper counts 32): the Armijo test compares values that differ by far less than
    float32 resolution near :math:`x^*`. When the predicted decrease :math:`|c\langle\nabla f,d\rangle|` is
    below float64 resolution of :math:`f`, the full step is accepted without trials.
    Theory: global linear convergence plus FedNL's local rates (constants not recovered).

    Args:
        compressor, alpha, mu, h0: as :class:`~commpress.algorithms.fednl.FedNL` (option 1 only).
        c: Armijo constant in (0, 1). beta: backtracking factor in (0, 1).
        max_trials: most backtracking steps per round (then the last step is taken).

    References:
        Safaryan, Islamov, Qian, Richtárik, FedNL: Making Newton-Type Methods Applicable to Federated
        Learning, ICML 2022 (FedNL-LS).
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: Any = "auto", mu: float | None = None, h0: str = "hessian",
                 c: float = 0.5, beta: float = 0.5, max_trials: int = 40) -> None:
        self._setup(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                    alpha=alpha, option=1, mu=mu, h0=h0)
        owner = type(self).__name__
        self.c = check_positive("c", c, owner, upper=1.0)
        self.beta = check_positive("beta", beta, owner, upper=1.0)
        if self.c >= 1.0 or self.beta >= 1.0:
            raise ConfigError(f"{owner} needs c and beta in (0, 1); got c={c!r}, beta={beta!r}. Use 0.5.")
        if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 0:
            raise ConfigError(f"{owner} needs an integer max_trials >= 0; got max_trials={max_trials!r}.")
        self.max_trials = max_trials
        self.scalar = make_compressor("identity", float_bits=64)

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "c": self.c, "beta": self.beta, "max_trials": self.max_trials}

    def init(self, x0: torch.Tensor | None = None) -> FedNLLSState:
        x = self._x0(x0)
        H_i = self._init_hessians(x)
        return FedNLLSState(x=x, H_i=H_i, H=self.network.mean(H_i), t=0, trials=0)

    def _value(self, x: torch.Tensor, t: int, j: int) -> float:
        return float(self.network.mean(self._up(self._losses(x)[:, None], self.scalar, t, "loss", j))[0])

    def step(self, state: FedNLLSState) -> FedNLLSState:
        t = state.t
        x_c = self._down(state.x, t)
        G = self._up(self._grads(x_c), self.dense, t, "grad")
        f0 = self._value(x_c, t, 0)
        Hx = self._hess(x_c)
        S = self._up(Hx - state.H_i, self.hess_compressor, t, "hess")
        g = self.network.mean(G)
        direction = -torch.linalg.solve(self._matrix(state.H), g)
        slope = float(g @ direction)
        s, trials = 1.0, 0
        if math.isfinite(slope) and abs(self.c * slope) > 8 * torch.finfo(torch.float64).eps * max(1.0, abs(f0)):
            d_c = self._down(direction, t, "direction")
            while trials < self.max_trials:
                step = self._down(torch.tensor([s], dtype=x_c.dtype), t, "trial", trials)
                trials += 1
                if self._value(x_c + step[0] * d_c, t, trials) <= f0 + self.c * s * slope:
                    break
                s *= self.beta
        x = state.x + self.gamma * s * direction
        return FedNLLSState(x=x, H_i=state.H_i + self.alpha * S, H=state.H + self.alpha * self.network.mean(S),
                            t=t + 1, trials=state.trials + trials)
