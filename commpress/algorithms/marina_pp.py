"""PP-MARINA: MARINA whose compressed rounds hear only a sample of the clients."""

from __future__ import annotations

from typing import Any

import torch

from commpress import theory
from commpress.algorithms._participation import Participation
from commpress.algorithms.base import check_positive
from commpress.algorithms.marina import MARINA
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

#: The theoretical rules for p: MARINA's communication-optimal p, or the bits ratio p = ζ/(32 d) with the
#: expected payload per client (PP-MARINA's Corollary: p = ζ r / (d n)).
P_RULES = ("optimal", "bits_ratio")


@register("marina_pp")
class MARINAPP(Participation, MARINA):
    r"""PP-MARINA (Gorbunov, Burlachenko, Li, Richtárik, ICML 2021, Algorithm 4, partial participation).

    Round k: :math:`x^{k+1}=x^k-\gamma g^k` (the server broadcasts :math:`g^k` to every client, so all
    keep x); shared coin :math:`c_k\sim\mathrm{Bernoulli}(p)`; participants :math:`S_k` from the sampler;

    .. math::
        g^{k+1} = \begin{cases}
            \frac1n\sum_{i=1}^n \nabla f_i(x^{k+1}) & c_k = 1 \text{ (every client, dense)}\\
            g^k + \frac1n\sum_{i\in S_k} \frac1{p_i}\mathcal Q_i\big(\nabla f_i(x^{k+1}) - \nabla f_i(x^k)\big) & c_k = 0,
        \end{cases}

    :math:`p_i=\Pr(i\in S_k)` (``nice:tau``: the average :math:`\frac1\tau\sum_{i\in S_k}`, as in the
    authors' public code; the paper samples r clients with replacement, not offered here). Only
    the participants send (and are charged) in a compressed round. ``participation="full"`` (or
    ``nice:n``) is MARINA iterate for iterate.

    Stepsize (``gamma=None``): MARINA's AB-inequality stepsize
    :math:`(L_-+\sqrt{\frac{1-p}p((A-B)L_+^2+BL_\pm^2)})^{-1}` with the AB constants of the sampled mean
    of independent :math:`\mathbb U(\omega)` messages (nice: :math:`A=\omega/\tau+B_\tau`, :math:`B=B_\tau`,
    :math:`B_\tau=\frac{n-\tau}{\tau(n-1)}`; independent: :math:`A=\max_i((1+\omega)/p_i-1)/n`, B = 0);
    ``p=None``: MARINA's communication-optimal p with the expected payload per client.

    Args:
        compressor: unbiased compressor of the differences.
        p: probability of a dense round; None or ``"optimal"``: MARINA's communication-optimal p;
            ``"bits_ratio"``: :math:`p=\bar p\,\zeta/(32d)` with :math:`\bar p` the mean participation
            probability (the Corollary's :math:`p=\zeta r/(dn)`).
        participation: sampler spec (``"full"``, ``"nice:4"``, ``"independent:0.5"``, a dict or a Sampler).

    References:
        Gorbunov et al., MARINA: Faster non-convex distributed learning with compression, ICML 2021,
        Alg. 4 (PP-MARINA); Szlendak, Tyurin, Richtárik 2021 (AB-inequality stepsize).
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
        p: float | str | None = None,
        convention: str | None = None,
        participation: Any = None,
    ) -> None:
        self._participation_arg = participation
        self._p_rule = "optimal"
        if isinstance(p, str):
            if p not in P_RULES:
                raise ConfigError(f"{type(self).__name__} needs p in (0, 1], None or one of {list(P_RULES)}; got p={p!r}.")
            self._p_rule, p = p, None
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         p=p, convention=convention)
        self._pp()

    def _default_p(self) -> float:
        if self._p_rule == "optimal":
            return super()._default_p()
        params = theory.default_params(self.name, self.problem.smoothness(), self._theory_compressor(), self.n, self.d,
                                       **{**self._theory_params(), "p": self._p_rule})
        return check_positive("p", params["p"], type(self).__name__, upper=1.0)

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), "p_rule": self._p_rule}

    def _setup(self) -> None:
        self._pp()

    def _compressed_mean(self, D: torch.Tensor, t: int) -> torch.Tensor:
        S = self.participants(t)
        if S is None:
            return super()._compressed_mean(D, t)
        rows = self.network.uplink(D, self.compressor, self._seed(t, "uplink"), round=t, participants=S)
        return self._unbiased_mean(rows, S)
