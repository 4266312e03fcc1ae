"""DIANA with client sampling: the sampled clients send compressed differences, reweighted by 1/p_i."""

from __future__ import annotations

from typing import Any

from commpress.algorithms._participation import Participation
from commpress.algorithms._prox import prox
from commpress.algorithms.diana import DIANA, DIANAState
from commpress.algorithms.registry import register


@register("diana_pp")
class DIANAPP(Participation, DIANA):
    r"""DIANA with client sampling (DIANA of Mishchenko, Gorbunov, Takáč, Richtárik 2019, composed with
    unbiased client sampling; a library construction, no paper's algorithm).

    Round k, participants :math:`S_k`, :math:`p_i=\Pr(i\in S_k)`:

    .. math::
        \hat\Delta_i^k=\mathcal Q_i(g_i^k-h_i^k)\ (i\in S_k),\qquad
        \hat g^k=h^k+\tfrac1n\textstyle\sum_{i\in S_k}\hat\Delta_i^k/p_i,\qquad
        x^{k+1}=\mathrm{prox}_{\gamma R}(x^k-\gamma v^k),\ v^k=\beta v^{k-1}+\hat g^k,

        h_i^{k+1}=h_i^k+\alpha\hat\Delta_i^k\ (i\in S_k;\ \text{others unchanged}),\qquad
        h^{k+1}=h^k+\tfrac\alpha n\textstyle\sum_{i\in S_k}\hat\Delta_i^k.

    :math:`\hat g^k` is unbiased (the reweighted mean of the unbiased DIANA messages). Bits: uplink from
    :math:`S_k` only; the server's broadcast of :math:`v^k` goes to the clients that compute at
    :math:`x^{k+1}`, i.e. :math:`S_{k+1}` (charged in round k). ``participation="full"``: DIANA iterate
    for iterate.

    Stepsize (``gamma=None``): DIANA's, with :math:`\omega` replaced by :math:`(1+\omega)/p_{\min}-1` and
    :math:`\omega/n` by the sampled mean's constant A (nice: :math:`\omega/\tau+B_\tau`): a labelled heuristic
    (no paper states this method's constant). ``alpha=None``: :math:`1/(\omega+1)`.

    Args:
        compressor: unbiased compressor :math:`\mathcal Q\in\mathbb U(\omega)`.
        participation: sampler spec (``"full"``, ``"nice:4"``, ``"independent:0.5"``, a dict or a Sampler).
        alpha, beta, h0, reg, lam, batch_size, noise, regime: as DIANA.

    References:
        Mishchenko et al., Distributed learning with compressed gradient differences, 2019 (DIANA).
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
        participation: Any = None,
    ) -> None:
        self._participation_arg = participation
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         alpha=alpha, beta=beta, h0=h0, reg=reg, lam=lam, batch_size=batch_size, noise=noise,
                         regime=regime)
        self._pp()

    def step(self, state: DIANAState) -> DIANAState:
        t = state.t
        S = self.participants(t)
        if S is None:
            return super().step(state)
        G = self.oracle(state.x, self._seed(t, "oracle"))
        D_hat = self.network.uplink(G - state.h_i, self.compressor, self._seed(t, "uplink"), round=t, participants=S)
        m = self.network.mean(D_hat)
        m_unbiased = m / self._p_uniform if self._p_uniform is not None else self._unbiased_mean(D_hat, S)
        v = self.beta * state.v + (state.h + m_unbiased)
        v_hat = self.network.downlink(v, self.downlink_compressor, self._seed(t, "downlink"), round=t,
                                      participants=self.participants(t + 1))
        x = prox(state.x - self.gamma * v_hat, self.gamma, self.reg, self.lam)
        return DIANAState(x=x, h_i=state.h_i + self.alpha * D_hat, h=state.h + self.alpha * m, v=v, t=t + 1)
