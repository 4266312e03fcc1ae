"""MARINA-P: downlink compression with correlated per-worker compressors (workers' models differ)."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import (
    INIT_ROUND,
    Algorithm,
    algorithm_state,
    check_positive,
    compressor_theory,
    shared_uniform,
)
from commpress.algorithms.registry import register
from commpress.compressors import make as make_compressor
from commpress.errors import ConfigError

MESSAGES = ("individual", "same")


@algorithm_state
class MARINAPState:
    x: torch.Tensor    # (d,)      server model x^t
    g: torch.Tensor    # (d,)      g^t = mean_i ∇f_i(w_i^t)
    w_i: torch.Tensor  # (rows, d) each worker's model w_i^t
    t: int


@register("marina_p")
class MARINAP(Algorithm):
    r"""MARINA-P (Gruntkowska, Tyurin, Richtárik 2024, arXiv 2402.06412): MARINA on the downlink.

    :math:`w_i^0 = x^0`; workers send exact gradients (dense uplink). Round t:

    .. math::
        g^t = \tfrac1n\textstyle\sum_i\nabla f_i(w_i^t),\qquad x^{t+1} = x^t - \gamma g^t,\qquad
        c_t \sim \mathrm{Bernoulli}(p)\ \text{(shared)},

        w_i^{t+1} = \begin{cases} x^{t+1} & c_t = 1\ \text{(dense model to every worker)}\\
        w_i^t + \mathcal Q_i^t\big(x^{t+1} - x^t\big) & c_t = 0\ \text{(worker i's own message)}. \end{cases}

    ``messages="individual"`` (default): worker i receives row i of the compressor applied to n copies of
    :math:`x^{t+1}-x^t`, keyed by client, so PermK (shared permutation) splits the coordinates across the
    workers (θ = 0) and RandK draws independently (θ = ω/n); each worker is charged its own payload.
    ``messages="same"``: one draw broadcast to all (θ = ω). The coin uses tag ``"marina/coin"`` (0 bits).
    The dense model goes out with ``model_float_bits`` (32) bits per value. With ``p = 1`` (and 64-bit model
    messages), or :math:`\mathcal Q_i = I`, it is GD.

    Stepsize (``gamma=None``): :math:`\big(L+\sqrt{\frac{1-p}p}\sqrt{\omega L_A^2+\theta L_B^2}\big)^{-1}`,
    :math:`p = 1/n` (recalled form). :math:`(L_A, L_B)`: given, else for quadratic problems the best
    split of :math:`a=\frac1n\sum\|A_i-\bar A\|^2`, :math:`b=\|\bar A\|^2` (derived), else
    :math:`(L_{\max}, 0)` (always valid).

    Args:
        downlink_compressor: unbiased (or correlated) compressor set :math:`\mathcal Q_i` (default PermK).
        p: probability of a dense model round (default 1/n).
        messages: ``"individual"`` or ``"same"``.
        L_A, L_B: constants of the functional :math:`(L_A, L_B)` inequality (optional).
        model_float_bits: 32 or 64, the precision of the dense model broadcast.

    References:
        Gruntkowska, Tyurin, Richtárik, Improving the worst-case bidirectional communication complexity
        for nonconvex distributed optimization under function similarity, 2024 (arXiv 2402.06412).
    """

    uses_compressor = False

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, p: float | None = None, messages: str = "individual",
                 L_A: float | None = None, L_B: float | None = None, model_float_bits: int = 32) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed,
                         downlink_compressor="permk" if downlink_compressor is None else downlink_compressor)
        owner = type(self).__name__
        if messages not in MESSAGES:
            raise ConfigError(f"{owner} needs messages in {list(MESSAGES)}; got messages={messages!r}.")
        self.messages = messages
        if model_float_bits not in (32, 64):
            raise ConfigError(f"{owner} needs model_float_bits 32 or 64; got {model_float_bits!r}.")
        self.model_float_bits = model_float_bits
        self.model_compressor = make_compressor("identity", float_bits=model_float_bits)
        self.oracle = Oracle(problem, self.network, owner=owner)
        self.p = 1.0 / self.n if p is None else check_positive("p", p, owner, upper=1.0)
        self.p_source = "1/n" if p is None else "given"
        self.L_A = None if L_A is None else check_positive("L_A", L_A, owner) if L_A != 0 else 0.0
        self.L_B = None if L_B is None else check_positive("L_B", L_B, owner) if L_B != 0 else 0.0
        th = self._theory_compressor()
        if messages == "same" and th is not None and th.kind == "correlated":
            raise ConfigError(
                f"{owner}: messages='same' sends one draw of {self.downlink_compressor!r} to every worker, but a "
                "correlated compressor (PermK, CQ) needs one message per worker; pass messages='individual', or "
                "an independent compressor such as downlink_compressor='randk'.")
        if th is not None and th.kind not in ("unbiased", "correlated") and gamma is None:
            raise ConfigError(
                f"{owner} needs unbiased downlink compressors (e.g. 'permk', 'randk'); got {self.downlink_compressor!r} "
                f"of kind {th.kind!r}. A contractive one such as 'topk' needs error feedback: use 'ef21_p'.")
        self._resolve_gamma()

    def _theory_compressor(self):
        return compressor_theory(self.downlink_compressor, self.n, self.d)

    def _similarity(self) -> tuple[float, float] | None:
        from commpress.problems._quadratic_base import _Quadratic
        from commpress.theory.bidirectional import marina_p_similarity

        if not isinstance(self.problem, _Quadratic):
            return None
        return marina_p_similarity(self.problem.hessians())

    def _theory_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"p": self.p, "messages": self.messages}
        if self.L_A is not None or self.L_B is not None:
            out.update(L_A=self.L_A, L_B=self.L_B)
        else:
            out["similarity"] = self._similarity()
        return out

    def _extra_params(self) -> dict[str, Any]:
        return {"p": self.p, "p_source": self.p_source, "messages": self.messages, "L_A": self.L_A, "L_B": self.L_B,
                "model_float_bits": self.model_float_bits}

    def coin(self, t: int) -> bool:
        """Round ``t``'s shared coin :math:`c_t \\sim \\mathrm{Bernoulli}(p)` (0 bits)."""
        return shared_uniform(self._seed(t, "coin"), "marina/coin") < self.p

    def init(self, x0: torch.Tensor | None = None) -> MARINAPState:
        x = self._x0(x0)
        w_i = x.expand(self.network.rows, self.d).clone()
        g = self.network.mean(self._up(self.oracle.exact(w_i), self.dense, INIT_ROUND))
        return MARINAPState(x=x, g=g, w_i=w_i, t=0)

    def step(self, state: MARINAPState) -> MARINAPState:
        t = state.t
        x = state.x - self.gamma * state.g
        if self.coin(t):
            w_i = self._down(x, t, compressor=self.model_compressor).expand(self.network.rows, self.d).clone()
        elif self.messages == "same":
            w_i = state.w_i + self._down(x - state.x, t)
        else:
            V = (x - state.x).expand(self.network.rows, self.d)
            w_i = state.w_i + self.network.downlink_rows(V, self.downlink_compressor, self._seed(t, "downlink"),
                                                         round=t)
        g = self.network.mean(self._up(self.oracle.exact(w_i), self.dense, t))
        return MARINAPState(x=x, g=g, w_i=w_i, t=t + 1)
