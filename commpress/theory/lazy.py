r"""Lazy aggregation and momentum: the 3PC family (EF21, LAG, CLAG, 3PCv2, 3PCv4, 3PCv5), DASHA, DASHA-PAGE, DASHA-MVR.

Sources: Richtárik, Sokolov, Gasanov, Fatkhullin, Li, Gorbunov, *3PC: Three point compressors for
communication-efficient distributed training and a better theory for lazy aggregation*, ICML 2022
(the 3PC definition, its instances and the EF21-shaped theorem); Tyurin, Richtárik, *DASHA:
Distributed nonconvex optimization with communication compression and optimal oracle complexity*,
ICLR 2023 (momentum, PAGE probability, MVR momentum, stepsizes).

Formulas (status in brackets):

- ``three_pc_constants``: :math:`(A, B)` of EF21, LAG(ζ), CLAG(ζ), 3PCv2, 3PCv4, 3PCv5(p), the 3PC paper's
  table of instances [exact: derived, authors' code];
- ``three_pc_stepsize``: :math:`(L_-+\tilde L\sqrt{B/A})^{-1}` [exact: authors' scripts];
  ``three_pc_stepsize_pl``: :math:`\min\{(L_-+\tilde L\sqrt{2B/A})^{-1}, A/(2\mu)\}` [recalled];
  ``three_pc_rounds``: :math:`\lceil(2\Delta^0/\gamma+G^0/A)/\varepsilon^2\rceil` [recalled];
- ``lag_default_zeta``: ζ = 1; ``clag_default_zeta``: ζ = β(δ), the largest trigger that keeps EF21's
  stepsize [library choices];
- ``dasha_momentum``: :math:`a=1/(2\omega+1)` [exact: code]; ``dasha_stepsize``:
  :math:`(L_-+\sqrt{16\omega(2\omega+1)/n}\,L_{QM})^{-1}` [recalled], code variant
  :math:`(L_{AM}+L_{QM}\sqrt{\omega(4\omega+1)/n})^{-1}` [exact: code];
- ``dasha_page_p``: :math:`p=B/(m+B)` [exact: code]; ``dasha_page_stepsize`` [recalled shape, constants not
  recovered];
- ``dasha_mvr_momentum``: :math:`b=\min\{1/B', 1/(\omega\sqrt{B'})\}` [exact: configs];
  ``dasha_mvr_stepsize`` [recalled shape, constants not recovered].

The contraction constant is δ here (α in the 3PC and EF21 papers).
"""

from __future__ import annotations

import math
from typing import Any

from commpress.errors import ConfigError
from commpress.theory._validate import check_choice, nonneg, pos, prob
from commpress.theory.ef21 import ef21_theta_beta

__all__ = [
    "THREE_PC_MECHANISMS",
    "three_pc_constants",
    "three_pc_stepsize",
    "three_pc_stepsize_pl",
    "three_pc_rounds",
    "lag_default_zeta",
    "clag_default_zeta",
    "dasha_momentum",
    "dasha_stepsize",
    "dasha_page_p",
    "dasha_page_stepsize",
    "dasha_mvr_momentum",
    "dasha_mvr_stepsize",
]

#: The 3PC mechanisms the library implements.
THREE_PC_MECHANISMS = ("ef21", "lag", "clag", "3pcv2", "3pcv4", "3pcv5")


