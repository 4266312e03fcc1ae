"""Partial participation for the methods: the round's participants and the unbiased reweighted mean.

Every partial-participation method takes ``participation=`` (a sampler spec of
:mod:`commpress.network`: ``"full"``, ``"nice:4"``, ``"independent:0.5"``, a dict or a
Sampler). Round ``t``'s participants are drawn from the shared stream of the round seed
``derive_seed(seed, t, "sample")`` (tag ``"pp/sample"``): every process agrees on them without
communicating, at 0 bits. A full sampler (``full``, ``nice:n``, ``independent:1``) gives ``None``
participants, and the methods then take exactly the code path of their full-participation parent.

:func:`participation_params` routes a run-level ``participation`` (``cp.simulate``, a TOML config's
``[run] participation``, a distributed job) into an algorithm's parameters.
"""

from __future__ import annotations

from typing import Any

import torch

from commpress.errors import ConfigError
from commpress.network.sampling import Sampler, make_sampler

#: The registered methods that take ``participation=`` (for the error messages).
PP_METHODS = ("marina_pp", "ef21_pp", "diana_pp", "dasha_pp")


class Participation:
    """Mixin of the partial-participation methods (needs ``self.n``, ``self.network``, ``self._seed``)."""

    sampler: Sampler

    def _pp(self) -> None:
        """Set the sampler up from ``self._participation_arg`` once (needs ``self.n``)."""
        if "sampler" not in self.__dict__:
            self._setup_participation(self._participation_arg)

    def _setup_participation(self, participation: Any) -> None:
        self.sampler = make_sampler(participation).check(self.n)
        self.full_participation = self.sampler.is_full(self.n)
        self._p = self.sampler.probabilities(self.n)
        self._p_uniform = self.sampler.uniform_probability(self.n)

    def participants(self, t: int) -> torch.Tensor | None:
        """Round ``t``'s participants (sorted client indices), or None when every client takes part."""
        if self.full_participation:
            return None
        return self.sampler.sample(self.n, self._seed(t, "sample"))

    def _sampling_theory(self) -> dict[str, Any]:
        self._pp()
        return {"sampling": self.sampler.describe()}

    def _participation_params(self) -> dict[str, Any]:
        return {"participation": self.sampler.describe()}

    # listed first among the bases, the mixin adds the sampler to the parent method's params
    def _theory_params(self) -> dict[str, Any]:
        return {**super()._theory_params(), **self._sampling_theory()}  # type: ignore[misc]

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), **self._participation_params()}  # type: ignore[misc]

    def _unbiased_mean(self, rows: torch.Tensor, S: torch.Tensor | None) -> torch.Tensor:
        r""":math:`\frac1n\sum_{i\in S}a_i/p_i` from the uplink's rows (zeros for the absent clients)."""
        if S is None:
            return self.network.mean(rows)
        if self._p_uniform is not None:
            return self.network.mean(rows) / self._p_uniform
        w = self.network.local(self._p).to(rows.dtype).reciprocal()
        return self.network.mean(rows * w.unsqueeze(1))


def participation_params(algorithm: str, participation: Any, params: dict[str, Any], owner: str) -> dict[str, Any]:
    """``params`` with ``participation`` added for a method that takes it.

    None leaves ``params`` unchanged; a full sampler is dropped for methods without the parameter;
    any other sampler for such a method is a ConfigError naming the partial-participation methods.
    """
    if participation is None:
        return params
    from commpress.algorithms.registry import parameters

    sampler = make_sampler(participation)
    if "participation" in parameters(algorithm):
        if "participation" in params and params["participation"] is not None and \
                make_sampler(params["participation"]) != sampler:
            raise ConfigError(f"{owner}: participation is given twice for {algorithm!r} (run setting "
                              f"{sampler} and params {params['participation']!r}); give it once.")
        return {**params, "participation": participation if not isinstance(participation, Sampler)
                else sampler.describe()}
    if isinstance(sampler, type(make_sampler("full"))):
        return params
    raise ConfigError(f"{owner}: {algorithm!r} takes every client in every round; participation={sampler} needs a "
                      f"partial-participation method: one of {list(PP_METHODS)}.")
