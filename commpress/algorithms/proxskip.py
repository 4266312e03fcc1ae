"""ProxSkip / Scaffnew: local gradient steps with control variates, communication with probability p."""

from __future__ import annotations

from typing import Any

import torch

from commpress import theory
from commpress.algorithms._oracle import Oracle
from commpress.algorithms._prox import check_regularizer, prox
from commpress.algorithms.base import Algorithm, algorithm_state, check_positive, shared_uniform
from commpress.algorithms.registry import register
from commpress.compressors import make as make_compressor
from commpress.compressors._checks import check_float_bits
from commpress.errors import ConfigError


@algorithm_state
class ProxSkipState:
    x: torch.Tensor      # (d,)      server model: the prox output of the last communication (x^0 before any)
    X: torch.Tensor      # (rows, d) client iterates x_{i,t}
    H: torch.Tensor      # (rows, d) control variates h_{i,t}
    G: torch.Tensor      # (rows, d) the gradients at X (cached: exact oracle) or of the last step (stochastic)
    grads: torch.Tensor  # (rows,)   int64, gradient computations of each client so far
    comms: int           # communication rounds so far
    t: int               # iteration (local step) number


class _LocalTraining(Algorithm):
    """Shared machinery: the shared coin, the gradient cache and its ledger, the theory parameters."""

    #: Tag of the shared communication coin (one draw per iteration, 0 bits).
    coin_tag = "proxskip/coin"

    def coin(self, t: int) -> bool:
        r"""Iteration ``t``'s shared coin :math:`\theta_t\sim\mathrm{Bernoulli}(p)`: True communicates."""
        return shared_uniform(self._seed(t, "coin"), self.coin_tag) < self.p

    def _p_and_gamma(self, p: Any, mu: Any) -> None:
        owner = type(self).__name__
        self.mu = None if mu is None else check_positive("mu", mu, owner)
        if p is None:
            params = self._theory_defaults()
            self.p, self.p_source = check_positive("p", params["p"], owner, upper=1.0), "theory"
        else:
            self.p, self.p_source = check_positive("p", p, owner, upper=1.0), "given"

    def _theory_defaults(self) -> dict[str, Any]:
        try:
            return theory.default_params(self.name, self.problem.smoothness(), None, self.n, self.d,
                                         **{k: v for k, v in self._theory_params().items() if v is not None})
        except ConfigError as err:
            raise self._algorithm_hint(err, f"Or pass p=<probability in (0, 1]> and gamma=<stepsize> to run "
                                            f"{self.name} without its theoretical parameters.") from None

    def _theory_compressor(self):
        return None  # the stepsize needs no compressor constant

    def _theory_params(self) -> dict[str, Any]:
        return {"p": getattr(self, "p", None), "mu": self.mu}

    def _init_clients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = self.network.rows
        X = x.expand(rows, self.d).clone()
        G = self.oracle.exact(X)
        return X, torch.zeros_like(X), G, torch.ones(rows, dtype=torch.int64)

    def _gradients(self, X: torch.Tensor, G: torch.Tensor, grads: torch.Tensor, t: int):
        """Gradients at the rows of ``X`` and the updated computation counts.

        Exact oracle: ``G`` holds the gradients at ``X`` already (computed when the rows moved).
        Stochastic oracle: a fresh draw for every client, every iteration.
        """
        if self.oracle.stochastic:
            return self.oracle.at(X, self._seed(t, "oracle")), grads + 1
        return G, grads

    def _refresh(self, X_new: torch.Tensor, X_old: torch.Tensor, G: torch.Tensor, grads: torch.Tensor):
        """Exact oracle: recompute the gradients of the rows that moved (a client whose iterate did not
        change computes nothing) and count them."""
        if self.oracle.stochastic:
            return G, grads
        moved = (X_new != X_old).any(dim=1)
        if not bool(moved.any()):
            return G, grads
        fresh = self.oracle.exact(X_new)
        return torch.where(moved[:, None], fresh, G), grads + moved.to(device=grads.device, dtype=torch.int64)


