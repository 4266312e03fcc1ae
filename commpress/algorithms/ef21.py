"""EF21: error feedback by Markov compression of the gradient estimators."""

from __future__ import annotations

import difflib
from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import INIT_ROUND, Algorithm, algorithm_state, contractive_scale
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

G0_CHOICES = ("grad", "compressed", "zero")


def _check_oracle_keys(oracle: dict[str, Any], owner: str) -> None:
    """``**oracle`` takes the oracle's ``batch_size`` and ``noise`` only: anything else is a ConfigError."""
    unknown = sorted(set(oracle) - {"batch_size", "noise"})
    if not unknown:
        return
    key = unknown[0]
    known = ["gamma", "seed", "downlink_compressor", "g0", "scale", "batch_size", "noise"]
    if key == "delta":
        hint = (" The contraction constant comes from the compressor's theory; for a compressor that states "
                "none, pass gamma=<stepsize> (cp.simulate: stepsize=; a TOML config: [run] stepsize), or use "
                "scale='auto' with an unbiased compressor (delta = 1/(1+omega)).")
    else:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"{owner} has no parameter {key!r}.{hint} Its parameters are: compressor, {', '.join(known)}.")


@algorithm_state
class EF21State:
    x: torch.Tensor    # (d,)      server iterate x^t
    g_i: torch.Tensor  # (rows, d) client estimators g_i^t, one row per client
    g: torch.Tensor    # (d,)      g^t, the mean of the rows of g_i
    t: int             # round number


@register("ef21")
class EF21(Algorithm):
    r"""EF21 (Richtárik, Sokolov, Fatkhullin, NeurIPS 2021, Alg. 1).

    .. math::
        x^{t+1} = x^t - \gamma g^t,\quad
        c_i^t = \mathcal{C}(\nabla f_i(x^{t+1}) - g_i^t),\quad
        g_i^{t+1} = g_i^t + c_i^t,\quad g^{t+1} = g^t + \tfrac1n \textstyle\sum_i c_i^t.

    Initialisation ``g0``: ``"grad"`` (:math:`g_i^0 = \nabla f_i(x^0)`, one dense uplink, :math:`G^0 = 0`;
    default), ``"compressed"`` (:math:`\mathcal C(\nabla f_i(x^0))`) or ``"zero"``. The server
    broadcasts :math:`g^t` (downlink compressor). ``scale="auto"`` turns an unbiased
    :math:`\mathcal C \in \mathbb U(\omega)` into the contractive :math:`\frac1{1+\omega}\mathcal C`.

    Stepsize (``gamma=None``): :math:`1/(L_- + L_{QM}\sqrt{\beta/\theta})`, :math:`\theta = 1-\sqrt{1-\delta}`,
    :math:`\beta = (1-\delta)/(1-\sqrt{1-\delta})` (Richtárik, Sokolov, Fatkhullin, NeurIPS 2021, nonconvex
    case), from ``theory``.

    Args:
        compressor: contractive compressor (or unbiased, rescaled).
        g0: initial estimators.
        scale: ``"auto"``, None or a factor.

    References:
        Richtárik, Sokolov, Fatkhullin, EF21: A new, simpler, theoretically better, and
        practically faster error feedback, NeurIPS 2021, Alg. 1, Thm 1.
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
        **oracle: Any,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        if g0 not in G0_CHOICES:
            raise ConfigError(f"{owner} needs g0 in {list(G0_CHOICES)}; got g0={g0!r}.")
        self.g0 = g0
        self.scale, self.delta = contractive_scale(self.compressor, self.n, self.d, scale, owner)
        _check_oracle_keys(oracle, owner)
        self.oracle = Oracle(problem, self.network, owner=owner, **oracle)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"delta": self.delta}

    def _extra_params(self) -> dict[str, Any]:
        return {"g0": self.g0, "scale": self.scale, "delta": self.delta, **self.oracle.params()}

    def _grads(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return self.oracle(x, self._seed(t, "oracle"))

    def init(self, x0: torch.Tensor | None = None) -> EF21State:
        x = self._x0(x0)
        if self.g0 == "zero":
            g_i = torch.zeros(self.network.rows, self.d, dtype=x.dtype, device=x.device)
        else:
            G = self._grads(x, INIT_ROUND)
            if self.g0 == "grad":
                g_i = self._up(G, self.dense, INIT_ROUND)
            else:
                g_i = self.scale * self._up(G, self.compressor, INIT_ROUND)
        return EF21State(x=x, g_i=g_i, g=self.network.mean(g_i), t=0)

    def step(self, state: EF21State) -> EF21State:
        t = state.t
        x = state.x - self.gamma * self._down(state.g, t)
        C = self.scale * self._up(self._grads(x, t) - state.g_i, self.compressor, t)
        return EF21State(x=x, g_i=state.g_i + C, g=state.g + self.network.mean(C), t=t + 1)
