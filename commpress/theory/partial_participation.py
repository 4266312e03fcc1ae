r"""Partial participation: client sampling constants, MARINA-PP, EF21-PP, DIANA with client sampling,
DASHA-PP: formulas and default parameters.

A sampling is described by the plain dict of :mod:`commpress.network` (``{"name": "full"}``,
``{"name": "nice", "tau": 4}``, ``{"name": "independent", "p": 0.5 or [p_1..p_n]}``); the formulas
below read its marginals :math:`p_i=\Pr(i\in S)` and pair probability :math:`p_{ij}`.

**Unbiased aggregation** (derived; checked by Monte Carlo in the tests): for
:math:`\hat a_S=\frac1n\sum_{i\in S}a_i/p_i`, :math:`\bar a=\frac1n\sum_ia_i`,

- nice(τ): :math:`\mathbb E\|\hat a_S-\bar a\|^2=B_\tau\big(\frac1n\sum\|a_i\|^2-\|\bar a\|^2\big)`,
  :math:`B_\tau=\frac{n-\tau}{\tau(n-1)}` (finite-population variance);
- independent(p): :math:`\frac1{n^2}\sum_i\frac{1-p_i}{p_i}\|a_i\|^2`.

With every sampled client sending :math:`\mathcal C_i(a_i)`, independent :math:`\mathcal C_i\in\mathbb U(\omega)`,
the variances add and the AB-inequality constants are (:func:`sampled_ab`): full :math:`(\omega/n, 0)`;
nice(τ) :math:`(\omega/\tau+B_\tau,\,B_\tau)`; independent(p) :math:`(\max_i((1+\omega)/p_i-1)/n,\,0)`.

Sources: Gorbunov, Burlachenko, Li, Richtárik, MARINA, ICML 2021 (PP-MARINA); Fatkhullin, Sokolov,
Gorbunov, Li, Richtárik, EF21 with Bells & Whistles, 2021 (EF21-PP); Tyurin, Richtárik, A Computation
and Communication Efficient Method for Distributed Nonconvex Problems in the Partial Participation
Setting, NeurIPS 2023 (DASHA-PP, parameters from the authors' code); Szlendak, Tyurin, Richtárik 2021
(MARINA under the AB-inequality).
"""

from __future__ import annotations

import math
from typing import Any

from commpress.errors import ConfigError
from commpress.theory import diana, ef21, marina
from commpress.theory._validate import check_int, nonneg, pos, prob
from commpress.theory.stepsizes import Built, _Ctx, _delta, _diana, _ef21, _marina, _omega, _p_rule

__all__ = [
    "SAMPLINGS",
    "dasha_pp_defaults",
    "dasha_pp_stepsize",
    "ef21_pp_rho",
    "ef21_pp_stepsize",
    "ef21_pp_theta_beta",
    "independent_ab",
    "marina_pp_stepsize_paper",
    "nice_B",
    "nice_ab",
    "sampled_ab",
    "sampled_variance",
    "sampling_marginals",
]

#: The samplings the formulas know.
SAMPLINGS = ("full", "nice", "independent")


# ----------------------------------------------------------------------------- samplings
def sampling_marginals(sampling: Any, n: int) -> tuple[str, list[float], float]:
    r"""``(name, [p_1..p_n], p_pair)`` of a sampling dict; ``p_pair`` = :math:`p_{ij}` for nice/full, and
    :math:`\max_{i\ne j}p_ip_j` bounds for independent (exact when uniform)."""
    n = check_int("n", n, "sampling")
    if sampling is None:
        sampling = {"name": "full"}
    if isinstance(sampling, str):
        sampling = {"name": sampling}
    if not isinstance(sampling, dict) or sampling.get("name") not in SAMPLINGS:
        raise ConfigError(f"sampling must be a dict with name in {list(SAMPLINGS)} (network.sampling's describe()); "
                          f"got {sampling!r}.")
    name = sampling["name"]
    if name == "full":
        return name, [1.0] * n, 1.0
    if name == "nice":
        tau = check_int("tau", sampling.get("tau"), "nice sampling")
        if tau > n:
            raise ConfigError(f"nice sampling needs tau <= n={n}; got tau={tau}.")
        pair = tau * (tau - 1) / (n * (n - 1)) if n > 1 else 1.0
        return name, [tau / n] * n, pair
    p = sampling.get("p")
    ps = [prob("p", v, "independent sampling") for v in (p if isinstance(p, (list, tuple)) else [p] * n)]
    if len(ps) != n:
        raise ConfigError(f"independent sampling got {len(ps)} probabilities for n={n} clients.")
    top = sorted(ps)[-2:]
    return name, ps, (top[0] * top[-1] if n > 1 else ps[0])


