"""DASHA: compressed gradient differences with MARINA's estimator replaced by momentum (no dense rounds).

The client update is exposed for the variants (DASHA-PAGE, DASHA-MVR, DASHA-PP):
:func:`dasha_message` (the vector a client compresses) and :func:`dasha_update` (message, new
estimators and the server's mean in one call).
"""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import INIT_ROUND, Algorithm, algorithm_state, check_positive, compressor_theory
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

G0_CHOICES = ("zero", "grad")


def dasha_message(h_new: torch.Tensor, h: torch.Tensor, g_i: torch.Tensor, a: float) -> torch.Tensor:
    r"""The vector client i compresses in DASHA: :math:`h_i^{t+1}-h_i^t-a(g_i^t-h_i^t)`, rows ``(rows, d)``."""
    return h_new - h - a * (g_i - h)


def dasha_update(alg: Algorithm, h_new: torch.Tensor, h: torch.Tensor, g_i: torch.Tensor, g: torch.Tensor,
                 a: float, t: int, *more: int | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One DASHA communication: :math:`m_i=\mathcal C_i(h_i^{t+1}-h_i^t-a(g_i^t-h_i^t))` sent through
    ``alg``'s uplink (``alg.compressor``, round ``t``), :math:`g_i^{t+1}=g_i^t+m_i`,
    :math:`g^{t+1}=g^t+\frac1n\sum_im_i`. Returns ``(m, g_i_new, g_new)``."""
    m = alg._up(dasha_message(h_new, h, g_i, a), alg.compressor, t, *more)
    return m, g_i + m, g + alg.network.mean(m)


@algorithm_state
class DASHAState:
    x: torch.Tensor    # (d,)      server iterate x^t (every client holds the same copy)
    h_i: torch.Tensor  # (rows, d) client gradient estimators h_i^t
    g_i: torch.Tensor  # (rows, d) client states g_i^t (the server knows only their mean)
    g: torch.Tensor    # (d,)      g^t, the mean of the rows of g_i
    t: int             # round number


@register("dasha")
class DASHA(Algorithm):
    r"""DASHA (Tyurin, Richtárik, ICLR 2023, Algorithm 1).

    .. math::
        x^{t+1} = x^t-\gamma g^t,\qquad h_i^{t+1}=\nabla f_i(x^{t+1}),

        m_i^{t+1} = \mathcal C_i\big(h_i^{t+1}-h_i^t-a(g_i^t-h_i^t)\big),\qquad
        g_i^{t+1} = g_i^t+m_i^{t+1},\qquad g^{t+1} = g^t+\tfrac1n\textstyle\sum_i m_i^{t+1}.

    Every round sends only the compressed :math:`m_i` (no dense synchronisation, unlike MARINA); the
    server broadcasts :math:`g^t` (downlink compressor, float32 by default).
    Initialisation ``g0``: ``"zero"`` (:math:`g_i^0=0`, :math:`h_i^0=\nabla f_i(x^0)`, nothing sent: the
    authors' code; default) or ``"grad"`` (:math:`g_i^0=h_i^0=\nabla f_i(x^0)`, one dense uplink: the
    theorem's assumption; with the identity compressor DASHA is then GD).

    ``a=None``: :math:`a=1/(2\omega+1)` (authors' code). Stepsize (``gamma=None``):
    :math:`(L_-+\sqrt{16\omega(2\omega+1)/n}\,L_{QM})^{-1}` (theorem, recalled constant);
    ``variant="code"``: the code's :math:`(L_{AM}+L_{QM}\sqrt{\omega(4\omega+1)/n})^{-1}`.

    Args:
        compressor: independent unbiased compressors :math:`\mathcal C_i\in\mathbb U(\omega)` (e.g. RandK).
        a: momentum in (0, 1].
        g0: ``"zero"`` or ``"grad"``.
        variant: theoretical stepsize, ``"theorem"`` or ``"code"``.

    References:
        Tyurin, Richtárik, DASHA: Distributed nonconvex optimization with communication compression and
        optimal oracle complexity, ICLR 2023 (Alg. 1); authors' code mysteryresearcher/dasha.
    """

    g0_default = "zero"

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        a: float | None = None,
        g0: str | None = None,
        variant: str = "theorem",
        **oracle: Any,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        g0 = self.g0_default if g0 is None else g0
        if g0 not in self._g0_choices():
            raise ConfigError(f"{owner} needs g0 in {list(self._g0_choices())}; got g0={g0!r}.")
        self.g0 = g0
        if variant not in ("theorem", "code"):
            raise ConfigError(f"{owner} needs variant 'theorem' or 'code'; got variant={variant!r}.")
        self.variant = variant
        self.oracle = self._make_oracle(problem, owner, **oracle)
        self._setup(owner)
        self.a_source = "given" if a is not None else "theory"
        self.a = check_positive("a", a, owner, upper=1.0) if a is not None else self._default_a(owner)
        self._resolve_gamma()

    # ------------------------------------------------------------------ hooks of the variants
    def _g0_choices(self) -> tuple[str, ...]:
        return G0_CHOICES

    def _make_oracle(self, problem, owner: str, **oracle: Any) -> Oracle:
        if oracle:
            raise ConfigError(f"{owner} has no parameter {sorted(oracle)[0]!r} (DASHA uses exact local gradients; "
                              "use dasha_page or dasha_mvr for stochastic ones).")
        return Oracle(problem, self.network, owner=owner)

    def _setup(self, owner: str) -> None:
        """Variant settings, validated before the theory is asked."""

    def _omega(self) -> float | None:
        th = compressor_theory(self.compressor, self.n, self.d)
        if th is None or th.omega is None:
            return None
        return float(th.omega)

    def _default_a(self, owner: str) -> float:
        from commpress.theory.lazy import dasha_momentum

        w = self._omega()
        th = compressor_theory(self.compressor, self.n, self.d)
        if w is None or th is None or th.kind != "unbiased":
            raise ConfigError(
                f"{owner} needs an unbiased compressor (its omega sets the momentum a = 1/(2 omega + 1)); "
                f"{self.compressor.name!r} states none. Use e.g. compressor='randk', or pass a=... and gamma=... ."
            )
        return dasha_momentum(w)

    def _theory_params(self) -> dict[str, Any]:
        return {"a": self.a, "variant": self.variant}

    def _extra_params(self) -> dict[str, Any]:
        return {"a": self.a, "a_source": self.a_source, "g0": self.g0, "variant": self.variant}

    def _h_init(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`h_i^0`: the exact local gradients."""
        return self.oracle.exact(x)

    def _h_next(self, state: DASHAState, x: torch.Tensor, t: int) -> torch.Tensor:
        """:math:`h_i^{t+1}` at the new point ``x``: DASHA's exact local gradients."""
        return self.oracle.exact(x)

    # ------------------------------------------------------------------ rounds
    def init(self, x0: torch.Tensor | None = None) -> DASHAState:
        x = self._x0(x0)
        h = self._h_init(x)
        if self.g0 == "zero":
            g_i = torch.zeros_like(h)
        else:
            g_i = self._up(h, self.dense, INIT_ROUND)
        return DASHAState(x=x, h_i=h, g_i=g_i, g=self.network.mean(g_i), t=0)

    def step(self, state: DASHAState) -> DASHAState:
        t = state.t
        x = state.x - self.gamma * self._down(state.g, t)
        h_new = self._h_next(state, x, t)
        _, g_i, g = dasha_update(self, h_new, state.h_i, state.g_i, state.g, self.a, t)
        return DASHAState(x=x, h_i=h_new, g_i=g_i, g=g, t=t + 1)

    def known_gradient(self, state: DASHAState) -> torch.Tensor | None:
        # DASHA's h_i^t is the exact local gradient at x^t
        return self.network.mean(state.h_i) if type(self)._h_next is DASHA._h_next else None
