"""MARINA: compressed gradient differences with a shared coin for dense synchronisation."""

from __future__ import annotations

from typing import Any

import torch

from commpress import theory
from commpress._malloc import empty as _empty  # the (n, d) difference: first touch through huge pages
from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import INIT_ROUND, Algorithm, algorithm_state, check_positive, shared_uniform
from commpress.algorithms.registry import register
from commpress.errors import ConfigError


def _difference(G: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``G - H`` in a fresh buffer through huge pages (cheap first touch of an (n, d) result)."""
    if torch.is_grad_enabled() and (G.requires_grad or H.requires_grad):
        return G - H
    return torch.sub(G, H, out=_empty(G.shape, torch.result_type(G, H), G.device))


@algorithm_state
class MARINAState:
    x: torch.Tensor      # (d,)      x^k (server; clients keep the same copy)
    g: torch.Tensor      # (d,)      g^k, the server's gradient estimator
    grads: torch.Tensor  # (rows, d) each client's last local gradient ∇f_i(x^k)
    t: int               # round number k


@register("marina")
class MARINA(Algorithm):
    r"""MARINA (Gorbunov, Burlachenko, Li, Richtárik, ICML 2021, Algorithm 1).

    :math:`g^0 = \nabla f(x^0)` (every client sends its full gradient once, 32 d bits). Round k:

    .. math::
        x^{k+1} = x^k - \gamma g^k,\qquad c_k \sim \mathrm{Bernoulli}(p)\ \text{(shared)},

        g^{k+1} = \begin{cases}
            \frac1n\sum_i \nabla f_i(x^{k+1}) & c_k = 1 \text{ (dense, 32 d bits)}\\
            g^k + \frac1n\sum_i \mathcal Q_i\big(\nabla f_i(x^{k+1}) - \nabla f_i(x^k)\big) & c_k = 0.
        \end{cases}

    The coin is drawn from the shared stream of the round (seed ``derive_seed(seed, k, "coin")``,
    tag ``"marina/coin"``): same value on the server and every client, 0 bits. The server
    broadcasts :math:`g^k` (downlink compressor, float32 by default) and every replica steps with
    the received vector, so the copies of x stay identical. With ``p = 1`` this is GD iterate for
    iterate.

    Stepsize (``gamma=None``): :math:`1/M`, :math:`M = L_- + \sqrt{\frac{1-p}{p}((A-B)L_+^2 + B L_\pm^2)}`
    (Szlendak, Tyurin, Richtárik, ICLR 2022, MARINA under the AB-inequality) from
    ``theory.default_stepsize``.
    ``p=None``: the communication-optimal :math:`p^\star` of ``theory`` (CQ paper App. D.2.1),
    else ``p = ζ/(32 d)``.

    Args:
        compressor: the compressor of the difference messages (unbiased, or correlated with an
            unbiased mean: CQ, PermK).
        p: probability of a dense round, in (0, 1].
        convention: which AB constants the theoretical p and γ use (``theory.CONVENTIONS``):
            None/``"rigorous"`` (the compressor's proven constants), ``"homogeneous"`` (CQ's
            identical-inputs constant, valid when :math:`L_\pm = 0`) or ``"paper"`` (the CQ paper's).

    References:
        Gorbunov et al., MARINA: Faster non-convex distributed learning with compression, ICML
        2021, Alg. 1, Thm 2.1; Szlendak, Tyurin, Richtárik, Permutation compressors for provably
        faster distributed nonconvex optimization, 2021 (AB-inequality stepsize).
    """

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        p: float | None = None,
        convention: str | None = None,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        if convention is not None and convention not in theory.CONVENTIONS:
            raise ConfigError(f"{type(self).__name__} needs convention in {list(theory.CONVENTIONS)} or None; "
                              f"got convention={convention!r}.")
        self.convention = convention
        self.oracle = Oracle(problem, self.network, owner=type(self).__name__)
        self._setup()
        self.p = self._default_p() if p is None else check_positive("p", p, type(self).__name__, upper=1.0)
        self.p_source = "theory" if p is None else "given"
        self._resolve_gamma()

    def _setup(self) -> None:
        """Hook for subclasses (weighted MARINA builds its combinatorial compressor here)."""

    def _default_p(self) -> float:
        """The communication-optimal p of ``theory.default_params`` (CQ paper App. D.2.1)."""
        th = self._theory_compressor()
        if th is None:
            raise ConfigError(f"{self.name}: the compressor states no theory; pass p= explicitly.")
        try:
            params = theory.default_params(self.name, self.problem.smoothness(), th, self.n, self.d,
                                           **{**self._theory_params(), "p": "optimal"})
        except ConfigError as err:
            fix = ("Or pass p=<probability in (0, 1]> and gamma=<stepsize> (cp.simulate: p=, stepsize=; a TOML "
                   f"config: [run] params = {{p = ...}} and [run] stepsize) to run {self.name} without its "
                   "theoretical p and stepsize.")
            raise self._algorithm_hint(err, fix) from None
        return check_positive("p", params["p"], type(self).__name__, upper=1.0)

    def _theory_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if getattr(self, "p", None) is not None:
            out["p"] = self.p
        if self.convention is not None:
            out["convention"] = self.convention
        return out

    def _extra_params(self) -> dict[str, Any]:
        return {"p": self.p, "p_source": self.p_source, "convention": self.convention}

    def init(self, x0: torch.Tensor | None = None) -> MARINAState:
        x = self._x0(x0)
        G = self.oracle.exact(x)
        g = self.network.mean(self._up(G, self.dense, INIT_ROUND))
        return MARINAState(x=x, g=g, grads=G, t=0)

    def step(self, state: MARINAState) -> MARINAState:
        t = state.t
        x = state.x - self.gamma * self._down(state.g, t)
        G = self.oracle.exact(x)
        if self.coin(t):
            g = self.network.mean(self._up(G, self.dense, t))
        else:
            g = state.g + self._compressed_mean(_difference(G, state.grads), t)
        return MARINAState(x=x, g=g, grads=G, t=t + 1)

    def coin(self, t: int) -> bool:
        """Round ``t``'s shared coin c_k ~ Bernoulli(p): True sends dense gradients (0 bits to draw)."""
        return shared_uniform(self._seed(t, "coin"), "marina/coin") < self.p

    def known_gradient(self, state: MARINAState) -> torch.Tensor:
        # The clients hold their exact local gradients at x^k: their mean is ∇f(x^k).
        return self.network.mean(state.grads)

    def _compressed_mean(self, D: torch.Tensor, t: int) -> torch.Tensor:
        """The server's estimate of the mean of the rows of D from the compressed messages."""
        return self.network.mean(self._up(D, self.compressor, t))
