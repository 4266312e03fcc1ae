r"""Compressors at the variance-per-bit limit: the uncertainty principle, Kashin's representation, optimal and biased compressors: formulas and default parameters.

Sources: Safaryan, Shulgin, Richtárik, *Uncertainty principle for communication compression in
distributed and federated learning and the search for an optimal compressor* (Information and
Inference 2022, arXiv:2002.08958, "UP"); Lyubarskii, Vershynin, *Uncertainty principles and vector
quantization* (IEEE Trans. Inf. Theory 2010); Albasyoni, Safaryan, Condat, Richtárik, *Optimal
gradient compression for distributed and federated learning* (arXiv:2010.03246, "OGC");
Beznosikov, Horváth, Richtárik, Safaryan, *On biased compression for distributed learning* (JMLR
2023, arXiv:2002.12410, "BC").

The uncertainty principle (UP, as recalled; proof by a covering argument): a compressor whose
output always fits in b bits and which, for some fixed scale :math:`\lambda > 0`, satisfies
:math:`\mathbb E\|\lambda\mathcal C(x) - x\|^2 \le \varepsilon\|x\|^2` for all x obeys

.. math:: \varepsilon \cdot 4^{b/d} \ge 1 .

For :math:`\mathcal C \in \mathbb U(\omega)` (:math:`\lambda = 1/(\omega+1)`, :math:`\varepsilon = \omega/(\omega+1)`)
this reads :math:`\omega \ge 1/(4^{b/d} - 1)`; for :math:`\mathcal C \in \mathbb B(\delta)` (:math:`\lambda = 1`,
:math:`\varepsilon = 1-\delta`) :math:`\delta \le 1 - 4^{-b/d}`.

(BUILDERS and ALIASES are merged into ``commpress.theory.stepsizes``; this family adds no method.)
"""

from __future__ import annotations

import math

from commpress.compressors.biased import bc_classes, biased_rounding_delta
from commpress.errors import ConfigError

__all__ = [
    "up_epsilon",
    "up_omega",
    "up_delta",
    "up_product",
    "normalized_error",
    "bits_for_omega",
    "kashin_level",
    "kashin_omega_bound",
    "kashin_bits",
    "sparse_dithering_omega",
    "spherical_error",
    "biased_rounding_delta",
    "bc_classes",
    "b3_from_b2",
    "b1_from_b2",
    "b2_from_b1",
    "b3_to_b1_b2",
    "cgd_rate",
]

#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {}
#: Other accepted spellings of the names above.
ALIASES: dict = {}


def _bits_per_coordinate(bits: float, d: int) -> float:
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ConfigError(f"the uncertainty principle needs an integer dimension d >= 1; got d={d!r}.")
    if not (isinstance(bits, (int, float)) and math.isfinite(bits) and bits >= 0):
        raise ConfigError(f"the uncertainty principle needs a number of bits b >= 0; got b={bits!r}.")
    return float(bits) / d


def up_epsilon(bits: float, d: int) -> float:
    r"""The smallest normalised error :math:`\varepsilon = 4^{-b/d}` any compressor sending ``bits`` bits
    per vector of dimension d can have (UP, recalled form): :math:`\varepsilon 4^{b/d} \ge 1`.
    With b bits *per coordinate*, pass ``bits = b * d``."""
    return 4.0 ** (-_bits_per_coordinate(bits, d))


def up_omega(bits: float, d: int) -> float:
    r"""The smallest variance :math:`\omega = 1/(4^{b/d} - 1)` of an unbiased compressor sending b bits
    (UP with :math:`\varepsilon = \omega/(\omega+1)`); ``inf`` for b = 0."""
    per = _bits_per_coordinate(bits, d)
    return math.inf if per == 0 else 1.0 / math.expm1(per * math.log(4.0))


def up_delta(bits: float, d: int) -> float:
    r"""The largest contraction :math:`\delta = 1 - 4^{-b/d}` of a compressor in :math:`\mathbb B(\delta)` sending b bits."""
    return 1.0 - up_epsilon(bits, d)


def up_product(epsilon: float, bits: float, d: int) -> float:
    r""":math:`\varepsilon \cdot 4^{b/d}`, at least 1 for every compressor (UP); how far from the limit it is."""
    return float(epsilon) * 4.0 ** _bits_per_coordinate(bits, d)


def normalized_error(kind: str, omega: float | None = None, delta: float | None = None) -> float:
    r"""The UP error :math:`\varepsilon` of a class constant: :math:`\omega/(\omega+1)` (unbiased, best
    scale :math:`1/(\omega+1)`) or :math:`1-\delta` (contractive, scale 1)."""
    if kind in ("unbiased", "correlated") and omega is not None:
        return omega / (omega + 1.0)
    if kind == "contractive" and delta is not None:
        return 1.0 - delta
    raise ConfigError(f"normalized_error needs kind 'unbiased' with omega or 'contractive' with delta; got "
                      f"kind={kind!r}, omega={omega!r}, delta={delta!r}.")


def bits_for_omega(omega: float, d: int) -> float:
    r"""The fewest bits :math:`b = \frac d2\log_2(1 + 1/\omega)` an unbiased compressor with variance
    :math:`\omega` needs at dimension d (UP solved for b)."""
    if omega <= 0:
        return math.inf
    return 0.5 * d * math.log2(1.0 + 1.0 / omega)


