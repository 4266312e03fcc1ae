r"""Bidirectional compression: EF21-P (+ DIANA, + MARINA), MARINA-P, EF21-BC: formulas and default parameters.

Sources: Gruntkowska, Tyurin, Richtárik, *EF21-P and Friends: Improved Theoretical Communication
Complexity for Distributed Optimization with Bidirectional Compression*, ICML 2023 (arXiv 2209.15218);
Gruntkowska, Tyurin, Richtárik, *Improving the Worst-Case Bidirectional Communication Complexity for
Nonconvex Distributed Optimization under Function Similarity* (MARINA-P, arXiv 2402.06412);
Fatkhullin, Sokolov, Gorbunov, Li, Richtárik, *EF21 with Bells & Whistles* (EF21-BC, arXiv 2110.03294).

The contraction constant of the downlink compressor :math:`\mathcal C^P \in \mathbb B(\alpha_P)` is called
``delta_p`` here (the library's δ; the papers' α). Status of each formula:

- :func:`ef21_p_diana_stepsize`: rate shape :math:`\tilde O(\frac L{\alpha_P\mu}+\frac{\omega L_{\max}}{n\mu}+\omega)`
  as quoted by the 2Direction abstract; the constants (16, 160, 2) are a **library choice** (the
  paper's are not recovered), checked numerically on random strongly convex quadratics.
- :func:`ef21_p_marina_stepsize`: additive shape :math:`L+c_1L/\alpha_P+c_2L_+\sqrt{(1-p)\omega/(pn)}`
  **recalled**; :math:`c_1=4`, :math:`c_2=\sqrt8` are a **library choice** from a Lyapunov sketch.
  :func:`ef21_p_stepsize` is its :math:`p=1` case (EF21-P with exact gradients).
- :func:`marina_p_stepsize`: :math:`\big(L+\sqrt{\frac{1-p}p}\sqrt{\omega L_A^2+\theta L_B^2}\big)^{-1}` **recalled form**;
  :func:`marina_p_similarity` / :func:`marina_p_variance` give :math:`(L_A, L_B)` of quadratics **[derived]**.
- EF21-BC: the authors' script uses EF21's stepsize with :math:`\alpha=\alpha_W` (times a tuned factor)
  **[exact, code]**; ``variant="product"`` uses :math:`\alpha_W\alpha_M` instead (the multiplicative
  dependence of the B&W bound; **library choice**, conservative).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError
from commpress.theory import ef21 as _ef21
from commpress.theory._validate import check_choice, nonneg, pos, prob

__all__ = [
    "ef21_p_stepsize",
    "ef21_p_diana_stepsize",
    "ef21_p_diana_beta",
    "ef21_p_marina_stepsize",
    "ef21_p_marina_p",
    "marina_p_stepsize",
    "marina_p_similarity",
    "marina_p_variance",
    "marina_p_theta",
    "ef21_bc_stepsize",
]


def ef21_p_marina_stepsize(L: Any, L_plus: Any, delta_p: Any, omega_over_n: Any, p: Any) -> float:
    r"""EF21-P + MARINA (nonconvex), library default **[choice; shape recalled]**:

    .. math:: \gamma=\Big(L+\frac{4L}{\alpha_P}+L_+\sqrt{\frac{8(1-p)}{p}\frac\omega n}\Big)^{-1}
       \ \Rightarrow\ \mathbb E\|\nabla f(\hat x^T)\|^2\le\frac{2\Delta^0}{\gamma T}.

    ``omega_over_n`` is the variance of the averaged uplink messages (:math:`\omega/n` for independent
    :math:`\mathcal Q_i\in\mathbb U(\omega)`). The dependence on :math:`1/\alpha_P` and on ω is additive."""
    owner = "EF21-P + MARINA"
    L = pos("L", L, owner)
    dp = prob("delta_p", delta_p, owner)
    p = prob("p", p, owner)
    var = nonneg("L_plus", L_plus, owner) * math.sqrt(8.0 * (1.0 - p) / p * nonneg("omega_over_n", omega_over_n, owner))
    return 1.0 / (L + 4.0 * L / dp + var)


def ef21_p_stepsize(L: Any, delta_p: Any) -> float:
    r"""EF21-P with exact (dense) gradients: :math:`\gamma=\big(L+4L/\alpha_P\big)^{-1}`, the :math:`p=1` case of
    :func:`ef21_p_marina_stepsize` **[choice]**; iterations :math:`O(\frac L{\alpha_P\mu}\log\frac1\varepsilon)` under
    strong convexity **[recalled rate shape]**. :math:`\alpha_P=1` gives :math:`1/(5L)`."""
    return ef21_p_marina_stepsize(L, 0.0, delta_p, 0.0, 1.0)


def ef21_p_marina_p(omega: Any) -> float:
    r"""Default probability of a dense uplink round of EF21-P + MARINA: :math:`p=\frac1{\omega+1}` **[choice]**."""
    return 1.0 / (1.0 + nonneg("omega", omega, "EF21-P + MARINA"))


def ef21_p_diana_beta(omega: Any) -> float:
    r"""Shift stepsize of EF21-P + DIANA: :math:`\beta=\frac1{\omega+1}` **[recalled]**."""
    return 1.0 / (1.0 + nonneg("omega", omega, "EF21-P + DIANA"))


def ef21_p_diana_stepsize(L: Any, L_max: Any, delta_p: Any, omega: Any, omega_over_n: Any, mu: Any = 0.0) -> float:
    r"""EF21-P + DIANA (convex / strongly convex), library default **[choice; shape recalled]**:

    .. math:: \gamma=\min\Big\{\frac{\alpha_P}{16L},\ \frac{1}{160\,(\omega/n)\,L_{\max}},\ \frac1{2\mu(\omega+1)}\Big\},

    a term whose denominator is 0 (ω = 0, μ = 0) is dropped. Linear convergence in
    :math:`\tilde O(\frac L{\alpha_P\mu}+\frac{\omega L_{\max}}{n\mu}+\omega)` rounds (EF21-P paper, as quoted by
    2Direction); ``omega_over_n`` is :math:`\omega/n` for independent compressors."""
    owner = "EF21-P + DIANA"
    terms = [prob("delta_p", delta_p, owner) / (16.0 * pos("L", L, owner))]
    wn = nonneg("omega_over_n", omega_over_n, owner)
    if wn > 0:
        terms.append(1.0 / (160.0 * wn * pos("L_max", L_max, owner)))
    mu = nonneg("mu", mu, owner)
    if mu > 0:
        terms.append(1.0 / (2.0 * mu * (nonneg("omega", omega, owner) + 1.0)))
    return min(terms)


def marina_p_theta(omega: Any, A: Any, B: Any, messages: str = "individual") -> float:
    r"""θ of a MARINA-P compressor set, :math:`\mathbb E\|\frac1n\sum_i\mathcal Q_i(v)-v\|^2\le\theta\|v\|^2`
    **[recalled definition]**: ``messages="same"`` (one draw for every worker) θ = ω; ``"individual"``
    (worker i gets :math:`\mathcal Q_i(v)`) the AB-inequality on identical inputs, θ = A − B: PermK (A = B = 1)
    θ = 0, independent :math:`\mathbb U(\omega)` (A = ω/n, B = 0) θ = ω/n."""
    messages = check_choice("messages", messages, "MARINA-P", ("individual", "same"))
    if messages == "same":
        return nonneg("omega", omega, "MARINA-P")
    return max(0.0, nonneg("A", A, "MARINA-P") - nonneg("B", B, "MARINA-P"))


def marina_p_similarity(hessians: Any) -> tuple[float, float]:
    r"""For quadratics :math:`f_i=\frac12x^\top A_ix-b_i^\top x`: :math:`a=\frac1n\sum_i\|A_i-\bar A\|_2^2` and
    :math:`b=\|\bar A\|_2^2`; then :math:`(L_A^2, L_B^2)=((1+s)a, (1+\frac1s)b)` satisfies MARINA-P's functional
    :math:`(L_A,L_B)` inequality for every :math:`s>0` **[exact, derived]** (Cauchy–Schwarz on
    :math:`\frac1n\sum_i(A_i-\bar A)u_i`)."""
    H = torch.as_tensor(hessians, dtype=torch.float64)
    if H.dim() != 3 or H.shape[1] != H.shape[2]:
        raise ConfigError(f"marina_p_similarity needs the client Hessians, shape (n, d, d); got {tuple(H.shape)}.")
    A_bar = H.mean(0)
    a = float(torch.linalg.matrix_norm(H - A_bar, ord=2).pow(2).mean())
    b = float(torch.linalg.matrix_norm(A_bar, ord=2) ** 2)
    return a, b


def marina_p_variance(omega: Any, theta: Any, a: Any, b: Any) -> tuple[float, float, float]:
    r"""The best split of :func:`marina_p_similarity`: :math:`\min_{s>0}\ \omega(1+s)a+\theta(1+\frac1s)b
    =(\sqrt{\omega a}+\sqrt{\theta b})^2` at :math:`s=\sqrt{\theta b/(\omega a)}`. Returns
    ``(omega L_A^2 + theta L_B^2, L_A, L_B)`` at that s (s → 0 or ∞ where a term vanishes)."""
    w, th = nonneg("omega", omega, "MARINA-P"), nonneg("theta", theta, "MARINA-P")
    a, b = nonneg("a", a, "MARINA-P"), nonneg("b", b, "MARINA-P")
    value = (math.sqrt(w * a) + math.sqrt(th * b)) ** 2
    if w * a > 0 and th * b > 0:
        s = math.sqrt(th * b / (w * a))
        return value, math.sqrt((1 + s) * a), math.sqrt((1 + 1 / s) * b)
    if th * b == 0:  # s -> 0: L_A^2 -> a, L_B^2 -> inf, but theta L_B^2 -> 0 (theta = 0) or b = 0
        return value, math.sqrt(a), (math.inf if b > 0 else 0.0)
    return value, (math.inf if a > 0 else 0.0), math.sqrt(b)


def marina_p_stepsize(L: Any, p: Any, omega: Any, theta: Any, L_A: Any, L_B: Any) -> float:
    r"""MARINA-P (nonconvex) **[recalled form; a MARINA-style Lyapunov sketch reproduces it]**:

    .. math:: \gamma=\Big(L+\sqrt{\tfrac{1-p}{p}}\sqrt{\omega L_A^2+\theta L_B^2}\Big)^{-1}
       \ \Rightarrow\ \mathbb E\|\nabla f(\hat x^T)\|^2\le\frac{2\Delta^0}{\gamma T},

    with :math:`(L_A, L_B)` of the functional inequality (:math:`(L_{\max}, 0)` is always valid) and the
    compressor set's ω and θ (:func:`marina_p_theta`). An infinite L_A or L_B times a zero constant counts 0."""
    owner = "MARINA-P"
    L, p = pos("L", L, owner), prob("p", p, owner)
    w, th = nonneg("omega", omega, owner), nonneg("theta", theta, owner)
    LA, LB = float(L_A), float(L_B)
    if not (LA >= 0 and LB >= 0):
        raise ConfigError(f"{owner} needs L_A >= 0 and L_B >= 0; got L_A={L_A!r}, L_B={L_B!r}.")
    term = (w * LA * LA if w > 0 else 0.0) + (th * LB * LB if th > 0 else 0.0)
    if not math.isfinite(term):
        raise ConfigError(f"{owner}: omega L_A^2 + theta L_B^2 is infinite (L_A={LA}, L_B={LB}); pass finite L_A, L_B.")
    return 1.0 / (L + math.sqrt((1.0 - p) / p * term))


