"""The simulator: run a method on a problem with all clients in this process, record its curve.

>>> hist = cp.simulate(problem, "marina", compressor="cq", iterations=2000, stepsize_multiplier=4)
>>> hist.status, hist.grad_norm_sq[-1], hist.bits_up[-1]
>>> hist = cp.simulate(problem, "marina", compressor="cq", progress=True,          # a tqdm bar on stderr
...                    callback=lambda t, state, rec: rec["grad_norm_sq"] < 1e-9)  # True: stop here
>>> hist = cp.simulate(problem, "marina", compressor="cq", device="cuda")          # problem and state on a GPU
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable

import torch

from commpress import _loop
from commpress._checks import check_float
from commpress._device import resolve_device
from commpress._loop import BLOWUP_FACTOR, STATUSES  # noqa: F401  (re-exported: stop statuses, blow-up rule)
from commpress.algorithms import Algorithm, make, parameters
from commpress.algorithms._participation import participation_params
from commpress.errors import ConfigError, InputTypeError
from commpress.network import LocalNetwork
from commpress.problems.base import Problem


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
    ``"target_reached"`` | ``"budget_exhausted"`` | ``"max_iterations"`` | ``"diverged"`` |
    ``"stopped_by_callback"`` (:func:`simulate`'s ``callback`` returned True).
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
        names = ("iteration", "grad_norm_sq", "loss", "bits_up", "bits_down", "wall_time")
        self.cols: dict[str, list[float]] = {k: [] for k in names + (() if x_star is None else ("dist_sq",))}

    def last(self) -> dict[str, float]:
        """The latest recorded values, one entry per column (a new dict)."""
        return {k: v[-1] for k, v in self.cols.items()}

    def record(self, t: int, x: torch.Tensor, ledger, elapsed: float, g: torch.Tensor | None = None) -> float:
        if g is None:
            g = self.problem.grad(x)
        g2 = float(g.dot(g))
        c = self.cols
        c["iteration"].append(t)
        c["grad_norm_sq"].append(g2)
        c["loss"].append(self.problem.loss(x))
        c["bits_up"].append(ledger.mean_total("up"))
        c["bits_down"].append(ledger.mean_total("down"))
        c["wall_time"].append(elapsed)
        if self.x_star is not None:
            diff = x - self.x_star
            c["dist_sq"].append(float(diff.dot(diff)))
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
    progress: bool = False,
    callback: Callable[[int, Any, dict[str, float]], bool | None] | None = None,
    participation: Any = None,
    device: Any = None,
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
        progress: show a tqdm progress bar of the rounds on stderr, its postfix the cumulative
            uplink bits per client (``bits_up``) and :math:`\\|\\nabla f(x^t)\\|^2` of the latest
            recorded round. Default False. The bar changes nothing in the run.
        callback: None, or a function ``callback(round, state, record) -> bool | None`` called
            after each recorded round (iteration 0 included), in order: ``round`` the round index
            t, ``state`` the method's state after it, ``record`` a new dict of what was recorded
            for it, the values the :class:`History` will hold at that position: ``iteration``,
            ``grad_norm_sq``, ``loss``, ``bits_up``, ``bits_down``, ``wall_time`` and, when the
            optimum is known, ``dist_sq``. Returning True (any truthy value) stops the run after that round with
            ``status="stopped_by_callback"``; None or False continue. The run's own stop rules
            (divergence, ``target``, ``bits_budget``, the last round) take precedence over the
            request. An exception raised inside the callback propagates unchanged and ends the
            run (no history is returned). The state is the method's own object: read it, do not
            change it.
        participation: which clients take part in each round (partial participation): None (the
            method's own setting, every client for the others), ``"full"``, ``"nice:4"`` (4 clients per
            round), ``"independent:0.5"``, a dict such as ``{"name": "nice", "tau": 4}`` or a
            :class:`~commpress.network.sampling.Sampler`. Anything but full needs a
            partial-participation method (``marina_pp``, ``ef21_pp``, ``diana_pp``, ``dasha_pp``);
            only the participants are charged bits.
        device: where the run computes: None (default: the problem's device, :attr:`Problem.device`),
            ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a :class:`torch.device` (the problem is moved there
            with :meth:`Problem.to`, a copy; the caller's problem is unchanged). The problem's
            tensors, the method's state, the messages and ``History.x`` live there; the recorded
            curve (plain floats) and the bit ledger stay on the CPU, and ``params["device"]``
            says where it ran. One seed gives the same iterates on every device, up to the
            device's rounding of reductions (randomness and payload bytes are device-independent).
            An unknown device, or CUDA where none is visible, raises ConfigError.
        **algorithm_params: the method's own settings (``p``, ``alpha``, ``R``, ``x0`` ...);
            ``x0`` is the starting point (default ``problem.x0()``).

    A diverging run (NaN/Inf in a message or the iterate, or :math:`\\|\\nabla f\\|^2` above
    ``BLOWUP_FACTOR`` times its initial value) stops with ``status="diverged"``.

    Example (stop once the loss is within 1e-6 of the optimum, with a progress bar)::

        f_star = problem.optimum()[0]
        hist = cp.simulate(problem, "marina", compressor="cq", iterations=10_000, progress=True,
                           callback=lambda t, state, rec: rec["loss"] - f_star < 1e-6)
    """
    if not isinstance(problem, Problem):
        if isinstance(problem, str):
            raise InputTypeError(f"simulate needs a commpress Problem; got the name {problem!r}. Build it first: "
                                 f"cp.problems.make({problem!r}, ...).")
        raise InputTypeError(f"simulate needs a commpress Problem; got {type(problem).__name__}. Write your own as a "
                             f"subclass of commpress.problems.Problem (its docstring says what to implement).")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ConfigError(f"simulate needs iterations >= 0; got iterations={iterations!r}.")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise ConfigError(f"simulate needs record_every >= 1; got record_every={record_every!r}.")
    if not isinstance(progress, bool):
        raise ConfigError(f"simulate needs progress=True or False; got progress={progress!r}.")
    if callback is not None and not callable(callback):
        raise InputTypeError(
            f"simulate needs callback=None or a function callback(round, state, record) -> bool | None; got "
            f"{callback!r} ({type(callback).__name__}), which is not callable."
        )
    mult = _positive("stepsize_multiplier", stepsize_multiplier)
    if target is not None:
        target = _nonneg("target", target)
    if bits_budget is not None:
        bits_budget = _positive("bits_budget", bits_budget)
    x0 = algorithm_params.pop("x0", None)
    dev = resolve_device(device, "simulate")
    if dev is not None:
        moved = problem.to(dev)
        if isinstance(algorithm, Algorithm) and moved is not problem:
            raise ConfigError(
                f"simulate got device={str(device)!r} and an algorithm built for a problem on {problem.device}; "
                f"build the algorithm with problem.to({str(device)!r}), or pass it by name."
            )
        problem = moved

    if isinstance(algorithm, Algorithm):
        if compressor is not None or downlink_compressor is not None or algorithm_params or seed != 0 \
                or participation is not None:
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
        algorithm_params = participation_params(algorithm, participation, algorithm_params, "simulate")
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

    bar = _bar(algo, iterations) if progress else None
    asked_stop = [False]

    def record(t: int, state, x: torch.Tensor, elapsed: float) -> float:
        g2 = rec.record(t, x, ledger, elapsed, algo.known_gradient(state))
        if bar is not None:
            bar.set_postfix_str(f"bits_up/client={rec.cols['bits_up'][-1]:.4g}, |grad f|^2={g2:.3g}", refresh=False)
            bar.update(t - bar.n)
        if callback is not None:
            asked_stop[0] = bool(callback(t, state, rec.last()))
        return g2

    def bits_up() -> float:
        return ledger.mean_total("up")

    stop = (lambda: asked_stop[0]) if callback is not None else None
    after = (lambda p: bar.update(p.t - bar.n)) if bar is not None else None
    try:
        p = _loop.start(algo, problem, x0, record, target=target, budget=bits_budget, bits_up=bits_up, stop=stop)
        p = _loop.run(algo, p, record, iterations=iterations, every=record_every, target=target, budget=bits_budget,
                      bits_up=bits_up, after_round=after, stop=stop)
    finally:
        if bar is not None:
            bar.close()
    x, status = p.x, p.status

    return history_of(problem, algo, rec.cols, x, status, f_star, ledger, source=source, mult=mult,
                      iterations=iterations, target=target, bits_budget=bits_budget, record_every=record_every, x0=x0,
                      device=str(problem.device))


