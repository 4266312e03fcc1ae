"""DASHA-MVR: DASHA with momentum variance reduction for stochastic gradients."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import INIT_ROUND, check_int, check_positive
from commpress.algorithms.dasha import DASHA, DASHAState
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

G0_CHOICES = ("megabatch", "grad", "zero")


@register("dasha_mvr")
class DASHAMVR(DASHA):
    r"""DASHA-MVR (Tyurin, Richtárik, ICLR 2023, Algorithm 1 with the MVR estimator).

    Client i draws :math:`\xi_i^{t+1}` (a minibatch of size B, or the oracle's noise) and evaluates
    its stochastic gradient at both points with it:

    .. math::
        h_i^{t+1} = \nabla f_i(x^{t+1};\xi_i^{t+1})+(1-b)\big(h_i^t-\nabla f_i(x^t;\xi_i^{t+1})\big),

    then DASHA's :math:`m_i^{t+1}=\mathcal C_i(h_i^{t+1}-h_i^t-a(g_i^t-h_i^t))`,
    :math:`g_i^{t+1}=g_i^t+m_i^{t+1}`, :math:`g^{t+1}=g^t+\frac1n\sum_im_i^{t+1}`, :math:`x^{t+1}=x^t-\gamma g^t`.
    Only compressed messages are sent every round.

    Defaults: :math:`b=\min\{1/B',1/(\omega\sqrt{B'})\}` with the mega-batch :math:`B'` (``mega_batch``,
    100 by default: a library choice, the authors' configs use :math:`10^2`–:math:`10^5`),
    :math:`a=1/(2\omega+1)`; ``g0="megabatch"``: :math:`h_i^0=g_i^0` = a minibatch of
    :math:`\max\{B',\lceil\omega\sqrt{B'}\rceil\}` samples, sent dense once (the code's initialisation);
    ``"grad"``: the exact local gradient; ``"zero"``: :math:`g_i^0=0`, :math:`h_i^0` the mega-batch, nothing sent.
    Stepsize (``gamma=None``):
    :math:`(L_-+[\frac{48\omega(2\omega+1)}n(L_{QM}^2+\frac{(1-b)^2L_\sigma^2}B)+\frac{12L_\sigma^2}{bnB}]^{1/2})^{-1}`,
    :math:`L_\sigma` the single-sample constant for minibatches, :math:`L_{\max}` for additive noise
    (.. note:: recalled shape; the paper's constants were not recovered, so this is a library default).

    Args:
        compressor: independent unbiased compressors (e.g. RandK).
        batch_size: B, samples per client per round (None: exact gradients plus ``noise``).
        noise: standard deviation of additive Gaussian gradient noise (the oracle's ``noise``).
        b: MVR momentum in (0, 1] (b = 1: plain compressed SGD estimators).
        mega_batch: B' for the default b and the initial mega-batch.
        a: DASHA momentum in (0, 1].
        g0: ``"megabatch"``, ``"grad"`` or ``"zero"``.

    References:
        Tyurin, Richtárik, DASHA, ICLR 2023 (DASHA-MVR); authors' code mysteryresearcher/dasha
        (``zero_marina_stochastic``) and its experiment configs.
    """

    g0_default = "megabatch"

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, a: float | None = None, g0: str | None = None,
                 batch_size: int | None = 1, noise: float = 0.0, b: float | None = None,
                 mega_batch: int = 100) -> None:
        self._oracle_args, self._b_arg, self._mega_arg = (batch_size, noise), b, mega_batch
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         a=a, g0=g0)

    def _g0_choices(self) -> tuple[str, ...]:
        return G0_CHOICES

    def _make_oracle(self, problem, owner: str, **oracle: Any) -> Oracle:
        batch_size, noise = self._oracle_args
        return Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)

    def _setup(self, owner: str) -> None:
        self.mega_batch = check_int("mega_batch", self._mega_arg, owner)
        self.batch_size = self.oracle.batch_size
        if self._b_arg is not None:
            self.b, self.b_source = check_positive("b", self._b_arg, owner, upper=1.0), "given"
        else:
            from commpress.theory.lazy import dasha_mvr_momentum

            w = self._omega()
            if w is None:
                raise ConfigError(f"{owner}: the compressor states no omega, so the default momentum b is unknown; "
                                  "pass b=... (and a=..., gamma=...).")
            self.b, self.b_source = dasha_mvr_momentum(w, self.mega_batch), "theory"
        w = self._omega() or 0.0
        self.init_batch = max(self.mega_batch, math.ceil(w * math.sqrt(self.mega_batch)))

    def _theory_params(self) -> dict[str, Any]:
        sm = self.problem.smoothness()
        if self.batch_size is None:
            L_sigma = sm.L_max  # additive noise, the same draw at both points: the differences are exact
        else:
            L_sigma = getattr(sm, "L_sample", None)
        return {"a": self.a, "b": self.b, "batch_size": self.batch_size or 1, "mega_batch": self.mega_batch,
                "L_sigma": L_sigma}

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "b": self.b, "b_source": self.b_source, "mega_batch": self.mega_batch,
                "init_batch": self.init_batch, **self.oracle.params()}

    def _h_init(self, x: torch.Tensor) -> torch.Tensor:
        if self.g0 == "grad":
            return self.oracle.exact(x)
        batch = None if self.oracle.batch_size is None else self.init_batch
        mega = Oracle(self.problem, self.network, batch_size=batch,
                      noise=self.oracle.noise / math.sqrt(self.init_batch), owner=type(self).__name__)
        return mega(x, self._seed(INIT_ROUND, "oracle"))

    def init(self, x0: torch.Tensor | None = None) -> DASHAState:
        x = self._x0(x0)
        h = self._h_init(x)
        g_i = torch.zeros_like(h) if self.g0 == "zero" else self._up(h, self.dense, INIT_ROUND)
        return DASHAState(x=x, h_i=h, g_i=g_i, g=self.network.mean(g_i), t=0)

    def _h_next(self, state: DASHAState, x: torch.Tensor, t: int) -> torch.Tensor:
        seed = self._seed(t, "oracle")  # the same draw ξ at x^{t+1} and x^t
        return self.oracle(x, seed) + (1.0 - self.b) * (state.h_i - self.oracle(state.x, seed))
