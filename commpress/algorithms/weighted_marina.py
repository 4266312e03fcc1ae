"""Weighted MARINA: MARINA whose compressed rounds use one combinatorial estimator (ISCC)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms.base import resolve_compressor
from commpress.algorithms.marina import MARINA
from commpress.algorithms.registry import register
from commpress.compressors import make as make_compressor
from commpress.errors import ConfigError


@register("weighted_marina")
class WeightedMARINA(MARINA):
    r"""Weighted MARINA with ISCC (Panferov et al. 2024, Algorithm 4, Theorems 2-3).

    As MARINA, but the compressed branch is one joint estimator of the mean,

    .. math::
        g^{k+1} = g^k + \mathcal S\big(\nabla f_1(x^{k+1}) - \nabla f_1(x^k), \dots,
                                        \nabla f_n(x^{k+1}) - \nabla f_n(x^k)\big),\qquad
        \mathcal S(a) = \frac1\tau\sum_{t=1}^\tau\frac{\mathcal C^{(t)}(a_{\chi_t})}{n\,q_{\chi_t}},

    the importance-sampling combinatorial compressor ISCC (the ``iscc`` compressor): τ clients
    drawn i.i.d. with :math:`P(\chi = i) = q_i` from the round's shared seed, each drawn client sending
    an independent compression with the inner compressor (the server scales, 0 bits); clients not
    drawn send nothing. Only :math:`\mathbb E\,\mathcal S = \bar a` is needed.

    Weights ``weights="smoothness"`` (default, Theorem 3): :math:`q_i = L_i/\sum_j L_j`;
    ``"uniform"``; or n positive numbers. Stepsize (``gamma=None``):
    :math:`(L_- + \sqrt{\frac{1-p}{p}((A-B)L_{+,w}^2 + B L_{\pm,w}^2)})^{-1}` with the weighted AB
    constants :math:`((\omega+1)/\tau, 1/\tau, q)` (Lemma 4), from ``theory``; ``p=None``: the
    communication-optimal p.

    Args:
        compressor: the inner unbiased compressor of ISCC (default ``"drive"``), or an ``iscc``
            compressor instance (then ``tau``/``weights`` must be left at their defaults).
        tau: client draws per compressed round.
        weights: ``"smoothness"``, ``"uniform"`` or a list of n positive numbers.
        p: probability of a dense round.

    References:
        Panferov, Demidovich, Rammal, Richtárik, Correlated quantization for faster nonconvex
        distributed optimization, 2024, Alg. 4, Thm 2-3, Lemma 4, Cor. 4; Tyurin et al. 2022.
    """

    default_compressor = "drive"

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        p: float | None = None,
        tau: int = 1,
        weights: Any = "smoothness",
    ) -> None:
        self._tau, self._weights_arg = tau, weights
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed,
                         downlink_compressor=downlink_compressor, p=p, convention=None)

    def _setup(self) -> None:
        owner = type(self).__name__
        given = self.compressor
        if given.name == "iscc":
            if self._tau != 1 or not (isinstance(self._weights_arg, str) and self._weights_arg == "smoothness"):
                raise ConfigError(f"{owner} got an iscc compressor and tau/weights; set them on the compressor.")
            self.iscc = given
        else:
            weights = self._weights_arg
            if isinstance(weights, str):
                if weights == "smoothness":
                    weights = torch.as_tensor(self.problem.smoothness().L_i, dtype=torch.float64).tolist()
                elif weights == "uniform":
                    weights = None
                else:
                    raise ConfigError(f"{owner} needs weights='smoothness', 'uniform' or n positive numbers; got {weights!r}.")
            self.iscc = make_compressor("iscc", inner=resolve_compressor(given, "compressor"), tau=self._tau,
                                        weights=weights)
        self.inner = self.compressor
        self.compressor = self.iscc

    def _theory_params(self) -> dict[str, Any]:
        out = super()._theory_params()
        th = self._theory_compressor()
        if th is not None:
            ex = th.extras
            if ex.get("WAB_A") is not None:
                out.update(A=ex["WAB_A"], B=ex.get("WAB_B", 0.0))
            if ex.get("weights") is not None:
                out["weights"] = ex["weights"]
        return out

    def _extra_params(self) -> dict[str, Any]:
        out = super()._extra_params()
        out.update(iscc=self.iscc.params())
        return out
