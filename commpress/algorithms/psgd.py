"""P-SGD: parallel minibatch SGD with an uncompressed wire."""

from __future__ import annotations

from typing import Any

from commpress.algorithms.dcgd import DCGD
from commpress.algorithms.registry import register


@register("psgd")
class PSGD(DCGD):
    r"""Parallel SGD (minibatch SGD over n workers; "PSGD" of Huang et al., NEOLITHIC, NeurIPS 2022).

    .. math:: x^{k+1} = x^k - \frac\gamma n\sum_{i=1}^n O_i(x^k;\zeta_i^k)

    Dense float32 uplink (32 d bits). The oracle is ``batch_size`` samples per client and/or
    additive noise of std ``noise`` (exact gradients when neither is given: then this is GD).
    Default stepsize :math:`\min\{1/L_-, \sqrt{2n\Delta^0/(L_- K\sigma^2)}\}` with K = ``horizon``.

    References:
        Standard minibatch SGD; rate as tabulated in Huang et al. 2022 (NEOLITHIC talk).
    """

    uses_compressor = False

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, batch_size: int | None = None, noise: float = 0.0,
                 horizon: int | None = None) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         batch_size=batch_size, noise=noise, horizon=horizon)

    def _theory_params(self):
        out = super()._theory_params()
        if self.oracle.noise > 0:
            out["sigma2"] = self.oracle.noise ** 2
        return out