def ef21_bc_stepsize(L_minus: Any, L_qm: Any, delta_w: Any, delta_m: Any = 1.0, *, variant: str = "script",
                     mu: Any = None) -> float:
    r"""EF21-BC: EF21's stepsize :math:`(L_-+L_{QM}\sqrt{\beta/\theta})^{-1}` with :math:`\alpha=\alpha_W`
    (``variant="script"``, the authors' script, to be multiplied by a tuned factor **[exact, code]**) or with
    :math:`\alpha=\alpha_W\alpha_M` (``variant="product"``: the multiplicative dependence of the B&W rate
    :math:`O(\frac{\tilde L\Delta^0}{\alpha_W\alpha_M\varepsilon^2})`, **library choice**). ``mu`` > 0: EF21's PL form."""
    variant = check_choice("variant", variant, "EF21-BC", ("script", "product"))
    delta = prob("delta_w", delta_w, "EF21-BC")
    if variant == "product":
        delta *= prob("delta_m", delta_m, "EF21-BC")
    if mu is not None and float(mu) > 0:
        return _ef21.ef21_stepsize_pl(L_minus, L_qm, delta, mu)
    return _ef21.ef21_stepsize(L_minus, L_qm, delta)


# ---------------------------------------------------------------------------- builders
def _delta_p(c, *, from_compressor: bool = False) -> tuple[float, str]:
    """δ_P of the downlink compressor: given (``delta_p``); else, where the compressor handed to the theory is the
    downlink one (EF21-P), its contraction (an unbiased one rescaled by 1/(1+ω)); else 1 (an uncompressed
    downlink, labelled as assumed)."""
    if c.get("delta_p") is not None:
        return prob("delta_p", c.get("delta_p"), c.name), "given"
    if from_compressor:
        from commpress.theory.constants import contraction

        return contraction(c.th, c.name, allow_rescale=True)[0], "the compressor's contraction"
    return 1.0, "assumed 1 (uncompressed downlink; pass delta_p=...)"


