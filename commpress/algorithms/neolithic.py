"""NEOLITHIC: gradient accumulation plus FCC with error feedback, uni- or bidirectional."""

from __future__ import annotations

from typing import Any

import torch

from commpress import theory
from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import Algorithm, algorithm_state, check_int, contractive_scale
from commpress.compressors import make as make_compressor
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


@algorithm_state
class NEOLITHICState:
    x: torch.Tensor    # (d,)      model x^k
    v_i: torch.Tensor  # (rows, d) client errors v_i^k
    v: torch.Tensor    # (d,)      server error v^k (zero when unidirectional with an exact downlink)
    t: int             # outer iteration k


@register("neolithic")
class NEOLITHIC(Algorithm):
    r"""NEOLITHIC (Huang, Chen, Yin, Yuan, NeurIPS 2022; the talk's Algorithm), with FCC.

    Outer iteration k (R gradient queries and R messages per worker per direction):

    .. math::
        \hat g_i^k = \frac1R\sum_{r=0}^{R-1} O_i(x^k;\zeta_i^{(k,r)}),\quad
        \tilde g_i^k = \hat g_i^k + v_i^k,\quad
        \textstyle\sum_r c_i^{(k,r)} = \mathrm{FCC}(\tilde g_i^k, \mathcal C_i, R),\quad
        v_i^{k+1} = \tilde g_i^k - \sum_r c_i^{(k,r)},

        \tilde g^k = \frac1n\sum_i\sum_r c_i^{(k,r)} + v^k,\quad
        \textstyle\sum_r c^{(k,r)} = \mathrm{FCC}(\tilde g^k, \mathcal C_0, R),\quad
        v^{k+1} = \tilde g^k - \sum_r c^{(k,r)},\quad
        x^{k+1} = x^k - \gamma\sum_r c^{(k,r)}.

    FCC is the library's ``fcc`` compressor (R rounds, fresh randomness per round, the R payloads
    sent as one message per client whose bits are their sum). Bidirectional when
    ``downlink_compressor`` is given (:math:`\mathcal C_0`, FCC of the server's vector);
    unidirectional otherwise (:math:`\mathcal C_0 = I`: one dense float32 broadcast, whose
    rounding error is kept in v). FCC uses the contractive form :math:`\frac1{1+\omega}\mathcal C` of
    an unbiased compressor (``scale="auto"``; ``scale=None``: raw). With exact gradients the R
    queries coincide and one is computed.

    Defaults (labelled choices, the paper's are not recovered): :math:`R = \lceil\delta^{-1}\ln 4\rceil`
    (so :math:`(1-\delta)^R \le 1/4`); no closed-form stepsize (pass ``gamma``, tuned). Compare
    methods at equal gradient queries / messages T = K R.

    Args:
        compressor: contractive (or unbiased, rescaled).
        downlink_compressor: :math:`\mathcal C_0` (None: unidirectional).
        R: FCC rounds = gradient accumulation length.
        scale: ``"auto"`` (rescale unbiased compressors) or None (raw).
        batch_size, noise: stochastic oracle.

    References:
        Huang, Chen, Yin, Yuan, Lower bounds and nearly optimal algorithms in distributed learning
        with communication compression, NeurIPS 2022 (talk: Algorithm NEOLITHIC, FCC, Lemma 1, Thms 3-4).
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
        R: int | None = None,
        scale: Any = "auto",
        batch_size: int | None = None,
        noise: float = 0.0,
    ) -> None:
        self.bidirectional = downlink_compressor is not None
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        if scale not in ("auto", None):
            raise ConfigError(f"{owner} needs scale='auto' or None (FCC rescales unbiased compressors itself); got {scale!r}.")
        self.scale, self.delta = contractive_scale(self.compressor, self.n, self.d, scale, owner)
        if self.bidirectional:
            self.scale0, self.delta0 = contractive_scale(self.downlink_compressor, 1, self.d, scale, owner)
        else:
            self.scale0, self.delta0 = 1.0, 1.0
        if R is None:
            deltas = [dl for dl in (self.delta, self.delta0) if dl is not None]
            if len(deltas) < (2 if self.bidirectional else 1):
                raise ConfigError(
                    f"{owner}: the compressor states no contraction delta, so the default "
                    "R = ceil(ln(4)/delta) is unknown; pass R= (the talk's runs used 2 and 4)."
                )
            R = theory.neolithic_R(min(deltas))
            self.R_source = "theory.neolithic_R: ceil(ln4/delta)"
        else:
            self.R_source = "given"
        self.R = check_int("R", R, owner)
        scaling = scale == "auto"
        self.fcc_up = make_compressor("fcc", inner=self.compressor, rounds=self.R, unbiased_scaling=scaling)
        self.fcc_down = (make_compressor("fcc", inner=self.downlink_compressor, rounds=self.R, unbiased_scaling=scaling)
                         if self.bidirectional else self.downlink_compressor)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"delta": self.delta, "R": self.R}
        if self.oracle.noise > 0:
            out["sigma2"] = self.oracle.noise ** 2
        return out

    def _extra_params(self) -> dict[str, Any]:
        return {"R": self.R, "R_source": self.R_source, "bidirectional": self.bidirectional,
                "scale": self.scale, "delta": self.delta, "scale0": self.scale0, "delta0": self.delta0,
                **self.oracle.params()}

    def init(self, x0: torch.Tensor | None = None) -> NEOLITHICState:
        x = self._x0(x0)
        return NEOLITHICState(x=x, v_i=torch.zeros(self.network.rows, self.d, dtype=x.dtype, device=x.device),
                              v=torch.zeros_like(x), t=0)

    def step(self, state: NEOLITHICState) -> NEOLITHICState:
        t = state.t
        if self.oracle.stochastic:
            G = self.oracle(state.x, self._seed(t, "oracle", 0))
            for r in range(1, self.R):
                G = G + self.oracle(state.x, self._seed(t, "oracle", r))
            G = G / self.R
        else:
            G = self.oracle.exact(state.x)
        G = G + state.v_i
        S = self._up(G, self.fcc_up, t)
        g = self.network.mean(S) + state.v
        s = self._down(g, t, compressor=self.fcc_down)
        return NEOLITHICState(x=state.x - self.gamma * s, v_i=G - S, v=g - s, t=t + 1)
