"""The distributed problem interface: f(x) = (1/n) sum_i f_i(x).

Every problem holds n clients in one object and answers for all of them in one batched call
(``client_grads(x)`` is ``(n, d)``, no Python loop over clients). Finite-sum problems (each
f_i an average over m_i samples) also give per-sample and minibatch gradients for the
variance-reduced and stochastic methods. Smoothness constants are reported with a flag that
says whether they are exact or bounds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Smoothness:
    """Smoothness constants (spec ``problems.md`` §1).

    ``L_i``: per client, ``(n,)``. ``L_minus``: of f (GD's L). ``L_plus``: mean-square.
    ``L_pm``: Hessian variance L_±. ``mu``: strong convexity of f (0 if not known/none).
    ``exact``: True when every constant is the smallest one (quadratics); False when some are
    upper bounds (then ``notes`` says which).
    """

    L_i: torch.Tensor
    L_minus: float
    L_plus: float
    L_pm: float
    mu: float = 0.0
    exact: bool = True
    notes: str = ""

    @property
    def L(self) -> float:
        return self.L_minus

    @property
    def L_max(self) -> float:
        return float(self.L_i.max())

    @property
    def L_am(self) -> float:
        return float(self.L_i.mean())

    @property
    def L_qm(self) -> float:
        return float(self.L_i.pow(2).mean().sqrt())

    def weighted(self, w: torch.Tensor) -> tuple[float, float]:
        """(L_{+,w}, L_{±,w}) for weights w (only problems that override this know them)."""
        raise NotImplementedError

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["L_i"] = self.L_i.tolist()
        out.update(L_max=self.L_max, L_am=self.L_am, L_qm=self.L_qm)
        return out


class Problem:
    """Base class of distributed problems. Subclasses implement the batched oracles."""

    name: str = ""
    n: int
    d: int
    dtype: torch.dtype = torch.float64

    # ---- deterministic oracles
    def x0(self) -> torch.Tensor:
        """The default starting point, ``(d,)``."""
        return torch.zeros(self.d, dtype=self.dtype)

    def client_losses(self, x: torch.Tensor) -> torch.Tensor:
        """f_i(x) for every client, ``(n,)``."""
        raise NotImplementedError

    def loss(self, x: torch.Tensor) -> float:
        """f(x) = mean of the client losses."""
        return float(self.client_losses(x).mean())

    def client_grads(self, x: torch.Tensor) -> torch.Tensor:
        """∇f_i(x) for every client in one call, ``(n, d)``."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """∇f(x), ``(d,)``."""
        return self.client_grads(x).mean(dim=0)

    # ---- finite sums (None / NotImplementedError where the problem is not one)
    def num_samples(self) -> torch.Tensor | None:
        """m_i per client, ``(n,)`` int64, or None if the problem is not a finite sum."""
        return None

    def sample_grads(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """∇f_{i, index[i]}(x): one sample per client, ``index`` ``(n,)`` -> ``(n, d)``."""
        raise NotImplementedError

    def minibatch_grads(self, x: torch.Tensor, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        """Unbiased minibatch gradients, ``(n, d)``: each client averages ``batch_size`` samples
        drawn uniformly with replacement using ``generator``."""
        raise NotImplementedError

    # ---- facts
    def smoothness(self) -> Smoothness:
        raise NotImplementedError

    def optimum(self) -> tuple[float, torch.Tensor] | None:
        """(f*, x*) where it can be computed, else None."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "d": self.d}