def _unbiased_omega(c) -> tuple[float, float]:
    """(ω, ω/n) of the uplink compressor, a ConfigError for a contractive or biased one."""
    from commpress.theory.stepsizes import _omega, _omega_over_n

    if c.get("omega") is None and c.th.kind not in ("unbiased", "correlated"):
        raise ConfigError(
            f"{c.name} needs an unbiased uplink compressor (kind 'unbiased' or 'correlated'); got kind="
            f"{c.th.kind!r}. Use e.g. 'randk' or 'iq' for the uplink (a contractive one such as 'topk' goes on the "
            "downlink), or pass omega=...")
    w = _omega(c)
    return w, _omega_over_n(c, w)


def _ef21_p(c):
    L, (dp, how) = c.sm.L_minus, _delta_p(c, from_compressor=True)
    return {"gamma": ef21_p_stepsize(L, dp)}, {
        "L_minus": L, "delta_p": dp, "delta_p_from": how,
        "source": "EF21-P (Gruntkowska et al. 2023): library default 1/(L + 4L/alpha_P) [choice; shape recalled]"}


def _ef21_p_diana(c):
    dp, how = _delta_p(c)
    w, wn = _unbiased_omega(c)
    sm = c.sm
    L = pos("L", c.get("L"), c.name) if c.get("L") is not None else sm.L_minus
    mu = 0.0 if c.get("regime", "strongly_convex") == "convex" else float(sm.mu)
    g = ef21_p_diana_stepsize(L, sm.L_max, dp, w, wn, mu)
    beta = c.get("alpha", ef21_p_diana_beta(w))
    return {"gamma": g, "alpha": beta}, {
        "L": L, "L_max": sm.L_max, "mu": mu, "delta_p": dp, "delta_p_from": how, "omega": w, "omega_over_n": wn,
        "source": "EF21-P + DIANA (Gruntkowska et al. 2023): min{aP/(16L), n/(160 w Lmax), 1/(2mu(w+1))} "
                  "[choice; shape recalled], beta = 1/(w+1) [recalled]"}


