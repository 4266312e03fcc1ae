"""DIANA+: DIANA with smoothness-aware compression."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms.dcgd_plus import SmoothnessSetup, check_regime
from commpress.algorithms.diana import DIANA, DIANAState
from commpress.algorithms.registry import register
from commpress.errors import ConfigError
from commpress.theory.smoothness import diana_plus_alpha


@register("diana_plus")
class DIANAPlus(DIANA):
    r"""DIANA+ (Safaryan, Hanzely, Richtárik, *Smoothness matrices beat smoothness constants*, NeurIPS 2021).

    DIANA (Mishchenko et al. 2019) with the smoothness-aware compressors of
    :class:`~commpress.algorithms.dcgd_plus.DCGDPlus`:

    .. math::
        \hat\Delta_i^k=\mathcal C_i(\nabla f_i(x^k)-h_i^k),\quad h_i^{k+1}=h_i^k+\alpha\hat\Delta_i^k,\quad
        x^{k+1}=x^k-\gamma\Big(h^k+\tfrac1n\textstyle\sum_i\hat\Delta_i^k\Big),\quad h^{k+1}=h^k+\tfrac\alpha n\textstyle\sum_i\hat\Delta_i^k.

    ``compressor=None``: :math:`\mathcal C_i` is the sparsifier with probabilities from :math:`\mathbf L_i`
    (``sampling``, ``tau``). ``compressor=`` given (SAQ, Wang, Safaryan, Richtárik 2022):
    :math:`\mathcal C_i(v)=\mathbf L_i^{1/2}\mathcal Q(\mathbf L_i^{\dagger1/2}v)`; then
    :math:`h_i=\mathbf L_i^{1/2}\tilde h_i` with the shift :math:`\tilde h_i` learned in the transformed space,
    :math:`\tilde h_i\leftarrow\tilde h_i+\alpha\mathcal Q(y_i-\tilde h_i)`, :math:`y_i=\mathbf L_i^{\dagger1/2}\nabla f_i(x^k)`
    (the same iterates whenever the gradients lie in :math:`\mathrm{range}(\mathbf L_i)`).

    Parameters (``None``: theory, [derived by analogy with DIANA; the paper's constants are not recovered]):
    :math:`\alpha=\frac1{\omega+1}` (:math:`\omega`: the sparsifier's :math:`\max_{ij}(1/p_{ij}-1)`, or the inner
    compressor's for SAQ); strongly convex :math:`\gamma=\frac1{L_{\max}+6\nu_{\max}/n}`; nonconvex: DIANA's
    stepsize with that :math:`\omega`.

    Args:
        compressor, tau, ratio, sampling, levels: as :class:`~commpress.algorithms.dcgd_plus.DCGDPlus`.
        alpha, beta, h0, reg, lam, batch_size, noise: as :class:`~commpress.algorithms.diana.DIANA`.
        regime: ``"strongly_convex"`` (default when μ > 0) or ``"nonconvex"``.

    References:
        Safaryan, Hanzely, Richtárik, NeurIPS 2021 (arXiv 2102.07245); Wang, Safaryan, Richtárik,
        NeurIPS 2022 (arXiv 2106.03524); Mishchenko et al., 2019 (DIANA).
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
        tau: float | None = None,
        ratio: float | None = None,
        sampling: str = "trace",
        levels: int = 1,
        alpha: float | None = None,
        beta: float = 0.0,
        h0: str = "zero",
        reg: str | None = None,
        lam: float = 0.0,
        batch_size: int | None = None,
        noise: float = 0.0,
        regime: str | None = None,
    ) -> None:
        owner = type(self).__name__
        regime = check_regime(regime, problem, owner)
        self.setup = SmoothnessSetup(owner, problem, compressor, tau=tau, ratio=ratio, sampling=sampling, levels=levels)
        given = alpha is not None
        if alpha is None:
            if not math.isfinite(self.setup.omega):
                raise ConfigError(
                    f"{owner}: the compressor {self.setup.compressor!r} states no finite omega, so the default "
                    "alpha = 1/(omega+1) is unknown; pass alpha= in (0, 1]."
                )
            alpha = diana_plus_alpha(self.setup.omega)
        self._regime_plus = regime
        super().__init__(problem, network, self.setup.compressor, gamma=gamma, seed=seed,
                         downlink_compressor=downlink_compressor, alpha=alpha, beta=beta, h0=h0, reg=reg, lam=lam,
                         batch_size=batch_size, noise=noise, regime="strongly_convex" if regime == "strongly_convex" else "nonconvex")
        self.alpha_source = "given" if given else "1/(omega+1)"

    def _theory_params(self) -> dict[str, Any]:
        return {"nu_max": float(self.setup.nu.max()), "regime": self._regime_plus, "omega": self.setup.omega,
                "alpha": self.alpha}

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), **self.setup.params()}

    def init(self, x0: torch.Tensor | None = None) -> DIANAState:
        state = super().init(x0)
        self.setup.charge_setup(self)
        return state
