r"""Default stepsizes and parameters of every method the simulator runs (the paper of
each method is named in its ``source``).

``default_stepsize(algorithm, smoothness, compressor, n, d, **params)`` returns the theoretical
:math:`\gamma`; ``default_params`` returns every parameter the method needs (``gamma`` plus e.g.
MARINA's ``p``, DIANA's ``alpha``, NEOLITHIC's ``R``); ``stepsize_report`` adds the constants that
were used and the source. Each method has one builder here that calls the pure formula of its
module (:mod:`~commpress.theory.marina`, :mod:`~commpress.theory.diana`, ...).

``compressor`` is a :class:`~commpress.compressors.base.CompressorTheory` (or a compressor, whose
``theory(n, d)`` is taken), ``smoothness`` a :class:`~commpress.problems.base.Smoothness`. A constant
that a formula needs and nobody provided raises :class:`~commpress.errors.ConfigError` naming it
and how to pass it; unknown keyword parameters are rejected (typos do not pass silently).
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable

import torch

from commpress.errors import ConfigError
from commpress.theory import baselines, diana, ef21, iscc, marina, neolithic
from commpress.theory._validate import as_theory, check_choice, check_int, nonneg, pos, prob
from commpress.theory.constants import ab_constants, aggregate_variance, contraction

__all__ = ["ALGORITHMS", "ALIASES", "FACTS", "default_stepsize", "default_params", "stepsize_report"]

#: Facts about the problem and the run that any method may be given (ignored where unused), so a
#: simulator can pass the same set to every method: horizon ``K`` (rounds) / ``T`` (budget),
#: samples per client ``m``, single-sample smoothness ``L_sample``, noise ``sigma2``,
#: ``delta0`` = f(x0) - f_inf, bits of a dense float ``float_bits``.
FACTS = ("K", "T", "m", "L_sample", "sigma2", "delta0", "float_bits")


class _Ctx:
    """What a builder gets: the inputs, validated lazily, and the unread keyword parameters."""

    def __init__(self, algorithm: str, smoothness: Any, compressor: Any, n: int, d: int, params: dict, allowed: tuple):
        self.name = algorithm
        self.n = check_int("n", n, algorithm)
        self.d = check_int("d", d, algorithm)
        self._smoothness = smoothness
        self._compressor = compressor
        unknown = sorted(set(params) - set(allowed) - set(FACTS))
        if unknown:
            hint = difflib.get_close_matches(unknown[0], allowed, n=1)
            raise ConfigError(
                f"{algorithm} does not take the parameter(s) {unknown}"
                + (f"; did you mean {hint[0]!r}?" if hint else ".")
                + f" Accepted: {sorted(allowed) or 'none'}."
            )
        self.params = params
        self._theory = None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.params.get(key)
        return default if value is None else value

    @property
    def sm(self) -> Any:
        if self._smoothness is None:
            raise ConfigError(
                f"{self.name} needs the smoothness constants (L_minus, L_plus, L_pm, L_i), but smoothness=None. "
                "Pass smoothness=problem.smoothness()."
            )
        return self._smoothness

    @property
    def th(self) -> Any:
        if self._theory is None:
            self._theory = as_theory(self._compressor, self.n, self.d, self.name)
        return self._theory


# ---------------------------------------------------------------------------- builders
Built = tuple[dict[str, Any], dict[str, Any]]  # (parameters of the method, constants used + source)


def _gd(c: _Ctx) -> Built:
    L = c.sm.L_minus
    return {"gamma": baselines.gd_stepsize(L)}, {"L_minus": L, "source": "GD descent lemma, 1/L_- [exact]"}


def _psgd(c: _Ctx) -> Built:
    L = c.sm.L_minus
    g = baselines.psgd_stepsize(L, c.n, delta0=c.get("delta0"), K=c.get("K"), sigma2=c.get("sigma2"))
    return {"gamma": g}, {"L_minus": L, "sigma2": c.get("sigma2"), "delta0": c.get("delta0"), "K": c.get("K"),
                          "source": "P-SGD, min{1/L_-, sqrt(2n Delta0/(L_- K sigma^2))} [exact, standard]"}


def _ab(c: _Ctx, *, compresses_gradients: bool = False) -> tuple[float, float]:
    """AB constants: explicit ``A``/``B``, else the compressor's under ``convention``.

    ``convention="homogeneous"`` needs identical compressor inputs: MARINA compresses gradient
    differences, identical when L_pm = 0; DCGD compresses the gradients themselves, identical
    only for identical clients. ``"auto"`` (default) picks homogeneous exactly in those cases.
    """
    conv = c.get("convention", "auto")
    if conv == "auto":
        identical_inputs = (not compresses_gradients) or bool(c.get("identical_clients", False))
        zero_variance = c.sm.L_pm <= 1e-12 * max(c.sm.L_plus, c.sm.L_minus)
        conv = "homogeneous" if identical_inputs and zero_variance else "rigorous"
    if c.get("A") is not None:
        return nonneg("A", c.get("A"), c.name), nonneg("B", c.get("B", 0.0), c.name)
    if conv == "homogeneous" and compresses_gradients and not c.get("identical_clients", False):
        raise ConfigError(
            f"{c.name}: convention='homogeneous' is valid only when every client compresses the same vector; "
            "for DCGD that needs identical clients. Pass identical_clients=True or use convention='rigorous'."
        )
    if conv == "homogeneous" and c.sm.L_pm > 1e-12 * max(c.sm.L_plus, c.sm.L_minus):  # round-off allowed
        raise ConfigError(
            f"{c.name}: convention='homogeneous' uses AB constants valid only for identical inputs "
            f"(zero Hessian variance), but L_pm={c.sm.L_pm} > 0. Use convention='rigorous'."
        )
    return ab_constants(c.th, c.n, c.d, convention=conv, owner=c.name)


def _dcgd(c: _Ctx) -> Built:
    A, B = _ab(c, compresses_gradients=True)
    sm = c.sm
    g = baselines.dcgd_stepsize(sm.L_minus, sm.L_max, A, B, K=c.get("K"),
                                identical_clients=bool(c.get("identical_clients", False)))
    return {"gamma": g}, {"L_minus": sm.L_minus, "L_max": sm.L_max, "A": A, "B": B, "K": c.get("K"),
                          "source": "DCGD/QSGD, ABC framework (Khaled & Richtarik 2020) [recalled]"}


def _omega(c: _Ctx) -> float:
    if c.get("omega") is not None:
        return nonneg("omega", c.get("omega"), c.name)
    th = c.th
    if th.omega is None or not math.isfinite(th.omega):
        raise ConfigError(
            f"{c.name} needs the variance constant omega of an unbiased compressor, but the compressor "
            f"(kind={th.kind!r}, delta={th.delta}) reports omega={th.omega}. Use an unbiased compressor "
            "(e.g. 'iq', 'qsgd', 'randk') or pass omega=... explicitly."
        )
    return float(th.omega)


def _omega_over_n(c: _Ctx, omega: float) -> float:
    if c.get("omega_over_n") is not None:
        return nonneg("omega_over_n", c.get("omega_over_n"), c.name)
    if c.get("omega") is not None:
        return omega / c.n  # an explicit omega is taken as independent compressors
    return aggregate_variance(c.th, c.n, c.name)


def _diana(c: _Ctx) -> Built:
    regime = check_choice("regime", c.get("regime", "nonconvex"), c.name, diana.DIANA_REGIMES)
    w = _omega(c)
    wn = _omega_over_n(c, w)
    L = pos("L", c.get("L"), c.name) if c.get("L") is not None else c.sm.L_max
    g = diana.diana_stepsize(L, w, c.n, regime=regime, omega_over_n=wn)
    alpha = c.get("alpha", diana.diana_alpha(w))
    return {"gamma": g, "alpha": alpha}, {"L": L, "omega": w, "omega_over_n": wn, "regime": regime,
                                          "source": "DIANA (Mishchenko et al. 2019); nonconvex: VR-DIANA Thm 3 with m=1 (Horvath et al. 2019)"}


def _need_L_sample(c: _Ctx) -> float:
    if c.get("L_sample") is None:
        raise ConfigError(
            f"{c.name} needs L_sample, the smoothness constant of every single-sample loss f_ij (the "
            "problem's L_i only bound the client averages). Pass L_sample=... (logistic loss: "
            "max_j ||a_j||^2 / 4 plus the regulariser's constant; quadratics: max_j ||A_ij||_2)."
        )
    return pos("L_sample", c.get("L_sample"), c.name)


def _vr_diana(c: _Ctx) -> Built:
    regime = check_choice("regime", c.get("regime", "nonconvex"), c.name, diana.VR_DIANA_REGIMES)
    variant = check_choice("variant", c.get("variant", "lsvrg"), c.name, ("lsvrg", "saga"))
    if c.get("m") is None:
        raise ConfigError(f"{c.name} needs m, the number of samples per client; pass m=... (problem.num_samples()).")
    m = check_int("m", c.get("m"), c.name)
    L = _need_L_sample(c)
    w = _omega(c)
    wn = _omega_over_n(c, w)
    out = {"gamma": diana.vr_diana_stepsize(L, w, c.n, m, regime=regime, omega_over_n=wn),
           "alpha": c.get("alpha", diana.diana_alpha(w))}
    if variant == "lsvrg":
        out["coin_p"] = 1.0 / m
    return out, {"L_sample": L, "omega": w, "omega_over_n": wn, "m": m, "regime": regime, "variant": variant,
                 "source": "VR-DIANA poster Theorems 1-3 [exact]"}


def _qsvrg(c: _Ctx) -> Built:
    L = _need_L_sample(c)
    w = _omega(c)
    wn = _omega_over_n(c, w)
    if c.get("epoch_length") is not None:
        T = check_int("epoch_length", c.get("epoch_length"), c.name)
    elif c.sm.mu > 0:
        T = max(1, math.ceil(L / c.sm.mu))
    elif c.get("m") is not None:
        T = check_int("m", c.get("m"), c.name)
    else:
        raise ConfigError(
            f"{c.name} needs an epoch length: pass epoch_length=..., or m=<samples per client>, or a "
            "smoothness record with mu > 0 (epoch length L/mu, Thm 3.6)."
        )
    return {"gamma": baselines.qsvrg_stepsize(L, wn), "epoch_length": T}, {
        "L_sample": L, "omega": w, "omega_over_n": wn,
        "source": "QSVRG (Alistarh et al. 2017, Thm 3.6 [recalled]); labelled default 1/(10 L (1+omega/n))"}


def _terngrad_adam(c: _Ctx) -> Built:
    out = baselines.terngrad_adam_defaults()
    for k in ("gamma", "beta1", "beta2", "eps"):
        if c.get(k) is not None:
            out[k] = float(c.get(k))
    return out, {"source": "Adam defaults (Kingma & Ba 2015); VR-DIANA baseline values [not recovered]"}


def _p_rule(c: _Ctx, r: float, zeta: float) -> tuple[float, str]:
    fb = c.get("float_bits", 32)
    rule = c.get("p", "optimal")
    if isinstance(rule, str):
        check_choice("p", rule, c.name, ("optimal", "bits_ratio"))
        if rule == "bits_ratio":
            return marina.marina_bits_ratio_p(c.d, zeta, float_bits=fb), rule
        z = zeta / (fb * c.d)
        p = marina.normalized_improvement_factor(r, z, p_min=c.get("p_min", marina.P_MIN))[1]
        return float(p), rule
    return prob("p", rule, c.name), "given"


def _marina(c: _Ctx) -> Built:
    variant = check_choice("variant", c.get("variant", "ab"), c.name, ("ab", "original"))
    sm, zeta = c.sm, float(c.get("zeta", 0.0) or c.th.bits)
    if variant == "original":
        w = _omega(c)
        if c.get("omega") is None and c.th.kind != "unbiased":
            raise ConfigError(f"{c.name} variant='original' (Gorbunov Thm 2.1) needs independent unbiased "
                              f"compressors; got kind={c.th.kind!r}. Use variant='ab'.")
        p, rule = _p_rule(c, math.sqrt(w / c.n), zeta)
        g = marina.marina_stepsize_original(sm.L_qm, w, c.n, p)
        return {"gamma": g, "p": p}, {"L_qm": sm.L_qm, "omega": w, "zeta": zeta, "p_rule": rule,
                                      "source": "MARINA, Gorbunov et al. 2021 Thm 2.1 [exact]"}
    A, B = _ab(c)
    K = marina.marina_variance_term(sm.L_plus, sm.L_pm, A, B)
    p, rule = _p_rule(c, math.sqrt(K) / sm.L_minus, zeta)
    g = marina.marina_stepsize(sm.L_minus, sm.L_plus, sm.L_pm, A, B, p)
    return {"gamma": g, "p": p}, {
        "L_minus": sm.L_minus, "L_plus": sm.L_plus, "L_pm": sm.L_pm, "A": A, "B": B, "zeta": zeta, "p_rule": rule,
        "convention": c.get("convention", "auto"),
        "source": "MARINA under the AB-inequality (Szlendak et al. 2021); p: CQ paper App. D.2.1 [exact]"}


def _weighted_smoothness(c: _Ctx, w: Any) -> tuple[float, float, str]:
    sm = c.sm
    if c.get("L_plus_w") is not None and c.get("L_pm_w") is not None:
        return pos("L_plus_w", c.get("L_plus_w"), c.name), nonneg("L_pm_w", c.get("L_pm_w"), c.name), "given"
    if w is None:
        return sm.L_plus, sm.L_pm, "uniform weights: L_plus, L_pm"
    w_t = torch.as_tensor(w, dtype=torch.float64).reshape(-1)
    if w_t.numel() != c.n or bool((w_t <= 0).any()) or abs(float(w_t.sum()) - 1.0) > 1e-6:
        raise ConfigError(f"{c.name} needs weights: n={c.n} positive numbers summing to 1; got {w_t.tolist()[:8]}.")
    w_t = w_t / w_t.sum()  # remove float32 round-off
    if torch.allclose(w_t, torch.full_like(w_t, 1.0 / c.n), rtol=1e-6, atol=0.0):
        return sm.L_plus, sm.L_pm, "uniform weights: L_plus, L_pm"
    try:
        Lp, Lpm = sm.weighted(w_t)
        return float(Lp), float(Lpm), "smoothness.weighted(w)"
    except NotImplementedError:
        pass
    L_i = torch.as_tensor(sm.L_i, dtype=torch.float64).reshape(-1)
    if L_i.numel() == c.n and float(L_i.sum()) > 0 and torch.allclose(w_t, L_i / L_i.sum(), rtol=1e-6, atol=0.0):
        return sm.L_am, sm.L_am, "w_i = L_i / sum L_j: L_{+,w}, L_{pm,w} <= L_AM"
    raise ConfigError(
        f"{c.name} needs the weighted constants L_plus_w and L_pm_w for these weights; the problem does not "
        "compute them. Pass L_plus_w=... and L_pm_w=..., or use weights w_i = L_i / sum_j L_j (then L_AM is used)."
    )


def _weighted_marina(c: _Ctx) -> Built:
    extras = c.th.extras if c._compressor is not None else {}
    w = c.get("weights", extras.get("weights"))
    if c.get("A") is not None:
        A, B = nonneg("A", c.get("A"), c.name), nonneg("B", c.get("B", 0.0), c.name)
    elif extras.get("WAB_A") is not None:  # combinatorial compressors (ISCC) report WAB(A, B, weights)
        A, B = float(extras["WAB_A"]), float(extras.get("WAB_B", 0.0))
    else:
        if w is not None:
            raise ConfigError(f"{c.name}: weights were given but not the weighted AB constants; pass A=... and B=...")
        A, B = _ab(c)
    Lp, Lpm, how = _weighted_smoothness(c, w)
    zeta = float(c.get("zeta", 0.0) or c.th.bits)
    K = marina.marina_variance_term(Lp, Lpm, A, B)
    p, rule = _p_rule(c, math.sqrt(K) / c.sm.L_minus, zeta)
    g = iscc.weighted_marina_stepsize(c.sm.L_minus, Lp, Lpm, A, B, p)
    return {"gamma": g, "p": p}, {"L_minus": c.sm.L_minus, "L_plus_w": Lp, "L_pm_w": Lpm, "weighted_constants": how,
                                  "A": A, "B": B, "zeta": zeta, "p_rule": rule,
                                  "source": "weighted MARINA, CQ paper Theorem 2 [recalled structure]"}


def _delta(c: _Ctx, *, allow_rescale: bool = False) -> tuple[float, float]:
    if c.get("delta") is not None:
        return prob("delta", c.get("delta"), c.name), 1.0
    return contraction(c.th, c.name, allow_rescale=allow_rescale)


def _L_class(c: _Ctx) -> float:
    return pos("L", c.get("L"), c.name) if c.get("L") is not None else c.sm.L_max


def _ef(c: _Ctx) -> Built:
    delta, _ = _delta(c)
    L = _L_class(c)
    return {"gamma": baselines.ef_stepsize(L, delta)}, {"L": L, "delta": delta,
                                                         "source": "EF/MEM-SGD labelled default delta/(4L) (ours)"}


def _cser(c: _Ctx) -> Built:
    delta, _ = _delta(c)
    L = _L_class(c)
    return {"gamma": baselines.cser_stepsize(L, delta)}, {"L": L, "delta": delta,
                                                           "source": "CSER labelled default delta/(4L) (ours)"}


def _ef21(c: _Ctx) -> Built:
    delta, _ = _delta(c)
    regime = check_choice("regime", c.get("regime", "nonconvex"), c.name, ("nonconvex", "pl"))
    sm = c.sm
    L_qm = pos("L_qm", c.get("L_qm"), c.name) if c.get("L_qm") is not None else sm.L_qm
    if regime == "pl":
        if not sm.mu > 0:
            raise ConfigError(
                f"{c.name} regime='pl' needs the PL/strong-convexity constant mu > 0; got smoothness.mu={sm.mu}."
            )
        g = ef21.ef21_stepsize_pl(sm.L_minus, L_qm, delta, sm.mu)
    else:
        g = ef21.ef21_stepsize(sm.L_minus, L_qm, delta)
    theta, beta = ef21.ef21_theta_beta(delta)
    return {"gamma": g}, {"L_minus": sm.L_minus, "L_qm": L_qm, "delta": delta, "theta": theta, "beta": beta,
                          "regime": regime, "source": "EF21 Thm 1 / Thm 2 (Richtarik et al. 2021) [exact]"}


def _ef21_sgd(c: _Ctx) -> Built:
    params, info = _ef21(c)
    info["source"] = "EF21-SGD: the EF21 stepsize, as the authors' scripts run it (Fatkhullin et al. 2021)"
    return params, info


def _double_squeeze(c: _Ctx) -> Built:
    L = _L_class(c)
    g = baselines.double_squeeze_stepsize(L, c.n, sigma2=c.get("sigma2"), K=c.get("K"),
                                          compression_error=c.get("compression_error"))
    return {"gamma": g}, {"L": L, "source": "DoubleSqueeze (Tang et al. 2019) [recalled]; 1/(4L) without noise terms"}


def _neolithic(c: _Ctx) -> Built:
    delta, scale = _delta(c, allow_rescale=True)
    L = _L_class(c)
    T = c.get("T")
    R = check_int("R", c.get("R"), c.name) if c.get("R") is not None else neolithic.neolithic_R(delta, T)
    K = c.get("K")
    if K is None and T is not None:
        K = max(1, int(pos("T", T, c.name)) // R)
    g = neolithic.neolithic_stepsize(L, c.n, R, delta0=c.get("delta0"), K=K, sigma2=c.get("sigma2"))
    out: dict[str, Any] = {"gamma": g, "R": R}
    if scale != 1.0:
        out["compressor_scale"] = scale
    return out, {"L": L, "delta": delta, "K": K, "T": T, "compressor_scale": scale,
                 "source": "NEOLITHIC (Huang et al. 2022), labelled defaults (R, gamma: ours)"}


_BUILDERS: dict[str, tuple[Callable[[_Ctx], Built], tuple[str, ...]]] = {
    "gd": (_gd, ()),
    "psgd": (_psgd, ("delta0", "K", "sigma2")),
    "dcgd": (_dcgd, ("K", "identical_clients", "A", "B", "convention")),
    "qsgd": (_dcgd, ("K", "identical_clients", "A", "B", "convention")),
    "diana": (_diana, ("regime", "alpha", "L", "omega", "omega_over_n")),
    "vr_diana": (_vr_diana, ("regime", "variant", "m", "L_sample", "alpha", "omega", "omega_over_n")),
    "qsvrg": (_qsvrg, ("L_sample", "epoch_length", "m", "omega", "omega_over_n")),
    "terngrad_adam": (_terngrad_adam, ("gamma", "beta1", "beta2", "eps")),
    "marina": (_marina, ("p", "p_min", "variant", "convention", "A", "B", "zeta", "float_bits", "omega")),
    "weighted_marina": (_weighted_marina, ("p", "p_min", "A", "B", "weights", "L_plus_w", "L_pm_w", "zeta",
                                           "float_bits", "convention")),
    "ef": (_ef, ("delta", "L")),
    "ef21": (_ef21, ("delta", "regime", "L_qm")),
    "ef21_sgd": (_ef21_sgd, ("delta", "regime", "L_qm")),
    "double_squeeze": (_double_squeeze, ("L", "sigma2", "K", "compression_error")),
    "cser": (_cser, ("delta", "L")),
    "neolithic": (_neolithic, ("delta", "L", "R", "T", "K", "delta0", "sigma2")),
}
#: Other accepted spellings.
ALIASES = {"dgd": "gd", "p-sgd": "psgd", "mem_sgd": "ef", "mem-sgd": "ef", "vr-diana": "vr_diana",
           "ef21-sgd": "ef21_sgd", "doublesqueeze": "double_squeeze", "weighted-marina": "weighted_marina",
           "iscc": "weighted_marina", "terngrad": "terngrad_adam"}

#: Modules of the newer method families: each holds its formulas and exports ``BUILDERS`` (name ->
#: (builder, accepted parameters)) and ``ALIASES``, merged here. They import the helpers above, so
#: they are imported once everything above is defined.
FAMILIES = ("bidirectional", "partial_participation", "lazy", "local_training", "second_order", "smoothness",
            "compression_limits")


def _merge_families() -> None:
    import importlib

    for family in FAMILIES:
        module = importlib.import_module(f"commpress.theory.{family}")
        clash = (set(module.BUILDERS) & set(_BUILDERS)) | (set(module.ALIASES) & set(ALIASES))
        if clash:
            raise RuntimeError(f"commpress.theory.{family} redefines {sorted(clash)}")
        _BUILDERS.update(module.BUILDERS)
        ALIASES.update(module.ALIASES)


_merge_families()
#: The algorithm names of the simulator.
ALGORITHMS = tuple(_BUILDERS)


def _build(algorithm: str, smoothness: Any, compressor: Any, n: int, d: int, params: dict) -> Built:
    if not isinstance(algorithm, str):
        raise ConfigError(f"algorithm must be a name (str); got {algorithm!r}.")
    key = algorithm.strip().lower()
    key = ALIASES.get(key, key)
    if key not in _BUILDERS:
        close = difflib.get_close_matches(key, list(_BUILDERS) + list(ALIASES), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(f"no theoretical stepsize for algorithm {algorithm!r}.{hint} Known: {list(ALGORITHMS)}.")
    builder, allowed = _BUILDERS[key]
    return builder(_Ctx(key, smoothness, compressor, n, d, dict(params), allowed))


def default_params(algorithm: str, smoothness: Any, compressor: Any, n: int, d: int, **params: Any) -> dict[str, Any]:
    r"""Every parameter ``algorithm`` needs, at its theoretical default (each builder's paper in ``source``).

    Keys: ``gamma`` always; MARINA / weighted MARINA ``p`` (``p="optimal"`` by default, CQ paper
    App. D.2.1; ``p="bits_ratio"`` for :math:`\zeta/(32d)`; or a number); DIANA / VR-DIANA ``alpha``
    (:math:`1/(\omega+1)`), VR-DIANA L-SVRG ``coin_p`` (:math:`1/m`); QSVRG ``epoch_length``; NEOLITHIC ``R``
    (and ``compressor_scale`` :math:`1/(1+\omega)` when an unbiased compressor is used through its
    contractive rescaling); TernGrad-Adam ``beta1``, ``beta2``, ``eps``. See the builders for the
    optional keyword parameters of each method.
    """
    return _build(algorithm, smoothness, compressor, n, d, params)[0]


def default_stepsize(algorithm: str, smoothness: Any, compressor: Any, n: int, d: int, **params: Any) -> float:
    """The theoretical stepsize :math:`\\gamma` of ``algorithm`` (see :func:`default_params`)."""
    return float(default_params(algorithm, smoothness, compressor, n, d, **params)["gamma"])


def stepsize_report(algorithm: str, smoothness: Any, compressor: Any, n: int, d: int, **params: Any) -> dict[str, Any]:
    """:func:`default_params` plus ``"constants"``: the constants used and the formula's source."""
    out, info = _build(algorithm, smoothness, compressor, n, d, params)
    return {**out, "constants": info}