def _ef21_p_marina(c):
    dp, how = _delta_p(c)
    w, wn = _unbiased_omega(c)
    sm = c.sm
    p = prob("p", c.get("p"), c.name) if c.get("p") is not None else ef21_p_marina_p(w)
    g = ef21_p_marina_stepsize(sm.L_minus, sm.L_plus, dp, wn, p)
    return {"gamma": g, "p": p}, {
        "L_minus": sm.L_minus, "L_plus": sm.L_plus, "delta_p": dp, "delta_p_from": how, "omega": w,
        "omega_over_n": wn, "p": p,
        "source": "EF21-P + MARINA (Gruntkowska et al. 2023): 1/(L + 4L/aP + L+ sqrt(8(1-p)w/(pn))) "
                  "[choice; shape recalled], p = 1/(w+1) [choice]"}


def _marina_p(c):
    th = c.th
    messages = check_choice("messages", c.get("messages", "individual"), c.name, ("individual", "same"))
    if c.get("omega") is None and th.kind not in ("unbiased", "correlated"):
        raise ConfigError(
            f"{c.name} needs unbiased downlink compressors (kind 'unbiased' or 'correlated', e.g. 'permk' or "
            f"'randk'); got kind={th.kind!r}. A contractive compressor such as 'topk' needs error feedback: use "
            "'ef21_p' instead, or pass omega= and theta=.")
    from commpress.theory.stepsizes import _omega

    w = _omega(c)
    if c.get("theta") is not None:
        theta = nonneg("theta", c.get("theta"), c.name)
    elif messages == "same":
        theta = w
    elif th.A is not None and th.B is not None:
        theta = marina_p_theta(w, th.A, th.B, messages)
    else:
        raise ConfigError(f"{c.name}: the compressor states no AB constants, so theta is unknown; pass theta=...")
    sm = c.sm
    p = prob("p", c.get("p"), c.name) if c.get("p") is not None else 1.0 / c.n
    if c.get("L_A") is not None or c.get("L_B") is not None:
        LA = nonneg("L_A", c.get("L_A", sm.L_max), c.name)
        LB = nonneg("L_B", c.get("L_B", 0.0), c.name)
        how = "given"
    elif c.get("similarity") is not None:
        a, b = c.get("similarity")
        _, LA, LB = marina_p_variance(w, theta, a, b)
        how = "quadratic similarity (a, b), best split s"
    else:
        LA, LB, how = sm.L_max, 0.0, "(L_max, 0), always valid"
    g = marina_p_stepsize(sm.L_minus, p, w, theta, LA, LB)
    return {"gamma": g, "p": p}, {
        "L_minus": sm.L_minus, "omega": w, "theta": theta, "L_A": LA, "L_B": LB, "L_A_L_B": how, "p": p,
        "messages": messages,
        "source": "MARINA-P (Gruntkowska et al. 2024): 1/(L + sqrt((1-p)/p (w L_A^2 + theta L_B^2))) [recalled form], "
                  "p = 1/n [recalled]"}


