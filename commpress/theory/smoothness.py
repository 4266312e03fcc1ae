r"""Smoothness matrices: DCGD+, DIANA+, smoothness-aware quantization: formulas and default parameters.

Sources: Safaryan, Hanzely, Richtárik, *Smoothness matrices beat smoothness constants: better
communication compression techniques for distributed optimization*, NeurIPS 2021 (DCGD+, DIANA+;
arXiv 2102.07245); Wang, Safaryan, Richtárik, *Theoretically better and numerically faster distributed
optimization with smoothness-aware quantization techniques*, NeurIPS 2022 (arXiv 2106.03524).
Only the papers' abstracts could be read: every constant below is **derived** here (argument in the
docstring) and the sampling rules are library defaults, not the papers' "optimal probabilities".

Client i is :math:`\mathbf L_i`-smooth (``problem.smoothness_matrices()``). Sparsification with
independent keep probabilities :math:`p_{ij}` (:math:`\mathcal C_i(v)=\sum_j\frac{\xi_{ij}}{p_{ij}}v_je_j`)
has, for any PSD :math:`\mathbf M`, :math:`\mathbb E\|\mathcal C_i(v)-v\|_{\mathbf M}^2=\sum_j(1/p_{ij}-1)\mathbf M_{jj}v_j^2`,
and on gradient differences :math:`v=\mathbf L_i^{1/2}y` the constant replacing :math:`\omega L_{\max}` is

.. math:: \nu_i(p)=\lambda_{\max}\big(\mathbf L_i^{1/2}\,\mathrm{Diag}(1/p_{ij}-1)\,\mathbf L_i^{1/2}\big).

Smoothness-aware compression of any :math:`\mathcal Q` (SAQ): send :math:`\mathcal Q(\mathbf L_i^{\dagger1/2}v)`,
decode :math:`\mathbf L_i^{1/2}\mathcal Q(\cdot)`; its constant is
:math:`\nu_i=\sup_y\mathbb E\|\mathbf L_i^{1/2}(\mathcal Q(y)-y)\|^2/\|y\|^2`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError
from commpress.compressors._smoothness_math import (  # noqa: F401 - re-exported
    SAMPLING_RULES,
    block_quantization_nu,
    equalising_probabilities,
    exact_probabilities,
    sampling_probabilities,
    sparsification_nu,
    sparsification_omega,
    trace_probabilities,
    transformed_sparsification_nu,
    uniform_probabilities,
    varying_steps,
    varying_steps_nu,
    _check_tau,
    _diag,
)
from commpress.theory._validate import check_choice, nonneg, pos

__all__ = [
    "SAMPLING_RULES",
    "uniform_probabilities",
    "trace_probabilities",
    "equalising_probabilities",
    "exact_probabilities",
    "sampling_probabilities",
    "sparsification_nu",
    "transformed_sparsification_nu",
    "sparsification_omega",
    "block_quantization_nu",
    "varying_steps",
    "varying_steps_nu",
    "dcgd_plus_stepsize",
    "diana_plus_stepsize",
    "diana_plus_alpha",
    "BUILDERS",
]

def dcgd_plus_stepsize(L: Any, nu_max: Any, n: int) -> float:
    r"""DCGD+ [derived]: :math:`\gamma=\frac1{2(L+2\nu_{\max}/n)}`.

    DCGD+ is SGD with :math:`\mathbb E\|g\|^2\le2(L+2\nu_{\max}/n)D_f(x,x^*)+\sigma^2_*`, so this stepsize gives
    :math:`(1-\gamma\mu)^k` to a neighbourhood (strongly convex, convex :math:`f_i`). The paper's own
    constant is not recovered.
    """
    L, nu = pos("L", L, "DCGD+"), nonneg("nu_max", nu_max, "DCGD+")
    return 1.0 / (2.0 * (L + 2.0 * nu / int(n)))


def diana_plus_stepsize(L_max: Any, nu_max: Any, n: int) -> float:
    r"""DIANA+ [derived by analogy, constants unverified]: :math:`\gamma=\frac1{L_{\max}+6\nu_{\max}/n}`.

    DIANA's strongly convex :math:`\frac1{(1+6\omega/n)L_{\max}}` with :math:`\omega L_{\max}` replaced by
    :math:`\nu_{\max}` (equal for uniform sampling on :math:`\mathbf L_i=L_{\max}I`; :math:`\nu_i\le\omega_iL_i`
    always). Complexity :math:`O(L/\mu+\nu_{\max}/(n\mu)+\omega)\log\frac1\varepsilon`.
    """
    L, nu = pos("L_max", L_max, "DIANA+"), nonneg("nu_max", nu_max, "DIANA+")
    return 1.0 / (L + 6.0 * nu / int(n))


def diana_plus_alpha(omega: Any) -> float:
    r"""Shift stepsize :math:`\alpha=\frac1{\omega+1}`, :math:`\omega=\max_i\omega_i` of the compressor acting on
    the shifts (for SAQ: the inner compressor, the shifts live in the transformed space)."""
    return 1.0 / (nonneg("omega", omega, "DIANA+") + 1.0)


# ---------------------------------------------------------------------------- builders
def _nu(c) -> tuple[float, str]:
    """``nu_max`` given, else the bound :math:`\\nu_i\\le\\omega_iL_i` (the DCGD/DIANA constant)."""
    if c.get("nu_max") is None:
        from commpress.theory.stepsizes import _omega

        return _omega(c) * float(c.sm.L_max), "omega * L_max (bound; the algorithms pass the sharp nu_max)"
    nu = float(c.get("nu_max"))
    if math.isinf(nu):
        raise ConfigError(
            f"{c.name}: the compressor states no variance constant (omega), so its smoothness-aware constant "
            "nu is unknown; pass nu_max=..."
        )
    return nonneg("nu_max", nu, c.name), "given"


def _dcgd_plus(c):
    from commpress.theory.stepsizes import _dcgd

    regime = check_choice("regime", c.get("regime", "strongly_convex"), c.name, ("strongly_convex", "nonconvex"))
    if regime == "nonconvex":
        out, info = _dcgd(c)
        info = {**info, "source": "nonconvex: DCGD's ABC stepsize with the sparsifier's omega (conservative) [derived]"}
        return out, info
    nu, how = _nu(c)
    L = c.sm.L_minus
    return {"gamma": dcgd_plus_stepsize(L, nu, c.n)}, {
        "L_minus": L, "nu_max": nu, "nu_max_from": how, "regime": regime,
        "source": "DCGD+ (Safaryan, Hanzely, Richtarik 2021): 1/(2(L+2 nu_max/n)) [derived; paper's constant not recovered]"}


def _diana_plus(c):
    from commpress.theory import diana
    from commpress.theory.stepsizes import _omega

    regime = check_choice("regime", c.get("regime", "strongly_convex"), c.name, ("strongly_convex", "nonconvex"))
    w = float(c.get("omega")) if c.get("omega") is not None else _omega(c)
    if math.isinf(w):
        raise ConfigError(f"{c.name}: the compressor states no finite omega; pass omega=... (or gamma= and alpha=).")
    w = nonneg("omega", w, c.name)
    alpha = c.get("alpha", diana_plus_alpha(w))
    L_max = c.sm.L_max
    if regime == "nonconvex":
        g = diana.diana_stepsize(L_max, w, c.n, regime="nonconvex")
        return {"gamma": g, "alpha": alpha}, {"L_max": L_max, "omega": w, "regime": regime,
                                              "source": "nonconvex: DIANA's stepsize with the compressor's omega [derived]"}
    nu, how = _nu(c)
    return {"gamma": diana_plus_stepsize(L_max, nu, c.n), "alpha": alpha}, {
        "L_max": L_max, "nu_max": nu, "nu_max_from": how, "omega": w, "regime": regime,
        "source": "DIANA+ (Safaryan, Hanzely, Richtarik 2021): 1/(L_max+6 nu_max/n), alpha=1/(omega+1) "
                  "[derived by analogy with DIANA; paper's constants not recovered]"}


#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {
    "dcgd_plus": (_dcgd_plus, ("nu_max", "regime", "K", "A", "B", "convention", "identical_clients")),
    "diana_plus": (_diana_plus, ("nu_max", "regime", "omega", "alpha")),
}
#: Other accepted spellings of the names above.
ALIASES: dict = {"dcgd+": "dcgd_plus", "diana+": "diana_plus"}
