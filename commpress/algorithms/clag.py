"""CLAG: compressed lazy aggregation, a three-point compressor."""

from __future__ import annotations

from typing import Any

from commpress.algorithms.registry import register
from commpress.algorithms.three_pc import ThreePC


@register("clag")
class CLAG(ThreePC):
    r"""CLAG, compressed lazy aggregation (Richtárik, Sokolov, Gasanov, Fatkhullin, Li, Gorbunov, 3PC, ICML 2022).

    EF21's compressed correction, sent only when the client's gradient moved:

    .. math::
        x^{t+1} = x^t-\gamma g^t,\qquad
        g_i^{t+1} = \begin{cases}g_i^t+\mathcal C(\nabla f_i(x^{t+1})-g_i^t) & \|\nabla f_i(x^{t+1})-g_i^t\|^2>\zeta\|\nabla f_i(x^{t+1})-\nabla f_i(x^t)\|^2\\
                    g_i^t & \text{otherwise (nothing sent, 0 bits)},\end{cases}\qquad
        g^{t+1}=\tfrac1n\textstyle\sum_i g_i^{t+1}.

    3PC constants :math:`A=\theta(\delta)=1-\sqrt{1-\delta}`, :math:`B=\max\{\beta(\delta),\zeta\}`,
    :math:`\beta=(1-\delta)/\theta`; stepsize (``gamma=None``) :math:`(L_-+L_{QM}\sqrt{B/A})^{-1}` (the
    authors' scripts). ``zeta=None``: ζ = β(δ) (library choice: EF21's stepsize is kept). ζ = 0 is
    EF21 iterate for iterate; the identity compressor gives LAG.

    Args:
        compressor: contractive compressor (e.g. Top-K; an unbiased one is rescaled by 1/(1+ω)).
        zeta: trigger constant ζ >= 0.
        g0: ``"grad"`` (dense :math:`\nabla f_i(x^0)`) or ``"zero"``.
        scale: ``"auto"``, None or a factor (as EF21).
        charge_skip_flag: charge 1 bit for a skipped message (default 0 bits).

    References:
        Richtárik, Sokolov, Gasanov, Fatkhullin, Li, Gorbunov, 3PC: Three point compressors for
        communication-efficient distributed training and a better theory for lazy aggregation, ICML 2022.
    """

    mechanism_default = "clag"

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, zeta: float | None = None, g0: str = "grad", scale: Any = "auto",
                 charge_skip_flag: bool = False) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         mechanism="clag", zeta=zeta, g0=g0, scale=scale, charge_skip_flag=charge_skip_flag)