def _ef21_bc(c):
    from commpress.theory.stepsizes import _delta

    delta_w, _ = _delta(c, allow_rescale=True)  # an unbiased C_W is used as (1/(1+w)) C_W (scale="auto")
    variant = check_choice("variant", c.get("variant", "script"), c.name, ("script", "product"))
    delta_m = prob("delta_m", c.get("delta_m"), c.name) if c.get("delta_m") is not None else 1.0
    if variant == "product" and c.get("delta_m") is None:
        raise ConfigError(f"{c.name} variant='product' needs delta_m, the downlink contraction constant; pass delta_m=...")
    regime = check_choice("regime", c.get("regime", "nonconvex"), c.name, ("nonconvex", "pl"))
    sm = c.sm
    if regime == "pl" and not sm.mu > 0:
        raise ConfigError(f"{c.name} regime='pl' needs mu > 0; got smoothness.mu={sm.mu}.")
    g = ef21_bc_stepsize(sm.L_minus, sm.L_qm, delta_w, delta_m, variant=variant,
                         mu=sm.mu if regime == "pl" else None)
    return {"gamma": g}, {
        "L_minus": sm.L_minus, "L_qm": sm.L_qm, "delta_w": delta_w, "delta_m": delta_m, "variant": variant,
        "regime": regime,
        "source": "EF21-BC (Fatkhullin et al., B&W): EF21's stepsize with alpha_W, as the authors' script "
                  "[exact, code; times a tuned factor]" if variant == "script" else
                  "EF21-BC: EF21's stepsize with alpha_W alpha_M [library choice]"}


#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {
    "ef21_p": (_ef21_p, ("delta_p",)),
    "ef21_p_diana": (_ef21_p_diana, ("delta_p", "alpha", "omega", "omega_over_n", "L", "regime")),
    "ef21_p_marina": (_ef21_p_marina, ("delta_p", "p", "omega", "omega_over_n")),
    "marina_p": (_marina_p, ("p", "omega", "theta", "messages", "L_A", "L_B", "similarity")),
    "ef21_bc": (_ef21_bc, ("delta", "delta_m", "variant", "regime")),
}
#: Other accepted spellings of the names above.
ALIASES: dict = {"ef21-p": "ef21_p", "ef21-p-diana": "ef21_p_diana", "ef21-p-marina": "ef21_p_marina",
                 "marina-p": "marina_p", "ef21-bc": "ef21_bc"}