def nice_B(n: int, tau: int) -> float:
    r""":math:`B_\tau=\frac{n-\tau}{\tau(n-1)}`: the variance factor of τ-nice sampling (0 for n = 1)."""
    n, tau = check_int("n", n, "nice sampling"), check_int("tau", tau, "nice sampling")
    if tau > n:
        raise ConfigError(f"nice sampling needs tau <= n={n}; got tau={tau}.")
    return 0.0 if n == 1 else (n - tau) / (tau * (n - 1))


def nice_ab(n: int, tau: int, omega: Any = 0.0) -> tuple[float, float]:
    r"""AB constants of τ-nice sampling with independent :math:`\mathbb U(\omega)` messages:
    :math:`(\omega/\tau+B_\tau,\ B_\tau)`."""
    B = nice_B(n, tau)
    return nonneg("omega", omega, "nice sampling") / tau + B, B


def independent_ab(p: Any, omega: Any = 0.0) -> tuple[float, float]:
    r"""AB constants of independent sampling with probabilities ``p`` (n of them) and independent
    :math:`\mathbb U(\omega)` messages: :math:`(\max_i((1+\omega)/p_i-1)/n,\ 0)` (exact when the :math:`p_i` are equal)."""
    ps = [prob("p", v, "independent sampling") for v in p]
    w = nonneg("omega", omega, "independent sampling")
    return max((1.0 + w) / q - 1.0 for q in ps) / len(ps), 0.0


def sampled_ab(sampling: Any, n: int, omega: Any = 0.0) -> tuple[float, float]:
    """AB constants of the reweighted mean of a sampling composed with independent ``U(omega)`` messages."""
    name, ps, _ = sampling_marginals(sampling, n)
    w = nonneg("omega", omega, "sampling")
    if name == "full":
        return w / n, 0.0
    if name == "nice":
        return nice_ab(n, int(sampling["tau"]), w)
    return independent_ab(ps, w)


def sampled_variance(sampling: Any, a: Any, omega: Any = 0.0) -> float:
    r"""The exact :math:`\mathbb E\|\hat a_S-\bar a\|^2` for the rows ``a`` (``(n, d)``), messages with
    variance exactly :math:`\omega\|a_i\|^2` (e.g. RandK), per the formulas of the module docstring."""
    import torch

    a = torch.as_tensor(a, dtype=torch.float64)
    n = a.shape[0]
    name, ps, _ = sampling_marginals(sampling, n)
    w = nonneg("omega", omega, "sampling")
    sq = (a * a).sum(dim=1)
    mean_sq, sq_mean = float(sq.mean()), float(a.mean(dim=0).pow(2).sum())
    if name == "full":
        return w / n * mean_sq
    if name == "nice":
        tau = int(sampling["tau"])
        return w / tau * mean_sq + nice_B(n, tau) * (mean_sq - sq_mean)
    p = torch.tensor(ps, dtype=torch.float64)
    return float((((1.0 + w) / p - 1.0) * sq).sum()) / n**2


