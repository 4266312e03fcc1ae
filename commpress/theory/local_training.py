r"""Local training: ProxSkip / Scaffnew, GradSkip, CompressedScaffnew, TAMUNA: formulas and default parameters.

The methods run on the lifted problem :math:`F(x_1,\dots,x_n)=\sum_i f_i(x_i)` with the consensus
constraint as the proximable term, so the smoothness constant of the local steps is
:math:`L_{\max}=\max_i L_i` and the strong-convexity constant is that of every :math:`f_i`
(``mu``; the library defaults to the problem's μ of f, valid when every :math:`f_i` is μ-strongly
convex with this μ, e.g. the same ℓ2 term on every client: pass ``mu=min_i mu_i`` otherwise).

- ProxSkip / Scaffnew (Mishchenko, Malinovsky, Stich, Richtárik, ICML 2022, Thm 3.x **[recalled,
  confident]**): :math:`0<\gamma\le 1/L`, :math:`0<p\le1`; the Lyapunov function
  :math:`\Psi_t=\|x_t-x^*\|^2+\frac{\gamma^2}{p^2}\|h_t-h^*\|^2` contracts by :math:`1-\zeta`,
  :math:`\zeta=\min\{\gamma\mu,p^2\}`; :math:`p=\sqrt{\gamma\mu}` balances the two terms
  (:math:`=1/\sqrt\kappa` at :math:`\gamma=1/L`): :math:`O(\kappa\log\frac1\varepsilon)` iterations,
  :math:`O(\sqrt\kappa\log\frac1\varepsilon)` communications.
- GradSkip (Maranjyan, Safaryan, Richtárik 2022, Thm **[recalled]**): :math:`\gamma=1/L_{\max}`,
  :math:`p=1/\sqrt{\kappa_{\max}}`, :math:`q_i=\frac{1-1/\kappa_i}{1-1/\kappa_{\max}}`, rate
  :math:`\min\{\gamma\mu,1-q_{\max}(1-p^2)\}`. The paper's exact condition on :math:`q_i` was not
  recovered; the :math:`q_i` above is the library's labelled default.
- CompressedScaffnew / TAMUNA (Condat, Agarský, (Malinovsky,) Richtárik 2022-23 **[recalled]**;
  η range from the public Flower baseline **[exact]**): :math:`0<\gamma<2/L`, default :math:`1/L`;
  :math:`\eta=p\frac{c(s-1)}{s(c-1)}`, :math:`p/2\le\eta\le` that value; :math:`s=2`. The papers'
  :math:`p` was not recovered. The library balances the two contraction terms as ProxSkip does: a
  communication moves each control variate by :math:`\eta` on a fraction :math:`s/c` of its coordinates,
  :math:`p\eta s/c=p^2\frac{s-1}{c-1}` per iteration against :math:`\gamma\mu`, hence
  :math:`p=\sqrt{\gamma\mu\frac{c-1}{s-1}}` (clipped to 1; Scaffnew's value when :math:`s=c`)
  **[choice, derived]**: :math:`O(\sqrt{\kappa c/(s-1)})` rounds, the :math:`\sqrt{n\kappa}` term of the
  recalled CompressedScaffnew complexity for s = 2.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError
from commpress.theory._validate import pos, prob

__all__ = [
    "proxskip_stepsize", "proxskip_p", "proxskip_rate", "gradskip_q", "gradskip_rate",
    "expected_gradients_per_round", "tamuna_eta", "tamuna_eta_range", "tamuna_p",
]


def proxskip_stepsize(L: float) -> float:
    """ProxSkip's γ = 1/L (any γ in (0, 1/L] is covered by the theorem)."""
    return 1.0 / pos("L", L, "proxskip_stepsize")


def proxskip_p(gamma: float, mu: float) -> float:
    r""":math:`p=\sqrt{\gamma\mu}` (clipped to 1): balances :math:`\gamma\mu` and :math:`p^2` in the rate."""
    g = pos("gamma", gamma, "proxskip_p")
    m = float(mu)
    if not (m > 0 and math.isfinite(m)):
        raise ConfigError(
            f"proxskip_p needs strong convexity mu > 0 (p = sqrt(gamma*mu)); got mu={mu!r}. "
            "Pass p=<probability in (0, 1]> explicitly on a problem that is not strongly convex."
        )
    return min(1.0, math.sqrt(g * m))


