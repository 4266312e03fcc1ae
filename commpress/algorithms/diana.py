"""DIANA: compressed gradient differences with learned shifts."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms._prox import check_regularizer, prox
from commpress.algorithms._shift import check_h0, initial_shifts, shift_alpha
from commpress.algorithms.base import Algorithm, algorithm_state
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


@algorithm_state
class DIANAState:
    x: torch.Tensor    # (d,)      x^k
    h_i: torch.Tensor  # (rows, d) client shifts h_i^k
    h: torch.Tensor    # (d,)      server shift h^k = mean of the h_i^k
    v: torch.Tensor    # (d,)      momentum buffer v^{k-1} (zeros when beta = 0)
    t: int


@register("diana")
class DIANA(Algorithm):
    r"""DIANA (Mishchenko, Gorbunov, Takáč, Richtárik 2019, Alg. 1).

    .. math::
        \Delta_i^k = g_i^k - h_i^k,\quad \hat\Delta_i^k = \mathcal Q_i(\Delta_i^k),\quad
        h_i^{k+1} = h_i^k + \alpha\hat\Delta_i^k,

        \hat g^k = h^k + \tfrac1n\textstyle\sum_i\hat\Delta_i^k,\quad v^k = \beta v^{k-1} + \hat g^k,\quad
        x^{k+1} = \mathrm{prox}_{\gamma R}(x^k - \gamma v^k),\quad h^{k+1} = h^k + \tfrac\alpha n\textstyle\sum_i\hat\Delta_i^k.

    :math:`g_i^k` is the exact local gradient or the stochastic oracle (``batch_size``,
    ``noise``). The server broadcasts :math:`v^k` (downlink compressor) and every replica applies
    the prox step to the received vector. ``alpha=None``: :math:`1/(\omega+1)`. ``h0="grad"``
    starts from :math:`h_i^0 = \nabla f_i(x^0)` (one dense uplink at initialisation).

    Stepsize (``gamma=None``): ``theory.default_stepsize("diana", ...)``: strongly convex
    :math:`1/((1+6\omega/n)L)`, nonconvex :math:`1/(10L\sqrt{1+\omega/n}(\omega+2))` (``regime``).

    Args:
        compressor: unbiased compressor :math:`\mathcal Q \in \mathbb U(\omega)`.
        alpha: shift stepsize in (0, 1].
        beta: momentum in [0, 1).
        h0: ``"zero"`` or ``"grad"``.
        reg, lam: regulariser ``R``: None, ``"l1"`` (λ‖x‖₁) or ``"l2"`` (λ/2‖x‖²), used through its prox.
        batch_size, noise: stochastic oracle.
        regime: theory regime: ``"strongly_convex"`` (default when the problem states μ > 0),
            ``"nonconvex"`` or ``"strongly_convex_vr"``.

    References:
        Mishchenko et al., Distributed learning with compressed gradient differences, 2019;
        Gorbunov, Hanzely, Richtárik, A unified theory of SGD, 2020 (stepsize).
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
        alpha: float | None = None,
        beta: float = 0.0,
        h0: str = "zero",
        reg: str | None = None,
        lam: float = 0.0,
        batch_size: int | None = None,
        noise: float = 0.0,
        regime: str | None = None,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self.alpha, self.alpha_source = shift_alpha(self, alpha)
        try:
            self.beta = float(beta)
        except (TypeError, ValueError):
            raise ConfigError(f"{owner} needs a number beta in [0, 1); got beta={beta!r}.") from None
        if not 0.0 <= self.beta < 1.0:
            raise ConfigError(f"{owner} needs momentum beta in [0, 1); got beta={beta!r}.")
        self.h0 = check_h0(h0, owner)
        self.reg, self.lam = check_regularizer(reg, lam, owner)
        self.regime = _check_regime(regime, problem, owner)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"regime": self.regime, "alpha": self.alpha}

    def _extra_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "alpha_source": self.alpha_source, "beta": self.beta, "h0": self.h0,
                "reg": self.reg, "lam": self.lam, "regime": self.regime, **self.oracle.params()}

    def init(self, x0: torch.Tensor | None = None) -> DIANAState:
        x = self._x0(x0)
        h_i, h = initial_shifts(self, self.h0, x)
        return DIANAState(x=x, h_i=h_i, h=h, v=torch.zeros_like(x), t=0)

    def step(self, state: DIANAState) -> DIANAState:
        t = state.t
        G = self.oracle(state.x, self._seed(t, "oracle"))
        D_hat = self._up(G - state.h_i, self.compressor, t)
        m = self.network.mean(D_hat)
        v = self.beta * state.v + (state.h + m)
        x = prox(state.x - self.gamma * self._down(v, t), self.gamma, self.reg, self.lam)
        return DIANAState(x=x, h_i=state.h_i + self.alpha * D_hat, h=state.h + self.alpha * m, v=v, t=t + 1)


#: Regimes of the DIANA theory (``theory.diana.DIANA_REGIMES``).
REGIMES = ("nonconvex", "strongly_convex", "strongly_convex_vr")


def _check_regime(regime: Any, problem, owner: str, choices: tuple[str, ...] = REGIMES) -> str:
    if regime is None:
        try:
            mu = float(problem.smoothness().mu)
        except NotImplementedError:
            mu = 0.0
        return "strongly_convex" if mu > 0 else "nonconvex"
    if regime not in choices:
        raise ConfigError(f"{owner} needs regime in {list(choices)}; got regime={regime!r}.")
    return regime