# ----------------------------------------------------------------------------- 3PC
def three_pc_constants(mechanism: str, *, delta: Any = None, zeta: Any = None, p: Any = None, omega2: Any = None,
                       delta2: Any = None) -> tuple[float, float]:
    r"""The 3PC constants :math:`(A, B)` of a mechanism (3PC paper, table of instances):

    - ``"ef21"``: :math:`(\theta(\delta), \beta(\delta))`, :math:`\theta=1-\sqrt{1-\delta}`, :math:`\beta=\frac{1-\delta}\theta`;
    - ``"lag"``: :math:`(1, \zeta)` (triggered: no error; else :math:`\|h-x\|^2\le\zeta\|x-y\|^2`);
    - ``"clag"``: :math:`(\theta(\delta), \max\{\beta(\delta), \zeta\})`;
    - ``"3pcv2"``: :math:`(\delta, (1-\delta)\omega_2)`, :math:`\mathcal Q\in\mathbb U(\omega_2)` the first message;
    - ``"3pcv4"``: :math:`(\theta(\bar\delta), \beta(\bar\delta))`, :math:`\bar\delta=1-(1-\delta)(1-\delta_2)`;
    - ``"3pcv5"``: :math:`(1-\sqrt{1-p}, \frac{(1-p)(1-\delta)}{1-\sqrt{1-p}})`.
    """
    owner = "3PC"
    mechanism = check_choice("mechanism", mechanism, owner, THREE_PC_MECHANISMS)
    if mechanism == "lag":
        return 1.0, nonneg("zeta", _need(zeta, "zeta", "LAG"), "LAG")
    if mechanism == "3pcv2":
        d = prob("delta", _need(delta, "delta", "3PCv2"), "3PCv2")
        return d, (1.0 - d) * nonneg("omega2", _need(omega2, "omega2", "3PCv2"), "3PCv2")
    if mechanism == "3pcv4":
        d1 = prob("delta", _need(delta, "delta", "3PCv4"), "3PCv4")
        d2 = prob("delta2", _need(delta2, "delta2", "3PCv4"), "3PCv4")
        return ef21_theta_beta(1.0 - (1.0 - d1) * (1.0 - d2))
    theta, beta = ef21_theta_beta(_need(delta, "delta", mechanism.upper()))
    if mechanism == "ef21":
        return theta, beta
    if mechanism == "clag":
        return theta, max(beta, nonneg("zeta", _need(zeta, "zeta", "CLAG"), "CLAG"))
    p = prob("p", _need(p, "p", "3PCv5"), "3PCv5")
    delta = prob("delta", delta, "3PCv5")
    root = math.sqrt(1.0 - p)
    A = 1.0 - root
    return A, (1.0 - p) * (1.0 - delta) / A


def _need(value: Any, name: str, owner: str) -> Any:
    if value is None:
        raise ConfigError(f"{owner} needs {name}; pass {name}=... .")
    return value


def three_pc_stepsize(L_minus: Any, L_qm: Any, A: Any, B: Any) -> float:
    r"""3PC theorem (nonconvex; EF21's with θ → A, β → B): :math:`\gamma=(L_-+\tilde L\sqrt{B/A})^{-1}`, then
    :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\frac{2\Delta^0}{\gamma T}+\frac{G^0}{AT}`."""
    owner = "3PC"
    A = pos("A", A, owner)
    if A > 1.0:
        raise ConfigError(f"3PC needs 0 < A <= 1; got A={A}.")
    return 1.0 / (pos("L_minus", L_minus, owner) + nonneg("L_qm", L_qm, owner) * math.sqrt(nonneg("B", B, owner) / A))


def three_pc_stepsize_pl(L_minus: Any, L_qm: Any, A: Any, B: Any, mu: Any) -> float:
    r"""3PC under PL(μ): :math:`\gamma=\min\{(L_-+\tilde L\sqrt{2B/A})^{-1},\ A/(2\mu)\}`,
    rate :math:`(1-\gamma\mu)^T`."""
    owner = "3PC (PL)"
    A = pos("A", A, owner)
    root = math.sqrt(2.0 * nonneg("B", B, owner) / A)
    g = 1.0 / (pos("L_minus", L_minus, owner) + nonneg("L_qm", L_qm, owner) * root)
    return min(g, A / (2.0 * pos("mu", mu, owner)))


def three_pc_rounds(gamma: Any, A: Any, delta0: Any, eps: Any, *, G0: Any = 0.0) -> int:
    r"""Rounds to :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\varepsilon^2`:
    :math:`\lceil(2\Delta^0/\gamma+G^0/A)/\varepsilon^2\rceil`."""
    owner = "3PC"
    num = (2.0 * nonneg("delta0", delta0, owner) / pos("gamma", gamma, owner)
           + nonneg("G0", G0, owner) / pos("A", A, owner))
    return max(1, math.ceil(num / pos("eps", eps, owner) ** 2 * (1.0 - 1e-14)))


def lag_default_zeta() -> float:
    """LAG's default trigger ζ = 1 **[library choice]**: the 3PC stepsize :math:`(L_-+\\tilde L)^{-1}`."""
    return 1.0


def clag_default_zeta(delta: Any) -> float:
    r"""CLAG's default trigger ζ = β(δ) **[library choice]**: the largest ζ with :math:`\max\{\beta,\zeta\}=\beta`,
    so CLAG keeps EF21's theoretical stepsize and skips what it can."""
    return ef21_theta_beta(delta)[1]


