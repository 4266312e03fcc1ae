"""DASHA-PAGE: DASHA with PAGE variance reduction on finite-sum clients."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import check_int, check_positive, shared_uniform
from commpress.algorithms.dasha import DASHA, DASHAState
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


@register("dasha_page")
class DASHAPAGE(DASHA):
    r"""DASHA-PAGE (Tyurin, Richtárik, ICLR 2023, Algorithm 1 with the PAGE estimator).

    Client i holds :math:`f_i=\frac1m\sum_jf_{ij}`. A shared coin :math:`c_t\sim\mathrm{Bernoulli}(p)`
    (tag ``"page/coin"``, 0 bits) chooses the estimator:

    .. math::
        h_i^{t+1} = \begin{cases}\nabla f_i(x^{t+1}) & c_t=1\\
            h_i^t+\frac1B\sum_{j\in I_i^t}\big(\nabla f_{ij}(x^{t+1})-\nabla f_{ij}(x^t)\big) & c_t=0,\end{cases}

    the same minibatch :math:`I_i^t` (B samples, with replacement) at both points; then DASHA's
    :math:`m_i^{t+1}=\mathcal C_i(h_i^{t+1}-h_i^t-a(g_i^t-h_i^t))`, :math:`g_i^{t+1}=g_i^t+m_i^{t+1}`,
    :math:`g^{t+1}=g^t+\frac1n\sum_im_i^{t+1}`, :math:`x^{t+1}=x^t-\gamma g^t`. Only compressed messages
    are sent every round (the full-gradient rounds are local computation).

    Defaults: :math:`p=B/(m+B)`, :math:`a=1/(2\omega+1)` (authors' code); ``g0="grad"``:
    :math:`h_i^0=g_i^0=\nabla f_i(x^0)`, sent dense once (the code's initialisation). Stepsize
    (``gamma=None``): :math:`(L_-+[\frac{48\omega(2\omega+1)}n(L_{QM}^2+\frac{(1-p)L_{\max}^2}B)+\frac{2(1-p)L_{\max}^2}{pnB}]^{1/2})^{-1}`,
    :math:`L_{\max}` the single-sample constant (.. note:: recalled shape; the paper's constants were
    not recovered, so this is a library default). With p = 1 it is DASHA iterate for iterate.

    Args:
        compressor: independent unbiased compressors (e.g. RandK).
        batch_size: B, samples per client per round.
        p: probability of a full local gradient, in (0, 1].
        a: momentum in (0, 1].
        g0: ``"grad"`` or ``"zero"``.

    References:
        Tyurin, Richtárik, DASHA, ICLR 2023 (DASHA-PAGE); authors' code mysteryresearcher/dasha
        (``zero_marina_page``).
    """

    g0_default = "grad"

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, a: float | None = None, g0: str | None = None,
                 batch_size: int = 1, p: float | None = None) -> None:
        self._batch_size, self._p_arg = batch_size, p
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         a=a, g0=g0)

    def _make_oracle(self, problem, owner: str, **oracle: Any) -> Oracle:
        self.batch_size = check_int("batch_size", self._batch_size, owner)
        return Oracle(problem, self.network, batch_size=self.batch_size, owner=owner)

    def _setup(self, owner: str) -> None:
        m_all = self.problem.num_samples()
        if m_all is None:
            raise ConfigError(f"{owner} needs a finite-sum problem (per-sample gradients); "
                              f"{self.problem.name or type(self.problem).__name__} is not one. Use dasha_mvr.")
        self.m = float(torch.as_tensor(m_all, dtype=torch.float64).mean())
        if self._p_arg is None:
            from commpress.theory.lazy import dasha_page_p

            self.p, self.p_source = dasha_page_p(self.batch_size, self.m), "theory"
        else:
            self.p, self.p_source = check_positive("p", self._p_arg, owner, upper=1.0), "given"

    def _theory_params(self) -> dict[str, Any]:
        return {"a": self.a, "p": self.p, "batch_size": self.batch_size,
                "L_sample": getattr(self.problem.smoothness(), "L_sample", None)}

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "batch_size": self.batch_size, "p": self.p, "p_source": self.p_source,
                "m": self.m}

    def coin(self, t: int) -> bool:
        """Round ``t``'s shared coin: True computes full local gradients."""
        return shared_uniform(self._seed(t, "coin"), "page/coin") < self.p

    def _h_next(self, state: DASHAState, x: torch.Tensor, t: int) -> torch.Tensor:
        if self.coin(t):
            return self.oracle.exact(x)
        seed = self._seed(t, "oracle")  # the same minibatch at x^{t+1} and x^t
        return state.h_i + self.oracle(x, seed) - self.oracle(state.x, seed)
