"""VR-DIANA: DIANA with L-SVRG or SAGA variance reduction on finite-sum clients."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms._prox import check_regularizer, prox
from commpress.algorithms._shift import check_h0, initial_shifts, shift_alpha
from commpress.algorithms.base import Algorithm, algorithm_state, check_positive, shared_uniform
from commpress.algorithms.diana import _check_regime
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

VARIANTS = ("lsvrg", "saga")
#: Regimes of the VR-DIANA theory (poster Theorems 1-3).
VR_REGIMES = ("nonconvex", "convex", "strongly_convex")


@algorithm_state
class VRDIANAState:
    x: torch.Tensor               # (d,)          x^k
    h_i: torch.Tensor             # (rows, d)     client shifts
    h: torch.Tensor               # (d,)          server shift, mean of h_i
    mu: torch.Tensor              # (rows, d)     μ_i^k = (1/m) Σ_j ∇f_ij(w_ij^k)
    w: torch.Tensor | None        # (d,)          L-SVRG reference point (shared by all clients)
    table: torch.Tensor | None    # (rows, m, d)  SAGA table ∇f_ij(w_ij^k) (m = max m_i; padded)
    t: int


@register("vr_diana")
class VRDIANA(Algorithm):
    r"""VR-DIANA (Horváth, Kovalev, Mishchenko, Richtárik, Stich; poster Algorithm 1).

    Client i draws :math:`j_i^k` uniformly from its m samples (private) and forms

    .. math::
        g_i^k = \nabla f_{ij_i^k}(x^k) - \nabla f_{ij_i^k}(w_{ij_i^k}^k) + \mu_i^k,\qquad
        \hat\Delta_i^k = \mathcal Q(g_i^k - h_i^k),\qquad h_i^{k+1} = h_i^k + \alpha\hat\Delta_i^k,

        g^k = h^k + \tfrac1n\textstyle\sum_i\hat\Delta_i^k,\qquad
        x^{k+1} = \mathrm{prox}_{\gamma R}(x^k - \gamma g^k),\qquad h^{k+1} = h^k + \tfrac\alpha n\textstyle\sum_i\hat\Delta_i^k.

    Variant 1, ``"lsvrg"``: a shared coin :math:`u^k \sim \mathrm{Bernoulli}(1/m)` (tag
    ``"vr_diana/coin"``); if :math:`u^k = 1`, every client sets :math:`w_i = x^k` and recomputes
    :math:`\mu_i = \nabla f_i(x^k)` (a full local pass) *after* computing :math:`g_i^k`. Since the coin
    is shared, all clients hold the same reference point w.
    Variant 2, ``"saga"``: a table of the m stored gradients per client; entry :math:`j_i^k` is
    replaced by :math:`\nabla f_{ij_i^k}(x^k)` and :math:`\mu_i \leftarrow \mu_i + (\text{new} - \text{old})/m_i`.

    ``alpha=None``: :math:`1/(\omega+1)`. Stepsize (``gamma=None``): the poster's Theorems 1-3
    (strongly convex :math:`1/(L(1+36(\omega+1)/n))`, convex, nonconvex) via ``theory``.

    Args:
        compressor: unbiased compressor (ω-quantization).
        variant: ``"lsvrg"`` (default) or ``"saga"``.
        alpha: shift stepsize in (0, 1].
        ref_prob: L-SVRG coin probability (default 1/m, m the mean number of samples per client).
        h0: ``"zero"`` or ``"grad"``.
        reg, lam: ``"l1"`` / ``"l2"`` regulariser R handled by its prox.
        regime: theory regime (``"strongly_convex"``, ``"convex"``, ``"nonconvex"``).

    References:
        Horváth, Kovalev, Mishchenko, Richtárik, Stich, Stochastic distributed learning with
        gradient quantization and variance reduction, 2019 (poster Alg. 1, Thms 1-3).
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
        variant: str = "lsvrg",
        alpha: float | None = None,
        ref_prob: float | None = None,
        h0: str = "zero",
        reg: str | None = None,
        lam: float = 0.0,
        regime: str | None = None,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        if variant not in VARIANTS:
            raise ConfigError(f"{owner} needs variant in {list(VARIANTS)}; got variant={variant!r}.")
        self.variant = variant
        self.oracle = Oracle(problem, self.network, owner=owner)
        self.m_local = self.oracle.num_samples()  # raises for non-finite-sum problems
        m_all = torch.as_tensor(problem.num_samples(), dtype=torch.int64)
        self.m = float(m_all.double().mean())
        self.m_max = int(m_all.max())
        self.alpha, self.alpha_source = shift_alpha(self, alpha)
        self.ref_prob = 1.0 / self.m if ref_prob is None else check_positive("ref_prob", ref_prob, owner, upper=1.0)
        self.h0 = check_h0(h0, owner)
        self.reg, self.lam = check_regularizer(reg, lam, owner)
        self.regime = _check_regime(regime, problem, owner, VR_REGIMES)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        sm = self.problem.smoothness()
        return {"regime": self.regime, "m": max(1, round(self.m)), "variant": self.variant, "alpha": self.alpha,
                "L_sample": getattr(sm, "L_sample", None)}

    def _extra_params(self) -> dict[str, Any]:
        return {"variant": self.variant, "alpha": self.alpha, "alpha_source": self.alpha_source,
                "ref_prob": self.ref_prob, "h0": self.h0, "reg": self.reg, "lam": self.lam,
                "regime": self.regime, "m": self.m}

    def init(self, x0: torch.Tensor | None = None) -> VRDIANAState:
        x = self._x0(x0)
        mu = self.oracle.exact(x)
        h_i, h = initial_shifts(self, self.h0, x, mu)
        if self.variant == "lsvrg":
            return VRDIANAState(x=x, h_i=h_i, h=h, mu=mu, w=x.clone(), table=None, t=0)
        m = self.m_local
        # One batched call per sample position (a loop over samples, not clients): entry j of
        # client i is ∇f_ij(x^0); positions j >= m_i are padding and never read.
        table = torch.stack(
            [self.oracle.samples(x, torch.minimum(torch.full_like(m, j), m - 1)) for j in range(self.m_max)],
            dim=1,
        )
        return VRDIANAState(x=x, h_i=h_i, h=h, mu=mu, w=None, table=table, t=0)

    def step(self, state: VRDIANAState) -> VRDIANAState:
        t = state.t
        index = self.oracle.sample_index(self._seed(t, "oracle"))
        new = self.oracle.samples(state.x, index)
        if self.variant == "lsvrg":
            old = self.oracle.samples(state.w, index)
        else:
            rows = torch.arange(self.network.rows)
            old = state.table[rows, index]
        g = new - old + state.mu
        D_hat = self._up(g - state.h_i, self.compressor, t)
        m = self.network.mean(D_hat)
        x = prox(state.x - self.gamma * self._down(state.h + m, t), self.gamma, self.reg, self.lam)
        h_i = state.h_i + self.alpha * D_hat
        h = state.h + self.alpha * m
        if self.variant == "lsvrg":
            if shared_uniform(self._seed(t, "coin"), "vr_diana/coin") < self.ref_prob:
                w, mu = state.x, self.oracle.exact(state.x)
            else:
                w, mu = state.w, state.mu
            return VRDIANAState(x=x, h_i=h_i, h=h, mu=mu, w=w, table=None, t=t + 1)
        table = state.table.clone()
        table[rows, index] = new
        mu = state.mu + (new - old) / self.m_local.to(new.dtype).unsqueeze(1)
        return VRDIANAState(x=x, h_i=h_i, h=h, mu=mu, w=None, table=table, t=t + 1)