@register("proxskip")
class ProxSkip(_LocalTraining):
    r"""ProxSkip (Mishchenko, Malinovsky, Stich, Richtárik, ICML 2022, Algorithms 1-2), federated form.

    ProxSkip on the lifted problem :math:`\sum_i f_i(x_i) + \psi(X)`, :math:`\psi` = consensus
    indicator + :math:`\sum_i R(x_i)`, whose prox is "average, then :math:`\mathrm{prox}_R`". Client i
    keeps :math:`x_i, h_i` (rows of ``(n, d)`` tensors), :math:`h_{i,0}=0`; iteration t:

    .. math::
        \hat x_{i,t+1} = x_{i,t} - \gamma\big(g_{i,t} - h_{i,t}\big),\qquad
        \theta_t \sim \mathrm{Bernoulli}(p)\ \text{(shared)},

        x_{i,t+1} = \begin{cases}
            \mathrm{prox}_{\frac\gamma p R}\Big(\frac1n\sum_j\big(\hat x_{j,t+1} - \frac\gamma p h_{j,t}\big)\Big) & \theta_t = 1\\
            \hat x_{i,t+1} & \theta_t = 0,
        \end{cases}\qquad
        h_{i,t+1} = h_{i,t} + \frac p\gamma\big(x_{i,t+1} - \hat x_{i,t+1}\big).

    :math:`g_{i,t}=\nabla f_i(x_{i,t})` or the stochastic oracle (``batch_size``, ``noise``). Without
    a regulariser this is Scaffnew (registered as ``"scaffnew"``); equivalently a Geometric(p)
    number of local steps, then one averaging round. The coin is drawn from the shared stream of the
    iteration (seed ``derive_seed(seed, t, "coin")``, tag ``"proxskip/coin"``): all clients agree,
    0 bits. Only on :math:`\theta_t=1` does anything move: every client sends
    :math:`\hat x_j-\frac\gamma p h_j` (32 d bits; robust to round-off where :math:`\sum_jh_j` should
    vanish) and receives the new model (32 d bits); other iterations cost 0 bits. With ``p = 1``
    and exact arithmetic this is GD iterate for iterate.

    ``output(state)`` is the server model (the last communication's prox output), the point every
    client agrees on. The state counts each client's gradient computations (``grads``): a client
    computes a gradient only when its iterate moved (exact oracle).

    Defaults (``gamma=None``, ``p=None``): :math:`\gamma=1/L_{\max}` (the lifted problem's smoothness),
    :math:`p=\sqrt{\gamma\mu}` (:math:`=1/\sqrt\kappa`), μ the strong convexity of every
    :math:`f_i` (``mu=``, default the problem's μ); the rate is :math:`\min\{\gamma\mu,p^2\}` per
    iteration (ProxSkip's main theorem). With μ = 0 the default p is undefined: pass ``p=``.

    Args:
        p: communication probability in (0, 1].
        float_bits: width of the model messages, 32 (the papers' dense wire, default) or 64 (exact);
            also the downlink's unless ``downlink_compressor`` is given. Compressed local training
            is ``compressed_scaffnew`` / ``tamuna``.
        mu: strong-convexity constant used by the default p.
        reg, lam: regulariser R: None, ``"l1"`` (λ‖x‖₁) or ``"l2"`` (λ/2‖x‖²), applied at the server.
        batch_size, noise: stochastic oracle.

    References:
        Mishchenko, Malinovsky, Stich, Richtárik, ProxSkip: Yes! Local gradient steps provably lead to
        communication acceleration! Finally!, ICML 2022, Algorithms 1 (ProxSkip) and 2 (Scaffnew).
    """

    uses_compressor = False
    #: Whether the regulariser may be set (Scaffnew: consensus only).
    takes_regularizer = True

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
        mu: float | None = None,
        reg: str | None = None,
        lam: float = 0.0,
        float_bits: int = 32,
        batch_size: int | None = None,
        noise: float = 0.0,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        self.float_bits = check_float_bits(float_bits, owner)
        self.compressor = make_compressor("identity", float_bits=self.float_bits)
        if downlink_compressor is None:
            self.downlink_compressor = make_compressor("identity", float_bits=self.float_bits)
        if not self.takes_regularizer and reg is not None:
            raise ConfigError(f"{owner} solves the consensus problem only; got reg={reg!r}. Use 'proxskip' for a "
                              "regulariser.")
        self.reg, self.lam = check_regularizer(reg, lam, owner)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self._p_and_gamma(p, mu)
        self._resolve_gamma()

    def _extra_params(self) -> dict[str, Any]:
        return {"p": self.p, "p_source": self.p_source, "mu": self.mu, "reg": self.reg, "lam": self.lam,
                "float_bits": self.float_bits, **self.oracle.params()}

    def init(self, x0: torch.Tensor | None = None) -> ProxSkipState:
        x = self._x0(x0)
        X, H, G, grads = self._init_clients(x)
        return ProxSkipState(x=x, X=X, H=H, G=G, grads=grads, comms=0, t=0)

    def _control(self, G: torch.Tensor, H: torch.Tensor, t: int) -> torch.Tensor:
        """The control variate used by the local step (GradSkip replaces it)."""
        return H

    def step(self, state: ProxSkipState) -> ProxSkipState:
        t, g, p = state.t, self.gamma, self.p
        G, grads = self._gradients(state.X, state.G, state.grads, t)
        H = self._control(G, state.H, t)
        X_hat = state.X - g * (G - H)
        if self.coin(t):
            sent = self._up(X_hat - (g / p) * H, self.compressor, t)
            x = self._down(prox(self.network.mean(sent), g / p, self.reg, self.lam), t)
            X = x.expand_as(X_hat).clone()
            H = H + (p / g) * (X - X_hat)
            comms = state.comms + 1
        else:
            x, X, comms = state.x, X_hat, state.comms
        G, grads = self._refresh(X, state.X, G, grads)
        return ProxSkipState(x=x, X=X, H=H, G=G, grads=grads, comms=comms, t=t + 1)


