"""The simulator: run a method on a problem with all clients in this process, record its curve.

>>> hist = cp.simulate(problem, "marina", compressor="cq", iterations=2000, stepsize_multiplier=4)
>>> hist.status, hist.grad_norm_sq[-1], hist.bits_up[-1]
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch

from commpress.algorithms import Algorithm, make, parameters
from commpress.errors import ConfigError, InputTypeError
from commpress.network import LocalNetwork, NonFiniteError
from commpress.problems.base import Problem

#: Stop statuses.
STATUSES = ("target_reached", "budget_exhausted", "max_iterations", "diverged")
#: A run whose ||∇f||^2 exceeds this multiple of its initial value is declared diverged.
BLOWUP_FACTOR = 1e12


@dataclasses.dataclass(frozen=True)
class History:
    """The recorded curve of one run.

    Per recorded iteration (iteration 0 = the starting point, after the method's initial
    communication): ``iterations`` (round index), ``grad_norm_sq`` (:math:`\\|\\nabla f(x^t)\\|^2`),
    ``loss`` (:math:`f(x^t)`), ``bits_up`` / ``bits_down`` (cumulative bits per client, averaged
    over the clients, initial communication included), ``wall_time`` (seconds spent in the
    method so far, metric evaluation excluded) and, when the problem knows its optimum,
    ``dist_sq`` (:math:`\\|x^t - x^\\star\\|^2`) with ``f_star``. ``x`` is the final point,
    ``stepsize`` the γ used, ``params`` every setting, ``status`` why the run stopped:
    ``"target_reached"`` | ``"budget_exhausted"`` | ``"max_iterations"`` | ``"diverged"``.
    ``bits_up_per_client`` / ``bits_down_per_client``: final totals per client, ``(n,)``.
    """

    grad_norm_sq: torch.Tensor
    loss: torch.Tensor
    bits_up: torch.Tensor
    bits_down: torch.Tensor
    iterations: torch.Tensor
    wall_time: torch.Tensor
    x: torch.Tensor
    stepsize: float
    params: dict[str, Any]
    status: str
    f_star: float | None = None
    dist_sq: torch.Tensor | None = None
    bits_up_per_client: torch.Tensor | None = None
    bits_down_per_client: torch.Tensor | None = None

    @property
    def n_iterations(self) -> int:
        """Rounds run."""
        return int(self.iterations[-1]) if self.iterations.numel() else 0

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, floats, str) for JSON stores."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.tolist() if isinstance(v, torch.Tensor) else v
        return out


class _Recorder:
    def __init__(self, problem: Problem, x_star: torch.Tensor | None) -> None:
        self.problem = problem
        self.x_star = x_star
        self.cols: dict[str, list[float]] = {k: [] for k in ("it", "g2", "loss", "up", "down", "time", "dist")}

    def record(self, t: int, x: torch.Tensor, ledger, elapsed: float, g: torch.Tensor | None = None) -> float:
        if g is None:
            g = self.problem.grad(x)
        g2 = float(g.dot(g))
        c = self.cols
        c["it"].append(t)
        c["g2"].append(g2)
        c["loss"].append(self.problem.loss(x))
        c["up"].append(ledger.mean_total("up"))
        c["down"].append(ledger.mean_total("down"))
        c["time"].append(elapsed)
        if self.x_star is not None:
            diff = x - self.x_star
            c["dist"].append(float(diff.dot(diff)))
        return g2


def simulate(
    problem: Problem,
    algorithm: str | Algorithm,
    compressor: Any = None,
    iterations: int = 1000,
    seed: int = 0,
    stepsize: float | None = None,
    stepsize_multiplier: float = 1.0,
    target: float | None = None,
    bits_budget: float | None = None,
    downlink_compressor: Any = None,
    record_every: int = 1,
    **algorithm_params: Any,
) -> History:
    """Run ``algorithm`` on ``problem`` (all clients in this process) and return its :class:`History`.

    Args:
        problem: a :class:`~commpress.problems.base.Problem`.
        algorithm: a registered name (``commpress.algorithms.names()``), or an already built
            :class:`~commpress.algorithms.Algorithm` (then ``compressor``, ``seed``,
            ``downlink_compressor`` and ``algorithm_params`` must be left at their defaults).
        compressor: name, instance or None (the method's default).
        iterations: maximum number of rounds.
        seed: run seed: every round's randomness is ``derive_seed(seed, round, role)``.
        stepsize: γ; None takes the method's theoretical stepsize (``commpress.theory``).
        stepsize_multiplier: factor applied to the stepsize (the papers' 2^j tuning).
        target: stop once a recorded :math:`\\|\\nabla f(x^t)\\|^2 \\le` target.
        bits_budget: stop once the uplink bits per client (averaged over clients) reach it.
        downlink_compressor: compressor of the server's broadcasts (default: float32 dense).
        record_every: record (and test ``target``) every this many rounds; the last round is
            always recorded.
        **algorithm_params: the method's own settings (``p``, ``alpha``, ``R``, ``x0`` ...);
            ``x0`` is the starting point (default ``problem.x0()``).

    A diverging run (NaN/Inf in a message or the iterate, or :math:`\\|\\nabla f\\|^2` above
    ``BLOWUP_FACTOR`` times its initial value) stops with ``status="diverged"``.
    """
    if not isinstance(problem, Problem):
        raise InputTypeError(f"simulate needs a commpress Problem; got {type(problem).__name__}.")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ConfigError(f"simulate needs iterations >= 0; got iterations={iterations!r}.")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise ConfigError(f"simulate needs record_every >= 1; got record_every={record_every!r}.")
    mult = _positive("stepsize_multiplier", stepsize_multiplier)
    if target is not None:
        target = _nonneg("target", target)
    if bits_budget is not None:
        bits_budget = _positive("bits_budget", bits_budget)
    x0 = algorithm_params.pop("x0", None)

    if isinstance(algorithm, Algorithm):
        if compressor is not None or downlink_compressor is not None or algorithm_params or seed != 0:
            raise ConfigError(
                "simulate got a built algorithm and settings for it; pass the settings to its constructor, "
                "or pass the algorithm by name."
            )
        if algorithm.problem is not problem:
            raise ConfigError("the algorithm was built for another problem; build it with this problem.")
        algo = algorithm
        algo.network.ledger.reset()
        base = algo.gamma if stepsize is None else _positive("stepsize", stepsize)
        algo = algo.with_gamma(base * mult)
        source = "algorithm" if stepsize is None else "given"
    else:
        network = LocalNetwork(problem.n, keep_rounds=False)
        if "horizon" in parameters(algorithm) and algorithm_params.get("horizon") is None:
            algorithm_params["horizon"] = iterations  # K of the horizon-dependent stepsizes (DCGD, P-SGD)
        given = None if stepsize is None else _positive("stepsize", stepsize) * mult
        algo = make(algorithm, problem, network, compressor=compressor, gamma=given, seed=seed,
                    downlink_compressor=downlink_compressor, **algorithm_params)
        if stepsize is None:
            algo = algo.with_gamma(algo.gamma * mult)
        source = "theory" if stepsize is None else "given"

    ledger = algo.network.ledger
    try:
        opt = problem.optimum()
    except NotImplementedError:
        opt = None
    f_star, x_star = (None, None) if opt is None else (float(opt[0]), opt[1])
    rec = _Recorder(problem, x_star)
    status = "max_iterations"
    elapsed = 0.0

    start = time.perf_counter()
    try:
        state = algo.init(x0)
        x = algo.output(state)
    except NonFiniteError:
        state, x = None, None
    elapsed += time.perf_counter() - start
    if x is None or not _finite(x):
        status = "diverged"
        x = problem.x0() if x0 is None else x0
        g2_0 = math.inf
        t = 0
    else:
        g2_0 = rec.record(0, x, ledger, elapsed, algo.known_gradient(state))
        t = 0
        if not math.isfinite(g2_0):
            status = "diverged"
        elif target is not None and g2_0 <= target:
            status = "target_reached"
        elif bits_budget is not None and ledger.mean_total("up") >= bits_budget:
            status = "budget_exhausted"
    limit = BLOWUP_FACTOR * max(g2_0, 1e-300)

    if status == "max_iterations":
        while t < iterations:
            start = time.perf_counter()
            try:
                new_state = algo.step(state)
                new_x = algo.output(new_state)
            except NonFiniteError:
                elapsed += time.perf_counter() - start
                status = "diverged"
                break
            elapsed += time.perf_counter() - start
            if not _finite(new_x):
                status = "diverged"
                break
            state, x, t = new_state, new_x, t + 1
            over_budget = bits_budget is not None and ledger.mean_total("up") >= bits_budget
            if t % record_every == 0 or t == iterations or over_budget:
                g2 = rec.record(t, x, ledger, elapsed, algo.known_gradient(state))
                if not math.isfinite(g2) or g2 > limit:
                    status = "diverged"
                    break
                if target is not None and g2 <= target:
                    status = "target_reached"
                    break
            if over_budget:
                status = "budget_exhausted"
                break

    c = rec.cols
    params = {
        "problem": problem.describe(),
        **algo.params(),
        "stepsize_source": source,
        "stepsize_multiplier": mult,
        "iterations": iterations,
        "target": target,
        "bits_budget": bits_budget,
        "record_every": record_every,
        "x0": "problem" if x0 is None else "given",
    }
    f64 = torch.float64
    return History(
        grad_norm_sq=torch.tensor(c["g2"], dtype=f64),
        loss=torch.tensor(c["loss"], dtype=f64),
        bits_up=torch.tensor(c["up"], dtype=f64),
        bits_down=torch.tensor(c["down"], dtype=f64),
        iterations=torch.tensor(c["it"], dtype=torch.int64),
        wall_time=torch.tensor(c["time"], dtype=f64),
        x=x.clone(),
        stepsize=algo.gamma,
        params=params,
        status=status,
        f_star=f_star,
        dist_sq=None if x_star is None else torch.tensor(c["dist"], dtype=f64),
        bits_up_per_client=ledger.total("up"),
        bits_down_per_client=ledger.total("down"),
    )


def _finite(x: torch.Tensor) -> bool:
    return math.isfinite(float(x.sum()))


def _positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"simulate needs a positive number {name}; got {name}={value!r}.") from None
    if not (v > 0 and math.isfinite(v)):
        raise ConfigError(f"simulate needs a positive finite {name}; got {name}={value!r}.")
    return v


def _nonneg(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"simulate needs a number {name} >= 0; got {name}={value!r}.") from None
    if not (v >= 0 and math.isfinite(v)):
        raise ConfigError(f"simulate needs a finite {name} >= 0; got {name}={value!r}.")
    return v
