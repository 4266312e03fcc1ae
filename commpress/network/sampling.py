r"""Client sampling: which clients take part in a round (partial participation).

>>> s = make_sampler("nice:4")                       # or {"name": "nice", "tau": 4}, Nice(4)
>>> S = s.sample(n=10, seed=derive_seed(run_seed, t, "sample"))   # sorted client indices, (|S|,) int64
>>> s.probabilities(10)                              # p_i = Pr(i in S) = 0.4 for every client

Three samplers, one mechanism for every partial-participation method:

=====================  ==========================================  ===================  ==========================
spec                   draw                                        :math:`p_i`          :math:`p_{ij}`, i != j
=====================  ==========================================  ===================  ==========================
``full``               :math:`S=\{0..n-1\}`                        1                    1
``nice:tau``           the first τ entries of one uniform          :math:`\tau/n`       :math:`\frac{\tau(\tau-1)}{n(n-1)}`
                       permutation of 0..n-1, sorted
``independent:p``      :math:`u\sim U[0,1)^n` in client order,     :math:`p_i`          :math:`p_ip_j`
                       :math:`S=\{i: u_i<p_i\}` (may be empty)
=====================  ==========================================  ===================  ==========================

``p`` of ``independent`` is one probability for every client or a list of n (one per client).
Every draw comes from the shared stream of the round (tag ``"pp/sample"``, a CPU
``torch.Generator`` keyed by the round seed, :func:`commpress._rng.shared_generator`), so every
process of a distributed run computes the same set without communicating, and drawing it costs
0 bits. The reweighted mean :math:`\hat a_S=\frac1n\sum_{i\in S}a_i/p_i` is unbiased for
:math:`\frac1n\sum_ia_i` (:meth:`Sampler.weights`); its variance constants are in
:mod:`commpress.theory.partial_participation`. An empty ``S`` is a valid round in which nobody sends.

Specs for configs: ``"full"``, ``"nice:4"`` (also ``"nice(4)"``), ``"independent:0.5"``,
``{"name": "nice", "tau": 4}``, ``{"name": "independent", "p": [0.5, 0.25, ...]}``.

References:
    Richtárik, Takáč, Parallel coordinate descent methods for big data optimization, Math.
    Programming 2016 (τ-nice sampling); Gorbunov, Burlachenko, Li, Richtárik, MARINA, ICML 2021
    (PP-MARINA); Tyurin, Richtárik, A computation and communication efficient method for distributed
    nonconvex problems in the partial participation setting, NeurIPS 2023 (the pair :math:`p_a, p_{aa}`).
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import torch

from commpress._rng import shared_generator
from commpress.errors import ConfigError

__all__ = ["SAMPLE_TAG", "SAMPLERS", "Full", "Independent", "Nice", "Sampler", "make_sampler"]

#: Tag of the shared stream the participants are drawn from.
SAMPLE_TAG = "pp/sample"
_SPEC_HINT = ("pass participation='full', 'nice:TAU' (TAU clients per round), 'independent:P' (each client with "
              "probability P) or a dict such as {'name': 'nice', 'tau': 4}")


class Sampler:
    """Base class: a rule that draws the set of participating clients of a round from its seed."""

    name: ClassVar[str] = ""

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """The participants of the round with seed ``seed``: sorted client indices, ``(|S|,)`` int64 (CPU)."""
        raise NotImplementedError

    def probabilities(self, n: int) -> torch.Tensor:
        r""":math:`p_i=\Pr(i\in S)`, ``(n,)`` float64."""
        raise NotImplementedError

    def pair_probability(self, n: int) -> torch.Tensor:
        r""":math:`p_{ij}=\Pr(i,j\in S)` for :math:`i\ne j`, ``(n, n)`` float64 (diagonal: :math:`p_i`)."""
        raise NotImplementedError

    def check(self, n: int) -> "Sampler":
        """Raise ConfigError when this sampler cannot serve ``n`` clients; returns self."""
        return self

    def describe(self) -> dict[str, Any]:
        """JSON-able ``{"name": ..., **params}`` (what :func:`make_sampler` reads back)."""
        return {"name": self.name}

    # ------------------------------------------------------------------ derived
    def is_full(self, n: int) -> bool:
        """True when every client takes part in every round (then methods take their full-participation path)."""
        return bool((self.probabilities(n) >= 1.0).all())

    def uniform_probability(self, n: int) -> float | None:
        """The common :math:`p_i` when all clients have the same one, else None."""
        p = self.probabilities(n)
        return float(p[0]) if bool((p == p[0]).all()) else None

    def weights(self, n: int) -> torch.Tensor:
        r"""The unbiased aggregation weights :math:`1/p_i`, ``(n,)`` float64: :math:`\frac1n\sum_{i\in S}w_ia_i`
        has mean :math:`\frac1n\sum_ia_i`."""
        return 1.0 / self.probabilities(n)

    def mask(self, n: int, seed: int) -> torch.Tensor:
        """``(n,)`` bool: True for the participants of the round."""
        return self.mask_of(self.sample(n, seed), n)

    @staticmethod
    def mask_of(S: torch.Tensor, n: int) -> torch.Tensor:
        """``(n,)`` bool: True at the indices ``S``."""
        m = torch.zeros(n, dtype=torch.bool)
        m[S] = True
        return m

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Sampler) and self.describe() == other.describe()

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({params})"


class Full(Sampler):
    """Every client in every round (full participation)."""

    name = "full"

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return torch.arange(n)

    def probabilities(self, n: int) -> torch.Tensor:
        return torch.ones(n, dtype=torch.float64)

    def pair_probability(self, n: int) -> torch.Tensor:
        return torch.ones(n, n, dtype=torch.float64)


class Nice(Sampler):
    r"""τ-nice sampling: τ clients drawn uniformly without replacement.

    :math:`S` = the first τ entries of one uniform permutation of :math:`\{0..n-1\}` (CPU
    ``torch.randperm`` from the round's shared stream), sorted; :math:`p_i=\tau/n`,
    :math:`p_{ij}=\frac{\tau(\tau-1)}{n(n-1)}`.

    Args:
        tau: clients per round, ``1 <= tau <= n``.
    """

    name = "nice"

    def __init__(self, tau: int) -> None:
        integral = hasattr(tau, "__index__") or (isinstance(tau, float) and tau.is_integer())
        if isinstance(tau, bool) or not integral:
            raise ConfigError(f"nice sampling needs an integer tau >= 1 (clients per round); got tau={tau!r}.")
        self.tau = int(tau)
        if self.tau < 1:
            raise ConfigError(f"nice sampling needs tau >= 1 clients per round; got tau={tau!r}.")

    def check(self, n: int) -> "Nice":
        if self.tau > n:
            raise ConfigError(f"nice sampling of tau={self.tau} clients per round needs tau <= n={n} clients; "
                              f"pass participation='nice:{n}' or fewer.")
        return self

    def sample(self, n: int, seed: int) -> torch.Tensor:
        self.check(n)
        perm = torch.randperm(n, generator=shared_generator(seed, SAMPLE_TAG))
        return perm[: self.tau].sort().values

    def probabilities(self, n: int) -> torch.Tensor:
        self.check(n)
        return torch.full((n,), self.tau / n, dtype=torch.float64)

    def pair_probability(self, n: int) -> torch.Tensor:
        self.check(n)
        pij = self.tau * (self.tau - 1) / (n * (n - 1)) if n > 1 else 1.0
        out = torch.full((n, n), pij, dtype=torch.float64)
        out.fill_diagonal_(self.tau / n)
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "tau": self.tau}

    def __str__(self) -> str:
        return f"nice:{self.tau}"


class Independent(Sampler):
    r"""Independent sampling: client i takes part with probability :math:`p_i`, independently.

    :math:`u\sim U[0,1)^n` (float64, in client order, from the round's shared stream);
    :math:`S=\{i:u_i<p_i\}`. :math:`|S|` is random and may be 0 (a round in which nobody sends).

    Args:
        p: one probability in (0, 1] for every client, or a list of n of them.
    """

    name = "independent"

    def __init__(self, p: Any) -> None:
        values = p if isinstance(p, (list, tuple)) else [p]
        if isinstance(p, torch.Tensor):
            values = p.reshape(-1).tolist()
        out = []
        for v in values:
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"independent sampling needs probabilities in (0, 1]; got p={p!r}.") from None
            if isinstance(v, bool) or not (0.0 < f <= 1.0) or math.isnan(f):
                raise ConfigError(f"independent sampling needs every probability in (0, 1]; got p={p!r}.")
            out.append(f)
        if not out:
            raise ConfigError("independent sampling needs p: one probability or a list of n; got an empty list.")
        self.p = out[0] if len(out) == 1 and not isinstance(p, (list, tuple, torch.Tensor)) else out

    def check(self, n: int) -> "Independent":
        if isinstance(self.p, list) and len(self.p) != n:
            raise ConfigError(f"independent sampling got {len(self.p)} probabilities for n={n} clients; pass one "
                              "number or a list of n.")
        return self

    def probabilities(self, n: int) -> torch.Tensor:
        self.check(n)
        if isinstance(self.p, list):
            return torch.tensor(self.p, dtype=torch.float64)
        return torch.full((n,), self.p, dtype=torch.float64)

    def pair_probability(self, n: int) -> torch.Tensor:
        p = self.probabilities(n)
        out = torch.outer(p, p)
        out.diagonal().copy_(p)
        return out

    def sample(self, n: int, seed: int) -> torch.Tensor:
        p = self.probabilities(n)
        u = torch.rand(n, generator=shared_generator(seed, SAMPLE_TAG), dtype=torch.float64)
        return torch.nonzero(u < p).reshape(-1)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "p": self.p}

    def __str__(self) -> str:
        return f"independent:{self.p}" if not isinstance(self.p, list) else f"independent:{self.p!r}"


#: name -> sampler class.
SAMPLERS: dict[str, type[Sampler]] = {"full": Full, "nice": Nice, "independent": Independent}
_PARAM = {"nice": "tau", "independent": "p"}
_STRING = re.compile(r"^\s*([A-Za-z_]+)\s*(?:[:(]\s*(.*?)\s*\)?\s*)?$")


def make_sampler(spec: Any = None) -> Sampler:
    """A :class:`Sampler` from a spec: None or ``"full"``, ``"nice:4"``, ``"nice(4)"``, ``"independent:0.5"``,
    ``{"name": "nice", "tau": 4}``, ``{"name": "independent", "p": [...]}``, or a Sampler (returned as is)."""
    if spec is None:
        return Full()
    if isinstance(spec, Sampler):
        return spec
    if isinstance(spec, str):
        match = _STRING.match(spec)
        if match is None:
            raise ConfigError(f"participation={spec!r} is not a sampler spec; {_SPEC_HINT}.")
        name, arg = match.group(1).lower(), match.group(2)
        if name not in SAMPLERS:
            raise ConfigError(f"participation={spec!r}: unknown sampler {name!r} (known: {sorted(SAMPLERS)}); "
                              f"{_SPEC_HINT}.")
        params: dict[str, Any] = {}
        if arg:
            try:
                value: Any = int(arg) if name == "nice" else float(arg)
            except ValueError:
                raise ConfigError(f"participation={spec!r}: {arg!r} is not a number; {_SPEC_HINT}.") from None
            if name not in _PARAM:
                raise ConfigError(f"participation={spec!r}: {name!r} takes no parameter; {_SPEC_HINT}.")
            params[_PARAM[name]] = value
        spec_dict = {"name": name, **params}
    elif isinstance(spec, dict):
        spec_dict = dict(spec)
    else:
        raise ConfigError(f"participation must be a string, a dict or a Sampler; got {type(spec).__name__}. "
                          f"{_SPEC_HINT[0].upper()}{_SPEC_HINT[1:]}.")
    name = spec_dict.pop("name", None)
    if name not in SAMPLERS:
        raise ConfigError(f"participation: unknown sampler {name!r} (known: {sorted(SAMPLERS)}); {_SPEC_HINT}.")
    cls = SAMPLERS[name]
    expected = {_PARAM[name]} if name in _PARAM else set()
    if set(spec_dict) != expected:
        need = f"the parameter {sorted(expected)[0]!r}" if expected else "no parameter"
        raise ConfigError(f"participation {name!r} takes {need}; got {sorted(spec_dict) or 'none'}. {_SPEC_HINT}.")
    return cls(**spec_dict)
