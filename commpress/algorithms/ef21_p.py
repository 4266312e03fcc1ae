"""EF21-P and friends: error feedback on the downlink, in the space of models.

The server keeps the exact model :math:`x^t` and the workers' model :math:`w^t`; it broadcasts only
:math:`\\mathcal C^P(x^{t+1}-w^t)` and every worker updates :math:`w` identically, so the compression
error is corrected in the model (nothing is lost over time). Gradients are evaluated at :math:`w^t`.
Three methods: ``ef21_p`` (dense uplink), ``ef21_p_diana`` (DIANA uplink, convex), ``ef21_p_marina``
(MARINA uplink, nonconvex).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms._shift import check_h0, initial_shifts
from commpress.algorithms.base import (
    INIT_ROUND,
    Algorithm,
    algorithm_state,
    check_positive,
    compressor_theory,
    contractive_scale,
    shared_uniform,
)
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

#: The downlink compressor when none is given: Top-K keeping 5% of the coordinates.
DEFAULT_DOWNLINK = {"name": "topk", "ratio": 0.05}
REGIMES = ("strongly_convex", "convex")


def primal_scale(algo: Algorithm, scale: Any) -> tuple[float, float | None]:
    """(factor, δ_P) of the downlink compressor :math:`\\mathcal C^P` (one vector: n = 1); a ConfigError
    when it is neither contractive nor unbiased-and-rescaled and no stepsize was given."""
    owner = type(algo).__name__
    factor, delta = contractive_scale(algo.downlink_compressor, 1, algo.d, scale, owner)
    if delta is None and algo._gamma_arg is None:
        th = compressor_theory(algo.downlink_compressor, 1, algo.d)
        kind = None if th is None else th.kind
        raise ConfigError(
            f"{owner} needs a contractive downlink compressor (C^P in B(alpha)); {algo.downlink_compressor!r} "
            f"(kind={kind!r}) states no contraction constant. Use e.g. downlink_compressor='topk', an unbiased one "
            "with scale='auto', or pass gamma=<stepsize>.")
    return factor, delta


def _require_unbiased(algo: Algorithm) -> None:
    th = algo._theory_compressor()
    if th is not None and th.kind not in ("unbiased", "correlated"):
        raise ConfigError(
            f"{type(algo).__name__} needs an unbiased uplink compressor (kind 'unbiased' or 'correlated', e.g. "
            f"'randk', 'iq', 'permk'); got {algo.compressor!r} of kind {th.kind!r} (contractive compressors such as "
            "'topk' belong on the downlink); pass compressor='randk' or another unbiased compressor.")


@algorithm_state
class EF21PState:
    x: torch.Tensor  # (d,) server model x^t
    w: torch.Tensor  # (d,) workers' model w^t (identical on every worker and mirrored by the server)
    t: int


class _PrimalEF(Algorithm):
    """Shared pieces: the downlink compressor :math:`\\mathcal C^P` with its scale and δ_P, the model step."""

    uses_compressor = True

    def _setup_primal(self, downlink_compressor: Any, scale: Any) -> None:
        if downlink_compressor is None:
            from commpress.algorithms.base import resolve_compressor

            self.downlink_compressor = resolve_compressor(DEFAULT_DOWNLINK, "downlink_compressor")
        self.scale, self.delta_p = primal_scale(self, scale)

    def _model_step(self, x_new: torch.Tensor, w: torch.Tensor, t: int) -> torch.Tensor:
        r""":math:`w^{t+1}=w^t+\mathcal C^P(x^{t+1}-w^t)`, the one broadcast message of the round."""
        return w + self.scale * self._down(x_new - w, t)

    def worker_model(self, state) -> torch.Tensor:
        """:math:`w^t`, the model the workers hold (gradients are evaluated there)."""
        return state.w


@register("ef21_p")
class EF21P(_PrimalEF):
    r"""EF21-P: error feedback in the primal space (Gruntkowska, Tyurin, Richtárik, ICML 2023).

    .. math::
        x^{t+1} = x^t - \gamma\,\tfrac1n\textstyle\sum_i\nabla f_i(w^t),\qquad
        w^{t+1} = w^t + \mathcal C^P\big(x^{t+1} - w^t\big),\qquad \mathcal C^P \in \mathbb B(\alpha_P).

    Workers send their gradients at :math:`w^t` densely (32 d bits); the server broadcasts
    :math:`\mathcal C^P(x^{t+1}-w^t)` (``downlink_compressor``, default Top-K with 5% of the coordinates),
    charged to every worker. With :math:`\mathcal C^P = I` it is GD (up to float rounding).
    ``scale="auto"`` turns an unbiased :math:`\mathcal C^P\in\mathbb U(\omega)` into the contractive
    :math:`\frac1{1+\omega}\mathcal C^P`. ``output`` is the server's :math:`x^t`; ``worker_model`` gives :math:`w^t`.

    Stepsize (``gamma=None``): :math:`(L + 4L/\alpha_P)^{-1}`, a library default (the paper's constants
    were not recovered; rate shape :math:`O(\frac L{\alpha_P\mu}\log\frac1\varepsilon)` recalled).

    Args:
        downlink_compressor: the contractive compressor :math:`\mathcal C^P` of the model shift.
        scale: ``"auto"``, None or a factor applied to the decoded downlink message.

    References:
        Gruntkowska, Tyurin, Richtárik, EF21-P and Friends: Improved Theoretical Communication
        Complexity for Distributed Optimization with Bidirectional Compression, ICML 2023 (arXiv 2209.15218).
    """

    uses_compressor = False

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, scale: Any = "auto") -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        self.oracle = Oracle(problem, self.network, owner=type(self).__name__)
        self._setup_primal(downlink_compressor, scale)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"delta_p": self.delta_p}

    def _extra_params(self) -> dict[str, Any]:
        return {"scale": self.scale, "delta_p": self.delta_p}

    def init(self, x0: torch.Tensor | None = None) -> EF21PState:
        x = self._x0(x0)
        return EF21PState(x=x, w=x.clone(), t=0)

    def step(self, state: EF21PState) -> EF21PState:
        t = state.t
        g = self.network.mean(self._up(self.oracle.exact(state.w), self.dense, t))
        x = state.x - self.gamma * g
        return EF21PState(x=x, w=self._model_step(x, state.w, t), t=t + 1)


@algorithm_state
class EF21PDIANAState:
    x: torch.Tensor    # (d,)      server model x^t
    w: torch.Tensor    # (d,)      workers' model w^t
    h_i: torch.Tensor  # (rows, d) client shifts h_i^t
    h: torch.Tensor    # (d,)      server shift h^t = mean of the h_i^t
    t: int


@register("ef21_p_diana")
class EF21PDIANA(_PrimalEF):
    r"""EF21-P + DIANA: DIANA uplink, EF21-P downlink (Gruntkowska, Tyurin, Richtárik, ICML 2023).

    .. math::
        m_i^t = \mathcal C^D_i\big(\nabla f_i(w^t) - h_i^t\big),\quad h_i^{t+1} = h_i^t + \beta m_i^t,\quad
        g^t = h^t + \tfrac1n\textstyle\sum_i m_i^t,\quad h^{t+1} = h^t + \tfrac\beta n\textstyle\sum_i m_i^t,

        x^{t+1} = x^t - \gamma g^t,\qquad w^{t+1} = w^t + \mathcal C^P(x^{t+1} - w^t).

    Uplink: independent :math:`\mathcal C^D_i \in \mathbb U(\omega)` (``compressor``); downlink: the broadcast
    :math:`\mathcal C^P \in \mathbb B(\alpha_P)` (``downlink_compressor``, default Top-K 5%). ``h0="grad"``
    (default) starts from :math:`h_i^0 = \nabla f_i(x^0)` (one dense uplink). With :math:`\mathcal C^P = I` it
    is DIANA (``alpha`` = β) up to float rounding.

    Theory (``gamma=None``): :math:`\beta = 1/(\omega+1)` (recalled) and the library default
    :math:`\gamma = \min\{\frac{\alpha_P}{16L}, \frac{n}{160\,\omega L_{\max}}, \frac{1}{2\mu(\omega+1)}\}` (shape of
    the paper's :math:`\tilde O(\frac L{\alpha_P\mu}+\frac{\omega L_{\max}}{n\mu}+\omega)`; its constants were
    not recovered), linear convergence for strongly convex f. ``regime="convex"`` drops the μ-term.

    Args:
        compressor: unbiased uplink compressor :math:`\mathcal C^D`.
        downlink_compressor: contractive :math:`\mathcal C^P`.
        alpha: shift stepsize β in (0, 1] (default :math:`1/(\omega+1)`).
        h0: ``"grad"`` or ``"zero"``.
        scale: downlink scale (``"auto"``: unbiased :math:`\mathcal C^P` rescaled by :math:`1/(1+\omega)`).
        regime: ``"strongly_convex"`` (default; μ from the problem, 0 if unknown) or ``"convex"``.

    References:
        Gruntkowska, Tyurin, Richtárik, EF21-P and Friends, ICML 2023 (arXiv 2209.15218);
        Mishchenko et al., Distributed learning with compressed gradient differences, 2019 (DIANA).
    """

    default_compressor = "randk"

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, alpha: float | None = None, h0: str = "grad",
                 scale: Any = "auto", regime: str = "strongly_convex") -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        self.oracle = Oracle(problem, self.network, owner=owner)
        _require_unbiased(self)
        self._setup_primal(downlink_compressor, scale)
        self.h0 = check_h0(h0, owner)
        if regime not in REGIMES:
            raise ConfigError(f"{owner} needs regime in {list(REGIMES)}; got regime={regime!r}.")
        self.regime = regime
        if alpha is None:
            th = self._theory_compressor()
            if th is None or th.omega is None or not math.isfinite(th.omega):
                raise ConfigError(f"{owner}: the compressor states no finite omega, so the default shift stepsize "
                                  "1/(omega+1) is unknown; pass alpha= in (0, 1].")
            self.alpha = 1.0 / (1.0 + th.omega)
        else:
            self.alpha = check_positive("alpha", alpha, owner, upper=1.0)
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"delta_p": self.delta_p, "alpha": self.alpha, "regime": self.regime}

    def _extra_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "h0": self.h0, "scale": self.scale, "delta_p": self.delta_p,
                "regime": self.regime}

    def init(self, x0: torch.Tensor | None = None) -> EF21PDIANAState:
        x = self._x0(x0)
        h_i, h = initial_shifts(self, self.h0, x)
        return EF21PDIANAState(x=x, w=x.clone(), h_i=h_i, h=h, t=0)

    def step(self, state: EF21PDIANAState) -> EF21PDIANAState:
        t = state.t
        M = self._up(self.oracle.exact(state.w) - state.h_i, self.compressor, t)
        m = self.network.mean(M)
        x = state.x - self.gamma * (state.h + m)
        return EF21PDIANAState(x=x, w=self._model_step(x, state.w, t), h_i=state.h_i + self.alpha * M,
                               h=state.h + self.alpha * m, t=t + 1)


@algorithm_state
class EF21PMARINAState:
    x: torch.Tensor      # (d,)      server model x^t
    w: torch.Tensor      # (d,)      workers' model w^t
    g: torch.Tensor      # (d,)      server's gradient estimator g^t
    grads: torch.Tensor  # (rows, d) each client's last local gradient ∇f_i(w^t)
    t: int


@register("ef21_p_marina")
class EF21PMARINA(_PrimalEF):
    r"""EF21-P + MARINA: MARINA uplink, EF21-P downlink (Gruntkowska, Tyurin, Richtárik, ICML 2023).

    :math:`w^0 = x^0`, :math:`g^0 = \nabla f(x^0)` (dense uplink). Round t:

    .. math::
        x^{t+1} = x^t - \gamma g^t,\qquad w^{t+1} = w^t + \mathcal C^P(x^{t+1} - w^t),\qquad
        b_t \sim \mathrm{Bernoulli}(p)\ \text{(shared)},

        g^{t+1} = \begin{cases} \frac1n\sum_i\nabla f_i(w^{t+1}) & b_t = 1\ \text{(dense)}\\
        g^t + \frac1n\sum_i\mathcal Q_i\big(\nabla f_i(w^{t+1}) - \nabla f_i(w^t)\big) & b_t = 0. \end{cases}

    The coin comes from the round's shared stream (tag ``"marina/coin"``, 0 bits), as MARINA's, so with
    :math:`\mathcal C^P = I` it is MARINA (same seeds) up to float rounding. ``output`` is :math:`x^t`.

    Theory (``gamma=None``): :math:`p = 1/(\omega+1)` and
    :math:`\gamma = \big(L + \frac{4L}{\alpha_P} + L_+\sqrt{8(1-p)\omega/(pn)}\big)^{-1}`, library defaults (the
    additive dependence on :math:`1/\alpha_P` and ω is the paper's; its constants were not recovered).

    Args:
        compressor: unbiased uplink compressor :math:`\mathcal Q_i`.
        downlink_compressor: contractive :math:`\mathcal C^P` (default Top-K 5%).
        p: probability of a dense uplink round.
        scale: downlink scale.

    References:
        Gruntkowska, Tyurin, Richtárik, EF21-P and Friends, ICML 2023 (arXiv 2209.15218); Gorbunov et al.,
        MARINA, ICML 2021.
    """

    default_compressor = "randk"

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, p: float | None = None, scale: Any = "auto") -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        self.oracle = Oracle(problem, self.network, owner=owner)
        _require_unbiased(self)
        self._setup_primal(downlink_compressor, scale)
        if p is None:
            th = self._theory_compressor()
            if th is None or th.omega is None or not math.isfinite(th.omega):
                raise ConfigError(f"{owner}: the compressor states no finite omega, so the default p = 1/(omega+1) "
                                  "is unknown; pass p= in (0, 1].")
            self.p, self.p_source = 1.0 / (1.0 + th.omega), "1/(omega+1)"
        else:
            self.p, self.p_source = check_positive("p", p, owner, upper=1.0), "given"
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {"delta_p": self.delta_p, "p": self.p}

    def _extra_params(self) -> dict[str, Any]:
        return {"p": self.p, "p_source": self.p_source, "scale": self.scale, "delta_p": self.delta_p}

    def coin(self, t: int) -> bool:
        """Round ``t``'s shared coin :math:`b_t \\sim \\mathrm{Bernoulli}(p)` (MARINA's seed and tag)."""
        return shared_uniform(self._seed(t, "coin"), "marina/coin") < self.p

    def init(self, x0: torch.Tensor | None = None) -> EF21PMARINAState:
        x = self._x0(x0)
        G = self.oracle.exact(x)
        g = self.network.mean(self._up(G, self.dense, INIT_ROUND))
        return EF21PMARINAState(x=x, w=x.clone(), g=g, grads=G, t=0)

    def step(self, state: EF21PMARINAState) -> EF21PMARINAState:
        t = state.t
        x = state.x - self.gamma * state.g
        w = self._model_step(x, state.w, t)
        G = self.oracle.exact(w)
        if self.coin(t):
            g = self.network.mean(self._up(G, self.dense, t))
        else:
            g = state.g + self.network.mean(self._up(G - state.grads, self.compressor, t))
        return EF21PMARINAState(x=x, w=w, g=g, grads=G, t=t + 1)