# ----------------------------------------------------------------------------- PP-MARINA
def marina_pp_stepsize_paper(L: Any, omega: Any, p: Any, r: Any) -> float:
    r"""PP-MARINA (MARINA paper, Alg. 4, Thm 4.1 **[recalled]**), ``r`` clients sampled with replacement:
    :math:`\gamma=\big(L(1+\sqrt{(1-p)(1+\omega)/(pr)})\big)^{-1}`, :math:`L=L_{QM}`."""
    L, w, p, r = pos("L", L, "PP-MARINA"), nonneg("omega", omega, "PP-MARINA"), prob("p", p, "PP-MARINA"), \
        pos("r", r, "PP-MARINA")
    return 1.0 / (L * (1.0 + math.sqrt((1.0 - p) * (1.0 + w) / (p * r))))


# ----------------------------------------------------------------------------- EF21-PP
def ef21_pp_rho(delta: Any, p_min: Any) -> float:
    r"""The default :math:`\rho=\frac{p_{\min}\theta}{2(1-p_{\min})}` (inf when :math:`p_{\min}=1`)."""
    theta, _ = ef21.ef21_theta_beta(delta)
    p_min = prob("p_min", p_min, "EF21-PP")
    return math.inf if p_min >= 1.0 else p_min * theta / (2.0 * (1.0 - p_min))


def ef21_pp_theta_beta(delta: Any, p_min: Any, p_max: Any, rho: Any = None) -> tuple[float, float]:
    r""":math:`\theta_p=p_{\min}\theta-(1-p_{\min})\rho`, :math:`\beta_p=p_{\max}\beta+(1-p_{\min})(1+\rho^{-1})`
    for :math:`\rho\in(0,\frac{p_{\min}\theta}{1-p_{\min}})` (EF21's argument per client: participating, EF21's
    contraction; not participating, Young's inequality with ρ). :math:`p_{\min}=1` gives EF21's θ, β."""
    theta, beta = ef21.ef21_theta_beta(delta)
    p_min, p_max = prob("p_min", p_min, "EF21-PP"), prob("p_max", p_max, "EF21-PP")
    if p_max < p_min:
        raise ConfigError(f"EF21-PP needs p_max >= p_min; got p_min={p_min}, p_max={p_max}.")
    if p_min >= 1.0:
        return theta, beta
    rho = ef21_pp_rho(delta, p_min) if rho is None else pos("rho", rho, "EF21-PP")
    upper = p_min * theta / (1.0 - p_min)
    if not rho < upper:
        raise ConfigError(f"EF21-PP needs rho in (0, p_min*theta/(1-p_min)) = (0, {upper:.6g}); got rho={rho}.")
    return p_min * theta - (1.0 - p_min) * rho, p_max * beta + (1.0 - p_min) * (1.0 + 1.0 / rho)


def ef21_pp_stepsize(L_minus: Any, L_qm: Any, delta: Any, p_min: Any, p_max: Any, rho: Any = None) -> float:
    r"""EF21-PP: :math:`\gamma=\big(L_-+L_{QM}\sqrt{\beta_p/\theta_p}\big)^{-1}`; then
    :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\frac{2\Delta^0}{\gamma T}+\frac{G^0}{\theta_pT}` **[derived]**."""
    theta_p, beta_p = ef21_pp_theta_beta(delta, p_min, p_max, rho)
    return 1.0 / (pos("L_minus", L_minus, "EF21-PP") + nonneg("L_qm", L_qm, "EF21-PP") * math.sqrt(beta_p / theta_p))


# ----------------------------------------------------------------------------- DASHA-PP
def dasha_pp_defaults(omega: Any, p_a: Any) -> tuple[float, float]:
    r"""DASHA-PP's momenta from the authors' code **[exact, code]**: :math:`a=\frac{p_a}{2\omega+1}`,
    :math:`b=\frac{p_a}{2-p_a}`."""
    w, p_a = nonneg("omega", omega, "DASHA-PP"), prob("p_a", p_a, "DASHA-PP")
    return p_a / (2.0 * w + 1.0), p_a / (2.0 - p_a)


