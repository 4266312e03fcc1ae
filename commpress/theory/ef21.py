r"""EF21 and EF21-SGD: constants, stepsizes, rounds and bits.

Sources: Richtárik, Sokolov, Fatkhullin, *EF21*, NeurIPS 2021 (Thm 1 nonconvex, Thm 2 PL);
Fatkhullin, Sokolov, Gorbunov, Li, Richtárik 2021 (EF21-SGD, Sec. 4).
The contraction constant is δ here (α in the EF21 papers).
"""

from __future__ import annotations

import math
from typing import Any

from commpress.theory._validate import nonneg, pos, prob

__all__ = [
    "ef21_theta_beta",
    "ef21_stepsize",
    "ef21_stepsize_pl",
    "ef21_rounds",
    "ef21_communication",
    "ef21_sgd_complexity",
]


def ef21_theta_beta(delta: Any) -> tuple[float, float]:
    r""":math:`\theta=1-\sqrt{1-\delta}`, :math:`\beta=\frac{1-\delta}{1-\sqrt{1-\delta}}` (the optimum over
    :math:`s>0` of :math:`\theta=1-(1-\delta)(1+s)`, :math:`\beta=(1-\delta)(1+1/s)`); δ = 1 gives (1, 0).
    EF21 paper, Lemma 3 / Thm 1 **[exact]**."""
    delta = prob("delta", delta, "EF21")
    root = math.sqrt(1.0 - delta)
    theta = 1.0 - root
    return theta, (1.0 - delta) / theta


def ef21_stepsize(L_minus: Any, L_qm: Any, delta: Any) -> float:
    r"""EF21 Theorem 1 (nonconvex): :math:`\gamma=\big(L_-+L_{QM}\sqrt{\beta/\theta}\big)^{-1}`, then
    :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\frac{2\Delta^0}{\gamma T}+\frac{G^0}{\theta T}`,
    :math:`G^0=\frac1n\sum_i\|g_i^0-\nabla f_i(x^0)\|^2`. Note :math:`\sqrt{\beta/\theta}\le\frac2\delta-1`."""
    theta, beta = ef21_theta_beta(delta)
    return 1.0 / (pos("L_minus", L_minus, "EF21") + nonneg("L_qm", L_qm, "EF21") * math.sqrt(beta / theta))


def ef21_stepsize_pl(L_minus: Any, L_qm: Any, delta: Any, mu: Any) -> float:
    r"""EF21 Theorem 2 (PL with parameter μ):
    :math:`\gamma=\min\{(L_-+L_{QM}\sqrt{2\beta/\theta})^{-1},\ \theta/(2\mu)\}`; rate :math:`(1-\gamma\mu)^T`."""
    theta, beta = ef21_theta_beta(delta)
    g = 1.0 / (pos("L_minus", L_minus, "EF21") + nonneg("L_qm", L_qm, "EF21") * math.sqrt(2.0 * beta / theta))
    return min(g, theta / (2.0 * pos("mu", mu, "EF21 (PL)")))


def ef21_rounds(gamma: Any, delta: Any, delta0: Any, eps: Any, *, G0: Any = 0.0) -> int:
    r"""Rounds to :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\varepsilon^2`:
    :math:`T=\big\lceil(\frac{2\Delta^0}\gamma+\frac{G^0}\theta)/\varepsilon^2\big\rceil`
    (:math:`G^0=0` when :math:`g_i^0=\nabla f_i(x^0)`)."""
    theta, _ = ef21_theta_beta(delta)
    num = 2.0 * nonneg("delta0", delta0, "EF21") / pos("gamma", gamma, "EF21") + nonneg("G0", G0, "EF21") / theta
    return max(1, math.ceil(num / pos("eps", eps, "EF21") ** 2 * (1.0 - 1e-14)))


def ef21_communication(L_minus: Any, L_qm: Any, delta: Any, bits_per_round: Any, delta0: Any, eps: Any, *,
                       G0: Any = 0.0, init_bits: Any = 0.0) -> float:
    r"""Uplink bits per client: ``init_bits`` (e.g. :math:`32d` for :math:`g_i^0=\nabla f_i(x^0)`) plus rounds
    × payload of :math:`\mathcal C` (e.g. Top-K: :math:`K(32+\lceil\log_2d\rceil)`), at the Theorem-1 stepsize.
    Order: :math:`T=O(\Delta^0(L_-+L_{QM}/\delta)/\varepsilon^2)` (EF21, Thm 1, with
    :math:`\sqrt{\beta/\theta}\le2/\delta-1`)."""
    gamma = ef21_stepsize(L_minus, L_qm, delta)
    rounds = ef21_rounds(gamma, delta, delta0, eps, G0=G0)
    return nonneg("init_bits", init_bits, "EF21") + rounds * pos("bits_per_round", bits_per_round, "EF21")


def ef21_sgd_complexity(L_qm: Any, delta0: Any, delta: Any, eps: Any, sigma2: Any) -> dict[str, float]:
    r"""EF21-SGD under bounded variance (Fatkhullin et al. 2021, Sec. 4), constants dropped (O-forms):

    rounds :math:`\frac{L_{QM}\Delta^0}{\delta\varepsilon^2}`; stochastic gradients per node
    :math:`\frac{L_{QM}\Delta^0}{\delta\varepsilon^2}+\frac{L_{QM}\Delta^0\sigma^2}{\delta^3\varepsilon^4}`,
    target :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\varepsilon^2`, :math:`\sigma^2=\frac1n\sum\sigma_i^2`.
    """
    owner = "EF21-SGD"
    L, D0 = pos("L_qm", L_qm, owner), nonneg("delta0", delta0, owner)
    dl, e = prob("delta", delta, owner), pos("eps", eps, owner)
    rounds = L * D0 / (dl * e**2)
    return {"rounds": rounds, "gradients": rounds + L * D0 * nonneg("sigma2", sigma2, owner) / (dl**3 * e**4)}