# ----------------------------------------------------------------------------- DASHA
def dasha_momentum(omega: Any) -> float:
    r"""DASHA's momentum :math:`a=\frac1{2\omega+1}` (authors' code default; the theorem's value is recalled
    to agree)."""
    return 1.0 / (2.0 * nonneg("omega", omega, "DASHA") + 1.0)


def dasha_stepsize(L_minus: Any, L_qm: Any, omega: Any, n: Any, *, variant: str = "theorem", L_am: Any = None) -> float:
    r"""DASHA's stepsize.

    ``variant="theorem"`` **[recalled]**: :math:`\gamma=(L_-+\sqrt{16\omega(2\omega+1)/n}\,L_{QM})^{-1}`, then
    :math:`\mathbb E\|\nabla f(\hat x^T)\|^2\le\frac{2\Delta^0}{\gamma T}` (with :math:`g_i^0=h_i^0=\nabla f_i(x^0)`);
    ``variant="code"`` **[exact, authors' code]**: :math:`(L_{AM}+L_{QM}\sqrt{\omega(4\omega+1)/n})^{-1}`.
    """
    owner = "DASHA"
    variant = check_choice("variant", variant, owner, ("theorem", "code"))
    w = nonneg("omega", omega, owner)
    n = pos("n", n, owner)
    Lq = nonneg("L_qm", L_qm, owner)
    if variant == "code":
        return 1.0 / (pos("L_am", _need(L_am, "L_am", owner), owner) + Lq * math.sqrt(w * (4.0 * w + 1.0) / n))
    return 1.0 / (pos("L_minus", L_minus, owner) + math.sqrt(16.0 * w * (2.0 * w + 1.0) / n) * Lq)


def dasha_page_p(batch_size: Any, m: Any) -> float:
    """DASHA-PAGE's probability of a full-gradient round, :math:`p=B/(m+B)` (authors' code)."""
    B = pos("batch_size", batch_size, "DASHA-PAGE")
    return B / (pos("m", m, "DASHA-PAGE") + B)


def dasha_page_stepsize(L_minus: Any, L_qm: Any, L_max: Any, omega: Any, n: Any, p: Any, batch_size: Any) -> float:
    r"""DASHA-PAGE's stepsize **[recalled shape; constants not recovered: library default]**:

    .. math:: \gamma=\Big(L_-+\Big[\tfrac{48\omega(2\omega+1)}n\big(L_{QM}^2+\tfrac{(1-p)L_{\max}^2}B\big)
              +\tfrac{2(1-p)L_{\max}^2}{pnB}\Big]^{1/2}\Big)^{-1},

    :math:`L_{\max}` the smoothness of every single-sample :math:`f_{ij}`. With p = 1 it is DASHA's.
    """
    owner = "DASHA-PAGE"
    w, n = nonneg("omega", omega, owner), pos("n", n, owner)
    p, B = prob("p", p, owner), pos("batch_size", batch_size, owner)
    Lq, Lm = nonneg("L_qm", L_qm, owner), nonneg("L_max", L_max, owner)
    inner = 48.0 * w * (2.0 * w + 1.0) / n * (Lq**2 + (1.0 - p) * Lm**2 / B) + 2.0 * (1.0 - p) * Lm**2 / (p * n * B)
    return 1.0 / (pos("L_minus", L_minus, owner) + math.sqrt(inner))


def dasha_mvr_momentum(omega: Any, mega_batch: Any) -> float:
    r"""DASHA-MVR's momentum :math:`b=\min\{\frac1{B'},\frac1{\omega\sqrt{B'}}\}` (the authors' experiment
    configs, :math:`B'` the mega-batch); ω = 0 gives :math:`1/B'`."""
    owner = "DASHA-MVR"
    w, Bp = nonneg("omega", omega, owner), pos("mega_batch", mega_batch, owner)
    return min(1.0, 1.0 / Bp, math.inf if w == 0 else 1.0 / (w * math.sqrt(Bp)))


