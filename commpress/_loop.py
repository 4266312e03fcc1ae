"""The round loop shared by :func:`commpress.simulate` and the distributed driver.

One place decides how a run starts (the method's initial communication, iteration 0 recorded),
which rounds are recorded, and why a run stops (``STATUSES``). The callers differ only in how
they record a round and count bits, and in their hooks (the driver injects faults and names the
round for its watchdog before a round, and checkpoints after one).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from commpress.errors import NonFiniteError

#: Stop statuses (``"stopped_by_callback"``: a ``stop`` hook asked for it, e.g. the simulator's callback).
STATUSES = ("target_reached", "budget_exhausted", "max_iterations", "diverged", "stopped_by_callback")
STOPPED = "stopped_by_callback"
#: A run whose ||∇f||^2 exceeds this multiple of its initial value is declared diverged.
BLOWUP_FACTOR = 1e12

#: ``record(t, state, x, elapsed) -> ||∇f(x)||²``: record round ``t`` and return its metric.
Record = Callable[[int, Any, torch.Tensor, float], float]


@dataclass
class Progress:
    """Where a run stands: the method's state (None if its start failed), the iterate, the
    round, why it stopped (``"max_iterations"`` while it runs), the seconds spent in the method,
    and the recorded :math:`\\|\\nabla f(x^0)\\|^2` the blow-up rule compares with."""

    state: Any
    x: torch.Tensor
    t: int
    status: str
    elapsed: float
    g2_0: float


def start(algo, problem, x0: torch.Tensor | None, record: Record, *, target: float | None,
          budget: float | None, bits_up: Callable[[], float], stop: Callable[[], bool] | None = None) -> Progress:
    """Run the method's initial communication, record iteration 0 and apply the stop rules.

    A start that fails (NaN/Inf) leaves ``state=None`` and the starting point as ``x``.
    ``stop()``, asked after iteration 0 is recorded when no stop rule applies, ends the run with
    status ``"stopped_by_callback"`` when it returns True.
    """
    began = time.perf_counter()
    try:
        state = algo.init(x0)
        x = algo.output(state)
    except NonFiniteError:
        state, x = None, None
    elapsed = time.perf_counter() - began
    if x is None or not finite(x):
        x = problem.x0() if x0 is None else x0
        return Progress(state, x, 0, "diverged", elapsed, math.inf)
    g2_0 = record(0, state, x, elapsed)
    status = "max_iterations"
    if not math.isfinite(g2_0):
        status = "diverged"
    elif target is not None and g2_0 <= target:
        status = "target_reached"
    elif budget is not None and bits_up() >= budget:
        status = "budget_exhausted"
    elif stop is not None and stop():
        status = STOPPED
    return Progress(state, x, 0, status, elapsed, g2_0)


def run(algo, p: Progress, record: Record, *, iterations: int, every: int, target: float | None,
        budget: float | None, bits_up: Callable[[], float],
        before_round: Callable[[int], None] | None = None,
        after_round: Callable[[Progress], None] | None = None,
        stop: Callable[[], bool] | None = None) -> Progress:
    """Step ``p`` until round ``iterations`` or a stop rule; return it (updated in place).

    Records every ``every`` rounds, the last round and the round that exhausts ``budget``
    (uplink bits per client, ``bits_up()``). Stops ``"diverged"`` on NaN/Inf or a recorded
    :math:`\\|\\nabla f\\|^2` above ``BLOWUP_FACTOR`` times the initial one, ``"target_reached"``
    once a recorded value is ``<= target``, ``"budget_exhausted"`` once the budget is reached.
    ``before_round(t)`` runs before round t+1 is computed; ``after_round(p)`` after each round
    that does not stop the run. ``stop()`` is asked after each recorded round before the last that
    no stop rule ends; True ends the run with status ``"stopped_by_callback"``.
    """
    if p.status != "max_iterations":
        return p
    limit = BLOWUP_FACTOR * max(p.g2_0, 1e-300)
    while p.t < iterations:
        if before_round is not None:
            before_round(p.t)
        began = time.perf_counter()
        try:
            new_state = algo.step(p.state)
            new_x = algo.output(new_state)
        except NonFiniteError:
            p.elapsed += time.perf_counter() - began
            p.status = "diverged"
            break
        p.elapsed += time.perf_counter() - began
        if not finite(new_x):
            p.status = "diverged"
            break
        p.state, p.x, p.t = new_state, new_x, p.t + 1
        over_budget = budget is not None and bits_up() >= budget
        recorded = p.t % every == 0 or p.t == iterations or over_budget
        if recorded:
            g2 = record(p.t, p.state, p.x, p.elapsed)
            if not math.isfinite(g2) or g2 > limit:
                p.status = "diverged"
                break
            if target is not None and g2 <= target:
                p.status = "target_reached"
                break
        if over_budget:
            p.status = "budget_exhausted"
            break
        if recorded and p.t < iterations and stop is not None and stop():
            p.status = STOPPED
            break
        if after_round is not None:
            after_round(p)
    return p


def finite(x: torch.Tensor) -> bool:
    """No NaN/Inf in ``x`` (one reduction)."""
    return math.isfinite(float(x.sum()))