def dasha_pp_stepsize(L_minus: Any, L_hat: Any, omega: Any, n: int, p_a: Any, p_aa: Any) -> float:
    r"""DASHA-PP stepsize, a **labelled library default** (the paper's constant was not recovered):

    .. math:: \gamma=\Big(L+\hat L\sqrt{\tfrac{16\,\omega(2\omega+1)}{n\,p_a^2}+\tfrac{16}{n\,p_a^2}\big(1-\tfrac{p_{aa}}{p_a}\big)}\Big)^{-1},

    DASHA's recalled theorem value (:math:`\gamma=(L+\sqrt{16\omega(2\omega+1)/n}\,\hat L)^{-1}`) at
    :math:`p_a=1`, with the :math:`1/p_a` growth of the estimator's variance and the sampling term of
    the shape recalled from the DASHA-PP theorem. The authors tune absolute stepsizes :math:`2^j`."""
    owner = "DASHA-PP"
    L, Lh, w = pos("L_minus", L_minus, owner), nonneg("L_hat", L_hat, owner), nonneg("omega", omega, owner)
    n, p_a, p_aa = check_int("n", n, owner), prob("p_a", p_a, owner), nonneg("p_aa", p_aa, owner)
    term = 16.0 * w * (2.0 * w + 1.0) / (n * p_a**2) + 16.0 / (n * p_a**2) * max(0.0, 1.0 - p_aa / p_a)
    return 1.0 / (L + Lh * math.sqrt(term))


# ----------------------------------------------------------------------------- builders
def _sampling(c: _Ctx) -> tuple[str, list[float], float]:
    return sampling_marginals(c.get("sampling", {"name": "full"}), c.n)


def _marina_pp(c: _Ctx) -> Built:
    name, ps, _ = _sampling(c)
    if name == "full" or min(ps) >= 1.0:
        params, info = _marina(c)
        info["sampling"] = "full"
        return params, info
    sm = c.sm
    if c.get("A") is not None:
        A, B = nonneg("A", c.get("A"), c.name), nonneg("B", c.get("B", 0.0), c.name)
        w = None
    else:
        if c.get("omega") is None and c.th.kind != "unbiased":
            raise ConfigError(f"{c.name}: the sampled AB constants need independent unbiased compressors; got "
                              f"kind={c.th.kind!r}. Pass A= and B= (the constants of the sampled mean), or gamma=.")
        w = _omega(c)
        A, B = sampled_ab(c.get("sampling"), c.n, w)
    K = marina.marina_variance_term(sm.L_plus, sm.L_pm, A, B)
    p_mean = sum(ps) / len(ps)
    zeta = float(c.get("zeta", 0.0) or c.th.bits) * p_mean  # expected payload per client and compressed round
    p, rule = _p_rule(c, math.sqrt(K) / sm.L_minus, zeta)
    g = marina.marina_stepsize(sm.L_minus, sm.L_plus, sm.L_pm, A, B, p)
    return {"gamma": g, "p": p}, {
        "L_minus": sm.L_minus, "L_plus": sm.L_plus, "L_pm": sm.L_pm, "A": A, "B": B, "omega": w, "sampling": name,
        "p_mean": p_mean, "zeta_expected": zeta, "p_rule": rule,
        "source": "PP-MARINA (Gorbunov et al. 2021, Alg. 4): MARINA under the AB-inequality (Szlendak et al. 2021) "
                  "with the sampled mean's AB constants [derived]"}


def _ef21_pp(c: _Ctx) -> Built:
    name, ps, _ = _sampling(c)
    p_min, p_max = min(ps), max(ps)
    if p_min >= 1.0:
        params, info = _ef21(c)
        info["sampling"] = "full"
        return params, info
    delta, _ = _delta(c)
    sm = c.sm
    L_qm = pos("L_qm", c.get("L_qm"), c.name) if c.get("L_qm") is not None else sm.L_qm
    rho = c.get("rho")
    theta_p, beta_p = ef21_pp_theta_beta(delta, p_min, p_max, rho)
    g = ef21_pp_stepsize(sm.L_minus, L_qm, delta, p_min, p_max, rho)
    return {"gamma": g}, {"L_minus": sm.L_minus, "L_qm": L_qm, "delta": delta, "p_min": p_min, "p_max": p_max,
                          "rho": ef21_pp_rho(delta, p_min) if rho is None else rho, "theta_p": theta_p,
                          "beta_p": beta_p, "sampling": name,
                          "source": "EF21-PP (Fatkhullin et al. 2021): EF21's argument per participating client "
                                    "[derived]"}