def history_of(problem: Problem, algo: Algorithm, cols: dict[str, list[float]], x: torch.Tensor, status: str,
               f_star: float | None, ledger, *, source: str, mult: float, iterations: int, target: float | None,
               bits_budget: float | None, record_every: int, x0: torch.Tensor | None, **more: Any) -> History:
    """The :class:`History` of a finished run (the simulator's and the distributed driver's).

    ``cols``: the recorded columns ``iteration``, ``grad_norm_sq``, ``loss``, ``bits_up``,
    ``bits_down``, ``wall_time`` and, when the optimum is known, ``dist_sq``; ``ledger``: the
    run's ledger of every client; ``more``: settings appended to ``params``.
    """
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
        **more,
    }
    f64 = torch.float64
    return History(
        grad_norm_sq=torch.tensor(cols["grad_norm_sq"], dtype=f64),
        loss=torch.tensor(cols["loss"], dtype=f64),
        bits_up=torch.tensor(cols["bits_up"], dtype=f64),
        bits_down=torch.tensor(cols["bits_down"], dtype=f64),
        iterations=torch.tensor(cols["iteration"], dtype=torch.int64),
        wall_time=torch.tensor(cols["wall_time"], dtype=f64),
        x=x.clone(),
        stepsize=algo.gamma,
        params=params,
        status=status,
        f_star=f_star,
        dist_sq=torch.tensor(cols["dist_sq"], dtype=f64) if "dist_sq" in cols else None,
        bits_up_per_client=ledger.total("up"),
        bits_down_per_client=ledger.total("down"),
    )


def _bar(algo: Algorithm, iterations: int):
    """The tqdm bar of one run (rounds), on stderr."""
    from tqdm.auto import tqdm

    return tqdm(total=iterations, desc=f"simulate {getattr(algo, 'name', '') or type(algo).__name__}", unit="round",
                file=sys.stderr, dynamic_ncols=True)


def _positive(name: str, value: Any) -> float:
    return check_float(name, value, "simulate", low=0.0, low_open=True, finite=True)


def _nonneg(name: str, value: Any) -> float:
    return check_float(name, value, "simulate", low=0.0, finite=True)