def proxskip_rate(gamma: float, mu: float, p: float) -> float:
    r""":math:`\zeta=\min\{\gamma\mu,p^2\}`: :math:`\mathbb E\Psi_T\le(1-\zeta)^T\Psi_0`."""
    return min(pos("gamma", gamma, "proxskip_rate") * max(float(mu), 0.0), prob("p", p, "proxskip_rate") ** 2)


def gradskip_q(L_i: Any, mu: float) -> torch.Tensor:
    r"""GradSkip's :math:`q_i=\frac{1-1/\kappa_i}{1-1/\kappa_{\max}}`, :math:`\kappa_i=L_i/\mu` **[recalled]**.

    All ones when every :math:`\kappa_i` equals :math:`\kappa_{\max}` (then GradSkip is Scaffnew);
    :math:`q_i=0` when :math:`\kappa_i=1` (that client never takes a second local step).
    """
    m = float(mu)
    if not (m > 0 and math.isfinite(m)):
        raise ConfigError(
            f"gradskip_q needs strong convexity mu > 0 (kappa_i = L_i/mu); got mu={mu!r}. "
            "Pass q=<probabilities in [0, 1]> explicitly."
        )
    L = torch.as_tensor(L_i, dtype=torch.float64).reshape(-1)
    kappa = (L / m).clamp(min=1.0)
    k_max = float(kappa.max())
    if k_max <= 1.0 + 1e-12:
        return torch.ones_like(kappa)
    return ((1.0 - 1.0 / kappa) / (1.0 - 1.0 / k_max)).clamp(0.0, 1.0)


def gradskip_rate(gamma: float, mu: float, p: float, q_max: float) -> float:
    r""":math:`\min\{\gamma\mu,1-q_{\max}(1-p^2)\}` **[recalled]**."""
    p = prob("p", p, "gradskip_rate")
    return min(pos("gamma", gamma, "gradskip_rate") * max(float(mu), 0.0), 1.0 - float(q_max) * (1.0 - p * p))


def expected_gradients_per_round(p: float, q: Any) -> torch.Tensor:
    r"""Expected local gradient computations of a client per communication round, :math:`\frac1{1-q(1-p)}`.

    After each computation the round goes on with probability 1-p and the client moves again with
    probability q (GradSkip's private coin); ProxSkip is q = 1 (:math:`1/p`).
    """
    p = prob("p", p, "expected_gradients_per_round")
    q_t = torch.as_tensor(q, dtype=torch.float64)
    return 1.0 / (1.0 - q_t * (1.0 - p))


def tamuna_p(gamma: float, mu: float, c: int, s: int) -> float:
    r"""TAMUNA's default :math:`p=\sqrt{\gamma\mu\frac{c-1}{s-1}}` (clipped to 1) **[choice, derived]**.

    See the module docstring for the derivation."""
    tamuna_eta_range(0.5, c, s)  # validates 2 <= s <= c
    return min(1.0, proxskip_p(gamma, mu) * math.sqrt((int(c) - 1) / (int(s) - 1)))


def tamuna_eta_range(p: float, c: int, s: int) -> tuple[float, float]:
    r"""η range of TAMUNA / CompressedScaffnew: :math:`[\frac p2,\ p\frac{c(s-1)}{s(c-1)}]` (Flower baseline README)."""
    p = prob("p", p, "tamuna_eta_range")
    c, s = int(c), int(s)
    if not 2 <= s <= c:
        raise ConfigError(f"tamuna needs 2 <= s <= c; got s={s}, c={c}. Use s=2.")
    return p / 2.0, p * c * (s - 1) / (s * (c - 1))


def tamuna_eta(p: float, c: int, s: int) -> float:
    """The recommended (upper) end of :func:`tamuna_eta_range`."""
    return tamuna_eta_range(p, c, s)[1]


# ---------------------------------------------------------------------------- builders
def _mu(c: Any) -> float:
    mu = c.get("mu")
    if mu is None:
        mu = c.sm.mu
    return float(mu)


def _L(c: Any) -> float:
    return float(c.get("L", c.sm.L_max))