def _diana_pp(c: _Ctx) -> Built:
    name, ps, _ = _sampling(c)
    if name == "full" or min(ps) >= 1.0:
        params, info = _diana(c)
        info["sampling"] = "full"
        return params, info
    w = _omega(c)
    A, _ = sampled_ab(c.get("sampling"), c.n, w)
    w_eff = (1.0 + w) / min(ps) - 1.0
    regime = c.get("regime", "nonconvex")
    L = pos("L", c.get("L"), c.name) if c.get("L") is not None else c.sm.L_max
    g = diana.diana_stepsize(L, w_eff, c.n, regime=regime, omega_over_n=A)
    alpha = c.get("alpha", diana.diana_alpha(w))
    return {"gamma": g, "alpha": alpha}, {
        "L": L, "omega": w, "omega_effective": w_eff, "omega_over_n": A, "regime": regime, "sampling": name,
        "source": "DIANA's stepsize (Mishchenko et al. 2019) with omega -> (1+omega)/p_min - 1 and omega/n -> the "
                  "sampled mean's A: a labelled heuristic, no paper constant"}


def _dasha_pp(c: _Ctx) -> Built:
    name, ps, pair = _sampling(c)
    if max(ps) - min(ps) > 1e-12:
        raise ConfigError(f"{c.name} needs one participation probability p_a for every client (nice or uniform "
                          "independent sampling); got unequal ones.")
    p_a = ps[0]
    if p_a >= 1.0:  # DASHA itself (its builder, when the DASHA family is installed)
        from commpress.theory import lazy

        if "dasha" in lazy.BUILDERS:
            params, info = lazy.BUILDERS["dasha"][0](c)
            return {**params, "b": c.get("b", 1.0)}, {**info, "p_a": 1.0, "sampling": "full"}
    if c.get("omega") is None and c.th.kind != "unbiased":
        raise ConfigError(f"{c.name} needs independent unbiased compressors (the DASHA-PP analysis); got "
                          f"kind={c.th.kind!r}. Use e.g. 'randk', or pass omega=... explicitly.")
    w = _omega(c)
    a_def, b_def = dasha_pp_defaults(w, p_a)
    sm = c.sm
    L_hat = sm.L_qm
    g = dasha_pp_stepsize(sm.L_minus, L_hat, w, c.n, p_a, pair if c.n > 1 else p_a)
    return {"gamma": g, "a": c.get("a", a_def), "b": c.get("b", b_def)}, {
        "L_minus": sm.L_minus, "L_hat": L_hat, "omega": w, "p_a": p_a, "p_aa": pair, "sampling": name,
        "source": "DASHA-PP (Tyurin & Richtarik 2023): a, b from the authors' code [exact]; gamma a labelled "
                  "library default (DASHA's recalled value at p_a = 1) [not recovered]"}


#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {
    "marina_pp": (_marina_pp, ("p", "p_min", "variant", "convention", "A", "B", "zeta", "float_bits", "omega",
                               "sampling")),
    "ef21_pp": (_ef21_pp, ("delta", "regime", "L_qm", "sampling", "rho")),
    "diana_pp": (_diana_pp, ("regime", "alpha", "L", "omega", "omega_over_n", "sampling")),
    "dasha_pp": (_dasha_pp, ("omega", "sampling", "a", "b", "variant")),
}
#: Other accepted spellings of the names above.
ALIASES: dict = {"pp_marina": "marina_pp", "pp-marina": "marina_pp", "marina-pp": "marina_pp", "ef21-pp": "ef21_pp",
                 "diana-pp": "diana_pp", "dasha-pp": "dasha_pp"}