def kashin_level(eta: float, delta: float) -> float:
    r"""Lyubarskii-Vershynin: a tight frame with the uncertainty principle :math:`(\eta, \delta)` gives
    every x coefficients with :math:`\|a\|_\infty \le \frac{K}{\sqrt N}\|x\|`, :math:`K = (1-\eta)^{-1}\delta^{-1/2}`."""
    if not (0 < eta < 1 and 0 < delta <= 1):
        raise ConfigError(f"kashin_level needs 0 < eta < 1 and 0 < delta <= 1; got eta={eta}, delta={delta}.")
    return 1.0 / ((1.0 - eta) * math.sqrt(delta))


def kashin_omega_bound(K: float, lam: float, levels: int | None = None, equal_norm: bool = True) -> float:
    r"""The variance of Kashin compression at level K and redundancy :math:`\lambda = N/d` [derived]:
    :math:`(K^2 - 1)/\lambda` (one bit, equal-norm frame), :math:`K^2/\lambda` (one bit, any tight
    frame), :math:`K^2/(4s^2\lambda)` with s levels per sign. Dimension free."""
    if levels is not None:
        return K * K / (4.0 * levels * levels * lam)
    return (K * K - (1.0 if equal_norm else 0.0)) / lam


def kashin_bits(d: int, N: int, levels: int | None = None) -> int:
    r"""Information bits of one Kashin message: :math:`N + 32` (one bit), :math:`N(1 + \lceil\log_2(s+1)\rceil) + 32`."""
    width = 1 if levels is None else 1 + max(1, math.ceil(math.log2(levels + 1)))
    return N * width + 32


def sparse_dithering_omega(d: int) -> float:
    r"""Worst-case variance :math:`\sqrt d - 1` of 1-level :math:`\ell_2` dithering (:math:`\omega(x) = \|x\|_1/\|x\| - 1`)."""
    return math.sqrt(d) - 1.0


def spherical_error(bits: float, m: int) -> float:
    r"""The average-case error :math:`4^{-b/m}` of the best b-bit code of a uniformly random direction in
    :math:`\mathbb R^m` (OGC's average-case bound, as :func:`up_epsilon`); the library's spherical
    compressor comes within a factor 2 of it for m = 8 and b = 8..16 (Monte-Carlo)."""
    return up_epsilon(bits, m)


def b1_from_b2(gamma: float, beta: float) -> tuple[float, float]:
    r""":math:`\mathbb B^2(\gamma, \beta) \subset \mathbb B^1(\gamma^2, \beta)` (Jensen)."""
    return gamma * gamma, beta


def b2_from_b1(alpha: float, beta: float) -> tuple[float, float]:
    r""":math:`\mathbb B^1(\alpha, \beta) \subset \mathbb B^2(\alpha/\beta, \beta)`."""
    return alpha / beta, beta


def b3_from_b2(gamma: float, beta: float) -> float:
    r""":math:`\mathcal C \in \mathbb B^2(\gamma, \beta) \Rightarrow \frac1\beta\mathcal C \in \mathbb B^3(\beta/\gamma)`
    (BC's :math:`\delta \ge 1`: :math:`\mathbb E\|\mathcal C(x)-x\|^2 \le (1 - 1/\delta)\|x\|^2`)."""
    return beta / gamma


def b3_to_b1_b2(delta_bc: float) -> tuple[tuple[float, float], tuple[float, float]]:
    r""":math:`\mathbb B^3(\delta) \subset \mathbb B^1(\frac1{4\delta^2}, 2) \cap \mathbb B^2(\frac1{2\delta}, 2)`."""
    return (1.0 / (4.0 * delta_bc**2), 2.0), (1.0 / (2.0 * delta_bc), 2.0)


def cgd_rate(cls: str, L: float, mu: float, *, alpha: float | None = None, beta: float | None = None,
             gamma: float | None = None, delta_bc: float | None = None) -> tuple[float, float]:
    r"""Stepsize and linear rate of compressed gradient descent :math:`x^{k+1} = x^k - \eta\mathcal C(\nabla f(x^k))`
    on an L-smooth, :math:`\mu`-strongly convex f (BC, descent-lemma proofs) [derived]:
    ``B1``: :math:`\eta = \frac1{\beta L}`, rate :math:`1 - \frac{\alpha\mu}{\beta^2L}`; ``B2``: :math:`\eta = \frac1{\beta L}`,
    :math:`1 - \frac{\gamma\mu}{\beta L}`; ``B3``: :math:`\eta = \frac1L`, :math:`1 - \frac\mu{\delta L}`.
    Returns (stepsize, rate): :math:`f(x^k) - f^* \le \text{rate}^k (f(x^0) - f^*)`."""
    if cls == "B1":
        return 1.0 / (beta * L), 1.0 - alpha * mu / (beta * beta * L)
    if cls == "B2":
        return 1.0 / (beta * L), 1.0 - gamma * mu / (beta * L)
    if cls == "B3":
        return 1.0 / L, 1.0 - mu / (delta_bc * L)
    raise ConfigError(f"cgd_rate needs cls in ('B1', 'B2', 'B3'); got {cls!r}.")
