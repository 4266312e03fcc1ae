"""Direct runs for the local-training reproductions (``proxskip``, ``gradskip``): a method is stepped until
its server model reaches a target, recording communication rounds, iterations and each client's gradient
computations (numbers the sweep runner does not record)."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator

import torch


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one intra-op torch thread (restored afterwards): these problems are small
    (d <= 100, n <= 20), so a second thread only adds synchronisation, several times over on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_to_target(alg, measure: Callable[[torch.Tensor], float], target: float, max_iterations: int, *,
                  every: int = 1, on_step: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Step ``alg`` until ``measure(alg.output(state)) <= target`` (checked when the server model changed:
    after each communication of a local-training method, every ``every`` iterations of GD) or
    ``max_iterations``. Returns the rounds (communications), iterations, per-client gradient computations at
    that moment (None when never reached) and the curve ``(rounds, value)`` at every check. ``on_step(state)``
    sees every state, the initial one included."""
    state = alg.init()
    if on_step is not None:
        on_step(state)
    v0 = measure(alg.output(state))
    curve = [(0, v0)]
    local = hasattr(state, "comms")
    reached = None
    last = 0
    while state.t < max_iterations:
        state = alg.step(state)
        if on_step is not None:
            on_step(state)
        rounds = state.comms if local else state.t
        if (local and rounds == last) or (not local and state.t % every):
            continue
        last = rounds
        v = measure(alg.output(state))
        curve.append((rounds, v))
        if not math.isfinite(v):
            break
        if v <= target:
            reached = state
            break
    done = reached is not None
    grads = (reached.grads.tolist() if done and hasattr(reached, "grads") else None)
    return {"reached": done, "rounds": (reached.comms if local else reached.t) if done else None,
            "iterations": reached.t if done else None, "grads": grads, "curve": thin(curve),
            "final": curve[-1][1], "iterations_run": state.t}


def thin(curve: list[tuple[int, float]], points: int = 400) -> list[list[float]]:
    """At most ``points`` points of a curve (evenly spaced in index, the last one kept)."""
    if len(curve) <= points:
        return [[float(a), float(b)] for a, b in curve]
    step = len(curve) / points
    keep = sorted({int(k * step) for k in range(points)} | {len(curve) - 1})
    return [[float(curve[k][0]), float(curve[k][1])] for k in keep]


def ratio(a: float | None, b: float | None) -> float:
    """``a / b``; nan when either is missing or b is not positive."""
    if a is None or b is None or not b > 0 or not math.isfinite(a) or not math.isfinite(b):
        return math.nan
    return a / b
