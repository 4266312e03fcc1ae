"""LAG: lazily aggregated gradients, as a three-point compressor."""

from __future__ import annotations

from typing import Any

from commpress.algorithms.registry import register
from commpress.algorithms.three_pc import ThreePC


@register("lag")
class LAG(ThreePC):
    r"""LAG, lazily aggregated gradients, in the 3PC form (Richtárik et al., 3PC, ICML 2022, LAG as a 3PC;
    after Chen, Giannakis, Sun, Yin, LAG, NeurIPS 2018).

    Client i sends its new gradient only when it moved far from the one the server holds:

    .. math::
        x^{t+1} = x^t-\gamma g^t,\qquad
        g_i^{t+1} = \begin{cases}\nabla f_i(x^{t+1}) & \|\nabla f_i(x^{t+1})-g_i^t\|^2>\zeta\|\nabla f_i(x^{t+1})-\nabla f_i(x^t)\|^2\\
                    g_i^t & \text{otherwise (nothing sent, 0 bits)},\end{cases}\qquad
        g^{t+1}=\tfrac1n\textstyle\sum_i g_i^{t+1}.

    A triggered client sends :math:`\nabla f_i(x^{t+1})` dense (32 d bits; the server keeps the rows
    :math:`g_i` and replaces the client's). 3PC constants :math:`A=1`, :math:`B=\zeta`; stepsize
    (``gamma=None``) :math:`(L_-+L_{QM}\sqrt\zeta)^{-1}`; ``zeta=None``: ζ = 1 (library choice).
    ζ = 0 is GD iterate for iterate.

    Args:
        zeta: trigger constant ζ >= 0.
        g0: ``"grad"`` (dense :math:`\nabla f_i(x^0)`) or ``"zero"``.
        charge_skip_flag: charge 1 bit for a skipped message (default 0 bits).

    References:
        Richtárik, Sokolov, Gasanov, Fatkhullin, Li, Gorbunov, 3PC, ICML 2022 (LAG as a 3PC, its
        theorem); Chen, Giannakis, Sun, Yin, LAG: Lazily aggregated gradient for communication-efficient
        distributed learning, NeurIPS 2018.
    """

    uses_compressor = False
    mechanism_default = "lag"

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, zeta: float | None = None, g0: str = "grad",
                 charge_skip_flag: bool = False) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         mechanism="lag", zeta=zeta, g0=g0, charge_skip_flag=charge_skip_flag)