def _p(c: Any, gamma: float, mu: float, factor: float = 1.0) -> tuple[float, str]:
    if c.get("p") is not None:
        return prob("p", c.get("p"), c.name), "given"
    if not mu > 0:
        raise ConfigError(
            f"{c.name} needs strong convexity mu > 0 for its communication probability p = sqrt(gamma*mu); "
            f"the problem states mu={mu}. Pass p=<probability in (0, 1]> (and a tuned gamma=) to run it anyway."
        )
    if factor == 1.0:
        return proxskip_p(gamma, mu), "sqrt(gamma*mu)"
    return min(1.0, proxskip_p(gamma, mu) * math.sqrt(factor)), "sqrt(gamma*mu*(c-1)/(s-1))"


def _proxskip(c: Any) -> tuple[dict, dict]:
    L = _L(c)
    gamma = proxskip_stepsize(L)
    mu = _mu(c)
    p, rule = _p(c, gamma, mu)
    return {"gamma": gamma, "p": p}, {
        "L_max": L, "mu": mu, "p_rule": rule, "rate": proxskip_rate(gamma, mu, p),
        "source": "ProxSkip (Mishchenko et al., ICML 2022) Thm 3.x: gamma = 1/L_max, p = sqrt(gamma*mu) "
                  "[recalled, confident]"}


def _gradskip(c: Any) -> tuple[dict, dict]:
    L = _L(c)
    gamma = proxskip_stepsize(L)
    mu = _mu(c)
    p, rule = _p(c, gamma, mu)
    if c.get("q") is not None:
        q = torch.as_tensor(c.get("q"), dtype=torch.float64).reshape(-1)
        q = q.expand(c.n).clone() if q.numel() == 1 else q
        q_rule = "given"
    else:
        if not mu > 0:
            raise ConfigError(f"{c.name} needs mu > 0 for q_i = (1-1/kappa_i)/(1-1/kappa_max); pass q=... explicitly.")
        q, q_rule = gradskip_q(c.sm.L_i, mu), "(1-1/kappa_i)/(1-1/kappa_max) [recalled]"
    return {"gamma": gamma, "p": p, "q": [float(v) for v in q]}, {
        "L_max": L, "mu": mu, "p_rule": rule, "q_rule": q_rule,
        "rate": gradskip_rate(gamma, mu, p, float(q.max())),
        "source": "GradSkip (Maranjyan, Safaryan, Richtarik 2022) Thm [recalled]; exact q_i condition not recovered"}


def _tamuna(c: Any) -> tuple[dict, dict]:
    L = _L(c)
    gamma = proxskip_stepsize(L)
    mu = _mu(c)
    cohort = int(c.get("c", c.n))
    s = int(c.get("s", 2))
    tamuna_eta_range(0.5, cohort, s)  # validates 2 <= s <= c
    p, rule = _p(c, gamma, mu, (cohort - 1) / (s - 1))
    eta = float(c.get("eta")) if c.get("eta") is not None else tamuna_eta(p, cohort, s)
    return {"gamma": gamma, "p": p, "eta": eta, "c": cohort, "s": s}, {
        "L_max": L, "mu": mu, "p_rule": rule + (" [choice, derived; the papers' p not recovered]"
                                                if rule != "given" else ""),
        "eta_range": tamuna_eta_range(p, cohort, s),
        "source": "CompressedScaffnew / TAMUNA (Condat et al.) [recalled]: gamma = 1/L_max (< 2/L), "
                  "eta = p c(s-1)/(s(c-1)) (Flower baseline README [exact])"}


#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {
    "proxskip": (_proxskip, ("p", "mu", "L")),
    "scaffnew": (_proxskip, ("p", "mu", "L")),
    "gradskip": (_gradskip, ("p", "q", "mu", "L")),
    "tamuna": (_tamuna, ("p", "mu", "L", "eta", "c", "s")),
    "compressed_scaffnew": (_tamuna, ("p", "mu", "L", "eta", "c", "s")),
}
#: Other accepted spellings of the names above.
ALIASES: dict = {"prox_skip": "proxskip", "grad_skip": "gradskip", "compressedscaffnew": "compressed_scaffnew"}