def dasha_mvr_stepsize(L_minus: Any, L_qm: Any, L_sigma: Any, omega: Any, n: Any, b: Any, batch_size: Any) -> float:
    r"""DASHA-MVR's stepsize **[recalled shape; constants not recovered: library default]**:

    .. math:: \gamma=\Big(L_-+\Big[\tfrac{48\omega(2\omega+1)}n\big(L_{QM}^2+\tfrac{(1-b)^2L_\sigma^2}B\big)
              +\tfrac{12L_\sigma^2}{bnB}\Big]^{1/2}\Big)^{-1},

    :math:`L_\sigma` the mean-squared smoothness of the stochastic gradients (bounded by the single-sample constant).
    """
    owner = "DASHA-MVR"
    w, n = nonneg("omega", omega, owner), pos("n", n, owner)
    b, B = prob("b", b, owner), pos("batch_size", batch_size, owner)
    Lq, Ls = nonneg("L_qm", L_qm, owner), nonneg("L_sigma", L_sigma, owner)
    inner = 48.0 * w * (2.0 * w + 1.0) / n * (Lq**2 + (1.0 - b) ** 2 * Ls**2 / B) + 12.0 * Ls**2 / (b * n * B)
    return 1.0 / (pos("L_minus", L_minus, owner) + math.sqrt(inner))


# ----------------------------------------------------------------------------- builders
def _three_pc_core(c: Any, mechanism: str) -> Any:
    from commpress.theory.stepsizes import _delta

    sm = c.sm
    L_qm = pos("L_qm", c.get("L_qm"), c.name) if c.get("L_qm") is not None else sm.L_qm
    delta = None
    if mechanism != "lag":
        # an unbiased compressor enters rescaled by 1/(1+omega), as the algorithms' scale="auto" sends it
        delta, _ = _delta(c, allow_rescale=True)
    zeta = c.get("zeta")
    zeta_source = "given"
    if zeta is None and mechanism in ("lag", "clag"):
        zeta = lag_default_zeta() if mechanism == "lag" else clag_default_zeta(delta)
        zeta_source = "library choice: 1 (LAG) / beta(delta) (CLAG)"
    p = c.get("p")
    if mechanism == "3pcv5" and p is None:
        raise ConfigError(f"{c.name} mechanism='3pcv5' needs p, the probability of a dense round; pass p=... .")
    omega2, delta2 = c.get("omega2"), c.get("delta2")
    if mechanism in ("3pcv2", "3pcv4") and (omega2 if mechanism == "3pcv2" else delta2) is None:
        key = "omega2" if mechanism == "3pcv2" else "delta2"
        raise ConfigError(f"{c.name} mechanism={mechanism!r} needs {key}, the constant of the second compressor; "
                          f"pass {key}=... .")
    A, B = three_pc_constants(mechanism, delta=delta, zeta=zeta, p=p, omega2=omega2, delta2=delta2)
    regime = check_choice("regime", c.get("regime", "nonconvex"), c.name, ("nonconvex", "pl"))
    if regime == "pl":
        if not sm.mu > 0:
            raise ConfigError(f"{c.name} regime='pl' needs the PL/strong-convexity constant mu > 0; got mu={sm.mu}.")
        g = three_pc_stepsize_pl(sm.L_minus, L_qm, A, B, sm.mu)
    else:
        g = three_pc_stepsize(sm.L_minus, L_qm, A, B)
    out: dict[str, Any] = {"gamma": g}
    if zeta is not None:
        out["zeta"] = float(zeta)
    return out, {"L_minus": sm.L_minus, "L_qm": L_qm, "delta": delta, "zeta": zeta, "zeta_source": zeta_source,
                 "p": p, "A": A, "B": B, "mechanism": mechanism, "regime": regime,
                 "source": "3PC (Richtarik et al. 2022): gamma = 1/(L_- + L_QM sqrt(B/A)) [exact, authors' scripts]"}


def _three_pc(c: Any) -> Any:
    mechanism = check_choice("mechanism", c.get("mechanism", "clag"), c.name, THREE_PC_MECHANISMS)
    return _three_pc_core(c, mechanism)


def _lag(c: Any) -> Any:
    return _three_pc_core(c, "lag")


def _clag(c: Any) -> Any:
    return _three_pc_core(c, "clag")


def _dasha_omega(c: Any) -> float:
    from commpress.theory.stepsizes import _omega

    if c.get("omega") is None and c.th.kind != "unbiased":
        raise ConfigError(
            f"{c.name} needs independent unbiased compressors (the DASHA analysis); the compressor is "
            f"kind={c.th.kind!r}. Use e.g. 'randk', 'iq' or 'natural', or pass omega=... explicitly."
        )
    return _omega(c)