@register("scaffnew")
class Scaffnew(ProxSkip):
    r"""Scaffnew (Mishchenko, Malinovsky, Stich, Richtárik, ICML 2022, Algorithm 2): ProxSkip for federated
    consensus, :math:`\min_x\frac1n\sum_if_i(x)`.

    .. math::
        \hat x_{i,t+1} = x_{i,t} - \gamma\big(\nabla f_i(x_{i,t}) - h_{i,t}\big),\qquad
        x_{i,t+1} = \begin{cases}\frac1n\sum_j\big(\hat x_{j,t+1}-\frac\gamma p h_{j,t}\big) & \theta_t=1\\
        \hat x_{i,t+1} & \theta_t=0\end{cases},

        h_{i,t+1} = h_{i,t} + \frac p\gamma\big(x_{i,t+1}-\hat x_{i,t+1}\big),\qquad \textstyle\sum_ih_{i,0}=0.

    :class:`ProxSkip` without a regulariser (same coins, same ledger, same defaults
    :math:`\gamma=1/L_{\max}`, :math:`p=\sqrt{\gamma\mu}`): :math:`O(\sqrt\kappa\log\frac1\varepsilon)`
    communication rounds with no data-similarity assumption.

    References:
        Mishchenko, Malinovsky, Stich, Richtárik, ProxSkip, ICML 2022, Algorithm 2 (Scaffnew).
    """

    takes_regularizer = False

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, p: float | None = None, mu: float | None = None,
                 float_bits: int = 32, batch_size: int | None = None, noise: float = 0.0) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         p=p, mu=mu, float_bits=float_bits, batch_size=batch_size, noise=noise)
