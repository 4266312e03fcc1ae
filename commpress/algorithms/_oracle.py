"""Gradient oracles of the local clients: exact, minibatch, or with additive Gaussian noise.

All draws are keyed by a round seed: minibatches through the problem's
``minibatch_grads(x, generator, batch_size)`` with the shared generator of the round
(tag ``"oracle/minibatch"``), Gaussian noise and sample indices through private per-client
streams (tags ``"oracle/noise"``, ``"oracle/index"``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._rng import shared_generator
from commpress.errors import ConfigError
from commpress.network import Network
from commpress.problems.base import Problem

_TINY = 2.0**-60


class Oracle:
    r"""The clients' gradient oracle :math:`O_i(x;\zeta)`.

    - ``batch_size=None, noise=0``: exact local gradients :math:`\nabla f_i(x)`;
    - ``batch_size=b``: the problem's ``minibatch_grads`` (finite sums: b samples drawn uniformly
      with replacement; problems with their own stochastic oracle, e.g. the quadratics'
      ``grad_noise``: that oracle with batch b);
    - ``noise=σ``: :math:`\nabla f_i(x) + \sigma\,\xi_i/\sqrt d`, :math:`\xi_i \sim \mathcal N(0, I_d)`,
      so :math:`\mathbb E\|O_i - \nabla f_i\|^2 = \sigma^2` (a bounded-variance oracle on any problem).
    Both may be combined. Points are ``(d,)`` (all clients at x) or ``(rows, d)`` (client i at its
    own point); only the local clients (``network.clients``) are asked.
    """

    def __init__(self, problem: Problem, network: Network, *, batch_size: Any = None, noise: Any = 0.0, owner: str = "") -> None:
        self.problem = problem
        self.network = network
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise ConfigError(f"{owner} needs batch_size None (exact gradients) or an integer >= 1; got {batch_size!r}.")
            own_oracle = type(problem).minibatch_grads is not Problem.minibatch_grads
            if problem.num_samples() is None and not own_oracle:
                raise ConfigError(
                    f"{owner}: batch_size={batch_size} needs a finite-sum problem or one with a stochastic "
                    f"oracle ({problem.name or type(problem).__name__} has neither); use noise=<sigma> instead."
                )
        try:
            noise = float(noise)
        except (TypeError, ValueError):
            raise ConfigError(f"{owner} needs a number noise >= 0; got noise={noise!r}.") from None
        if not (noise >= 0 and math.isfinite(noise)):
            raise ConfigError(f"{owner} needs noise >= 0 (std of the gradient noise); got noise={noise!r}.")
        self.batch_size = batch_size
        self.noise = noise
        self._clients = None if network.is_full else network.clients

    @property
    def stochastic(self) -> bool:
        return self.batch_size is not None or self.noise > 0

    def params(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "noise": self.noise}

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\nabla f_i` of the local clients at ``x`` (``(d,)`` or ``(rows, d)``): ``(rows, d)``."""
        return self.problem.client_grads(x, clients=self._clients)

    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """One oracle call per local client at ``x`` with round seed ``seed``: ``(rows, d)``."""
        if self.batch_size is None:
            G = self.exact(x)
        else:
            gen = shared_generator(seed, "oracle/minibatch")
            G = self.problem.minibatch_grads(x, gen, self.batch_size, clients=self._clients)
        return self._add_noise(G, seed)

    def at(self, X: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Client i's oracle at its own point ``X[i]`` (``(rows, d)``); exact when ``seed`` is None."""
        return self.exact(X) if seed is None else self(X, seed)

    # ------------------------------------------------------------------ finite sums
    def num_samples(self) -> torch.Tensor:
        """m_i of the local clients, ``(rows,)`` int64."""
        m = self.problem.num_samples()
        if m is None:
            raise ConfigError(
                "this method needs a finite-sum problem (per-sample gradients); "
                f"{self.problem.name or type(self.problem).__name__} is not one."
            )
        return self.network.local(torch.as_tensor(m, dtype=torch.int64))

    def sample_index(self, seed: int, tag: str = "oracle/index") -> torch.Tensor:
        """One uniform sample index per local client, :math:`j_i \\in [0, m_i)`: ``(rows,)`` int64.

        Row i is client i's private draw (a pure function of (seed, tag, i)).
        """
        m = self.num_samples()
        u = self.network.private_rand(seed, tag, (), device=m.device)  # the same bits on every device
        return torch.minimum((u * m.to(u.dtype)).floor().to(torch.int64), m - 1)

    def samples(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """:math:`\\nabla f_{i, j_i}(x)` of the local clients, ``(rows, d)``; ``index`` is ``(rows,)``."""
        return self.problem.sample_grads(x, index, clients=self._clients)

    # ------------------------------------------------------------------ helpers
    def _add_noise(self, G: torch.Tensor, seed: int) -> torch.Tensor:
        if self.noise == 0:
            return G
        d = G.shape[1]
        u = self.network.private_rand(seed, "oracle/noise", (d,), dtype=torch.float64, device=G.device)
        u = u.clamp_(min=_TINY)
        xi = torch.special.ndtri(u).to(G.dtype)
        return G + (self.noise / math.sqrt(d)) * xi