def _dasha(c: Any) -> Any:
    sm = c.sm
    w = _dasha_omega(c)
    variant = check_choice("variant", c.get("variant", "theorem"), c.name, ("theorem", "code"))
    g = dasha_stepsize(sm.L_minus, sm.L_qm, w, c.n, variant=variant, L_am=sm.L_am)
    a = c.get("a", dasha_momentum(w))
    return {"gamma": g, "a": a}, {"L_minus": sm.L_minus, "L_qm": sm.L_qm, "L_am": sm.L_am, "omega": w,
                                  "variant": variant,
                                  "source": "DASHA (Tyurin & Richtarik 2023): theorem gamma [recalled], code variant "
                                            "[exact]; a = 1/(2 omega + 1) [exact, code]"}


def _need_sample_constant(c: Any, key: str = "L_sample") -> float:
    if c.get(key) is None:
        raise ConfigError(
            f"{c.name} needs {key}, the smoothness constant of every single-sample loss f_ij; pass {key}=... "
            "(a finite-sum problem's smoothness().L_sample), or pass gamma=<stepsize>."
        )
    return pos(key, c.get(key), c.name)


def _dasha_page(c: Any) -> Any:
    sm = c.sm
    w = _dasha_omega(c)
    B = pos("batch_size", c.get("batch_size", 1), c.name)
    if c.get("p") is not None:
        p = prob("p", c.get("p"), c.name)
    else:
        if c.get("m") is None:
            raise ConfigError(f"{c.name} needs m, the number of samples per client (p = B/(m+B)); "
                              "pass m=... or p=... .")
        p = dasha_page_p(B, c.get("m"))
    L_max = _need_sample_constant(c)
    g = dasha_page_stepsize(sm.L_minus, sm.L_qm, L_max, w, c.n, p, B)
    return {"gamma": g, "a": c.get("a", dasha_momentum(w)), "p": p}, {
        "L_minus": sm.L_minus, "L_qm": sm.L_qm, "L_sample": L_max, "omega": w, "batch_size": B, "p": p,
        "source": "DASHA-PAGE (Tyurin & Richtarik 2023): p = B/(m+B), a [exact, code]; gamma [recalled shape, "
                  "constants not recovered]"}


def _dasha_mvr(c: Any) -> Any:
    sm = c.sm
    w = _dasha_omega(c)
    B = pos("batch_size", c.get("batch_size", 1), c.name)
    mega = pos("mega_batch", c.get("mega_batch", 100), c.name)
    b = prob("b", c.get("b"), c.name) if c.get("b") is not None else dasha_mvr_momentum(w, mega)
    if c.get("L_sigma") is None:
        L_sigma = _need_sample_constant(c, "L_sample")
    else:
        L_sigma = pos("L_sigma", c.get("L_sigma"), c.name)
    g = dasha_mvr_stepsize(sm.L_minus, sm.L_qm, L_sigma, w, c.n, b, B)
    return {"gamma": g, "a": c.get("a", dasha_momentum(w)), "b": b}, {
        "L_minus": sm.L_minus, "L_qm": sm.L_qm, "L_sigma": L_sigma, "omega": w, "batch_size": B, "mega_batch": mega,
        "b": b, "source": "DASHA-MVR (Tyurin & Richtarik 2023): b = min(1/B', 1/(omega sqrt B')) [exact, configs]; "
                          "gamma [recalled shape, constants not recovered]"}


#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {
    "three_pc": (_three_pc, ("mechanism", "delta", "zeta", "p", "omega2", "delta2", "regime", "L_qm")),
    "lag": (_lag, ("zeta", "regime", "L_qm")),
    "clag": (_clag, ("delta", "zeta", "regime", "L_qm")),
    "dasha": (_dasha, ("omega", "a", "variant")),
    "dasha_page": (_dasha_page, ("omega", "a", "p", "batch_size", "L_sample")),
    "dasha_mvr": (_dasha_mvr, ("omega", "a", "b", "batch_size", "mega_batch", "L_sample", "L_sigma")),
}
#: Other accepted spellings of the names above.
ALIASES: dict = {"3pc": "three_pc", "dasha-page": "dasha_page", "dasha-mvr": "dasha_mvr"}
