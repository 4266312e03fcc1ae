"""``check_algorithm``: the conformance suite of one optimisation method (built-in or user-written)."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import torch

from commpress._rng import derive_seed, shared_generator
from commpress.algorithms.base import Algorithm
from commpress.algorithms.registry import get as get_algorithm
from commpress.algorithms.registry import make as make_algorithm
from commpress.compressors.base import Compressor
from commpress.errors import ConfigError, InputTypeError
from commpress.network import LocalNetwork
from commpress.problems.base import Problem
from commpress.testing._networks import AuditNetwork, PermutedNetwork, SpyCompressor
from commpress.testing._report import ConformanceReport, Fail, Skip, run_property, select

__all__ = ["ALGORITHM_PROPERTIES", "PermutedNetwork", "check_algorithm"]

#: The properties of the algorithm suite, in the order they run.
ALGORITHM_PROPERTIES = (
    "builds",
    "step_is_pure",
    "save_reload",
    "client_order",
    "seed_is_used",
    "ledger_bits",
    "converges",
)
#: Rounds of the ledger audit.
LEDGER_ROUNDS = 12


def default_problem() -> Problem:
    """The suite's small problem: least squares with an l2 term (a strongly convex quadratic),
    4 clients, d = 8, 16 samples each (so minibatch and variance-reduced methods run too)."""
    from commpress.problems import make

    return make("least_squares", n_clients=4, dim=8, samples_per_client=16, l2=0.1, seed=0)


def check_algorithm(
    algorithm: str | type,
    *,
    problem: Problem | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    steps: int = 4,
    convergence_steps: int = 200,
    convergence_factor: float = 0.1,
    randomized: bool | None = None,
    properties: Any = None,
    raise_on_failure: bool = True,
) -> ConformanceReport:
    r"""Run the conformance suite on an optimisation method; report each property in plain words.

    The method is built as ``cls(problem, network, seed=seed, **params)`` (``params`` holds the
    constructor's settings: ``compressor=``, ``gamma=``, ``p=``, ...) on each network a property
    needs. Properties:

    - ``builds``: it builds, and ``init()`` returns a frozen dataclass state;
    - ``step_is_pure``: ``step(state)`` returns a new state and leaves every tensor of its input
      unchanged; the state refuses attribute assignment;
    - ``save_reload``: after ``steps`` rounds the state survives ``torch.save`` /
      ``torch.load`` (``weights_only=True``) field for field, and ``steps`` more rounds from the
      reloaded copy give identical states;
    - ``client_order``: on a network that holds the clients in another order
      (:class:`PermutedNetwork`) the iterates and both ledgers are identical after ``steps + 1``
      rounds (every per-client draw is keyed by client index);
    - ``seed_is_used``: with ``randomized=True`` two run seeds give different iterates after
      ``steps`` rounds; with ``randomized=False`` identical ones. ``None`` (default): True when a
      compressor the method holds is randomized, else skipped (minibatches and coins are not
      visible from outside: pass ``randomized=True``);
    - ``ledger_bits``: over init and 12 rounds, the network's ledger holds exactly
      ``8 * len(payload)`` of every real wire message, per client and direction, and the
      method compresses nothing outside the network (a message the ledger never saw: it undercounts);
    - ``converges``: after ``convergence_steps`` rounds
      :math:`\|\nabla f(x)\|^2 \le` ``convergence_factor`` :math:`\cdot \|\nabla f(x^0)\|^2`.

    Args:
        algorithm: a registered name (``"marina"``) or an :class:`~commpress.algorithms.Algorithm`
            subclass.
        problem: the problem (default: least squares with l2, 4 clients, d = 8, 16 samples each).
        params: constructor keywords (default none: the method's defaults and theoretical stepsize).
        seed: the run seed of every build (the seed check also uses ``seed + 1``).
        steps, convergence_steps, convergence_factor: see above.
        randomized: whether the iterates must depend on the seed (see ``seed_is_used``).
        properties: names of the properties to run (default: all, :data:`ALGORITHM_PROPERTIES`).
        raise_on_failure: raise one :class:`ConformanceError` listing every failed property.

    Returns:
        The :class:`ConformanceReport` (one :class:`CheckResult` per property).
    """
    if isinstance(algorithm, str):
        cls = get_algorithm(algorithm)
        label = repr(algorithm)
    elif isinstance(algorithm, type) and issubclass(algorithm, Algorithm):
        cls, label = algorithm, algorithm.__name__
    else:
        raise InputTypeError(
            f"check_algorithm needs a registered algorithm name or an Algorithm subclass; got {algorithm!r}."
        )
    given_problem = problem is not None
    problem = default_problem() if problem is None else problem
    if not isinstance(problem, Problem):
        raise InputTypeError(f"check_algorithm needs a commpress Problem; got {type(problem).__name__}.")
    params = dict(params or {})
    for name, value in (("steps", steps), ("convergence_steps", convergence_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"check_algorithm needs an integer {name} >= 1; got {name}={value!r}.")
    if not 0 < float(convergence_factor) <= 1:
        raise ConfigError(f"check_algorithm needs 0 < convergence_factor <= 1; got {convergence_factor!r}.")
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    replay = (f"check_algorithm({label}, {'problem=<the same problem>, ' if given_problem else ''}params={{{shown}}}, "
              f"seed={seed}, steps={steps}, convergence_steps={convergence_steps}, "
              f"convergence_factor={convergence_factor})")
    suite = _AlgorithmSuite(cls, isinstance(algorithm, str), problem, params, seed, steps, convergence_steps,
                            float(convergence_factor), randomized)
    report = ConformanceReport(subject=f"{label} with {{{shown}}}" if shown else label, replay=replay)
    for name in select(properties, ALGORITHM_PROPERTIES, "check_algorithm"):
        report.results.append(run_property(name, getattr(suite, name), replay))
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _fields(state: Any) -> dict[str, Any]:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and bool(torch.equal(a, b)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _first_field_differing(a: Any, b: Any) -> str | None:
    fa, fb = _fields(a), _fields(b)
    if fa.keys() != fb.keys():
        return f"the fields ({sorted(fa)} vs {sorted(fb)})"
    for k in fa:
        if not _same(fa[k], fb[k]):
            return k
    return None


class _AlgorithmSuite:
    def __init__(self, cls: type, by_name: bool, problem: Problem, params: dict, seed: int, steps: int,
                 convergence_steps: int, convergence_factor: float, randomized: bool | None) -> None:
        self.cls, self.by_name, self.problem, self.params, self.seed = cls, by_name, problem, params, seed
        self.steps, self.convergence_steps, self.convergence_factor = steps, convergence_steps, convergence_factor
        self.randomized = randomized

    def build(self, network: Any = None, seed: int | None = None) -> Algorithm:
        seed = self.seed if seed is None else seed
        if self.by_name:
            return make_algorithm(self.cls.name, self.problem, network, seed=seed, **self.params)
        return self.cls(self.problem, network, seed=seed, **self.params)

    def run(self, alg: Algorithm, rounds: int, state: Any = None) -> Any:
        state = alg.init() if state is None else state
        for _ in range(rounds):
            state = alg.step(state)
        return state

    # ------------------------------------------------------------------ properties
    def builds(self) -> str:
        alg = self.build()
        state = alg.init()
        if not dataclasses.is_dataclass(state) or isinstance(state, type):
            raise Fail(f"expected init() to return a dataclass state; got {type(state).__name__}. Decorate the state "
                       "class with commpress.algorithms.algorithm_state.")
        if not type(state).__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise Fail(f"expected a frozen state dataclass; {type(state).__name__} is not frozen. Use "
                       "commpress.algorithms.algorithm_state (a frozen dataclass loadable by torch.load).")
        return f"{alg!r}; state {type(state).__name__}({', '.join(_fields(state))})."

    def step_is_pure(self) -> str:
        alg = self.build()
        state = alg.step(alg.init())
        before = {k: _clone(v) for k, v in _fields(state).items()}
        new = alg.step(state)
        if new is state:
            raise Fail("expected step(state) to return a new state; it returned its input object.")
        for k, v in _fields(state).items():
            if not _same(v, before[k]):
                raise Fail(f"expected step(state) to leave its input unchanged; it changed the field {k!r} of the "
                           "state it was given (an in-place update: use out-of-place ops and "
                           "dataclasses.replace).")
        first = next(iter(_fields(state)))
        try:
            setattr(state, first, before[first])
        except dataclasses.FrozenInstanceError:
            return "step returns a new state and never mutates its input; the state is frozen."
        raise Fail(f"expected the state to refuse assignment (a frozen dataclass); state.{first} = ... succeeded.")

    def save_reload(self) -> str:
        alg = self.build(LocalNetwork(self.problem.n))
        state = self.run(alg, self.steps)
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        try:
            loaded = torch.load(buf)  # weights_only=True
        except Exception as err:
            raise Fail(f"expected torch.load (weights_only=True) to accept the saved state; it refused: "
                       f"{type(err).__name__}: {str(err)[:300]}. Decorate the state class with "
                       "commpress.algorithms.algorithm_state.") from None
        field = _first_field_differing(loaded, state)
        if field is not None:
            raise Fail(f"expected the reloaded state to equal the saved one; field {field!r} differs.")
        a, b = state, loaded
        for t in range(self.steps):
            a, b = alg.step(a), alg.step(b)
            field = _first_field_differing(a, b)
            if field is not None:
                raise Fail(f"expected identical iterates after save and reload; {t + 1} round(s) after the reload "
                           f"the field {field!r} differs. A step must be a pure function of the state (every draw "
                           "keyed by the run seed and the round).")
        return f"save, reload and {self.steps} more rounds give identical states."

    def client_order(self) -> str:
        n = self.problem.n
        if n < 2:
            raise Skip("one client: no other order.")
        g = shared_generator(derive_seed(self.seed, "check/perm"), "check/perm")
        perm = torch.randperm(n, generator=g)
        if torch.equal(perm, torch.arange(n)):
            perm = perm.roll(1)
        a = self.build(LocalNetwork(n))
        b = self.build(PermutedNetwork(n, perm))
        sa, sb = self.run(a, self.steps + 1), self.run(b, self.steps + 1)
        xa, xb = a.output(sa), b.output(sb)
        if not torch.equal(xa, xb):
            raise Fail(f"expected the same iterates when a process holds the clients in the order {perm.tolist()}; "
                       f"after {self.steps + 1} rounds they differ by up to {float((xa - xb).abs().max()):.3g}. Key "
                       "per-client draws by client index (network.private_rand, ctx.private_rand) and reduce through "
                       "the network, never by row position.")
        for direction in ("up", "down"):
            la, lb = a.network.ledger.total(direction), b.network.ledger.total(direction)
            if not torch.equal(la, lb):
                raise Fail(f"expected the same {direction}link ledger per client whatever order the clients are held "
                           f"in ({perm.tolist()}); got {la.tolist()} vs {lb.tolist()}.")
        return f"clients held in the order {perm.tolist()} give identical iterates and ledgers."

    def seed_is_used(self) -> str:
        randomized = self.randomized
        if randomized is None:
            comps = [v for v in vars(self.build()).values() if isinstance(v, Compressor)]
            if not any(not c.deterministic for c in comps):
                raise Skip("no randomized compressor on the method; pass randomized=True if it draws other randomness "
                           "(minibatches, coins) or randomized=False to check it does not.")
        a, b = self.build(seed=self.seed), self.build(seed=self.seed + 1)
        xa = a.output(self.run(a, self.steps))
        xb = b.output(self.run(b, self.steps))
        if randomized is None:  # inferred: a method may hold a randomized compressor and not use it
            if torch.equal(xa, xb):
                raise Skip(f"it holds a randomized compressor but gave the same iterates for run seeds {self.seed} and "
                           f"{self.seed + 1} in {self.steps} rounds (it may not use it here, e.g. MARINA with p = 1); "
                           "pass randomized=True to require that the seed matters.")
            return "iterates depend on the run seed."
        if randomized and torch.equal(xa, xb):
            raise Fail(f"expected a randomized method to give other iterates for run seeds {self.seed} and "
                       f"{self.seed + 1}; they are identical after {self.steps} rounds: it ignores its seed. Derive "
                       "every round's randomness from the run seed (Algorithm._seed(t, role)).")
        if not randomized and not torch.equal(xa, xb):
            raise Fail(f"expected a deterministic method (randomized=False) to give the same iterates for run seeds "
                       f"{self.seed} and {self.seed + 1}; they differ by up to {float((xa - xb).abs().max()):.3g}.")
        return "iterates depend on the run seed." if randomized else "iterates do not depend on the run seed."

    def ledger_bits(self) -> str:
        net = AuditNetwork(self.problem.n)
        alg = self.build(net)
        spies: dict[int, SpyCompressor] = {}
        for key, value in list(vars(alg).items()):
            if isinstance(value, Compressor) and not isinstance(value, SpyCompressor):
                setattr(alg, key, spies.setdefault(id(value), SpyCompressor(value, net)))
        self.run(alg, LEDGER_ROUNDS)
        if net.bypass_calls:
            raise Fail(f"expected every message to go through the network's ledger; the method compressed "
                       f"{net.bypass_calls} batch(es) of messages ({net.bypass_bits} payload bits) outside it (a "
                       "compressor called directly), so the ledger undercounts. Send with network.uplink / "
                       "network.downlink (Algorithm._up / _down).")
        up, down = net.ledger.total("up"), net.ledger.total("down")
        if int(up.sum()) == 0:
            raise Fail(f"expected uplink messages in {LEDGER_ROUNDS} rounds; the ledger recorded none.")
        for direction, ledger, sent in (("up", up, net.expected_up), ("down", down, net.expected_down)):
            if not torch.equal(ledger, sent):
                raise Fail(f"expected the {direction}link ledger to equal 8 * len(payload) of the messages sent, per "
                           f"client, over init and {LEDGER_ROUNDS} rounds; the ledger holds {ledger.tolist()} bits, the "
                           f"payloads {sent.tolist()}. (If a compressor's bits disagree with its payloads, "
                           "check_compressor names it.)")
        return (f"the ledger equals the payload bits of every message ({int(up.sum())} up, {int(down.sum())} down, "
                f"over init and {LEDGER_ROUNDS} rounds).")

    def converges(self) -> str:
        alg = self.build()
        state = alg.init()
        g0 = float(self.problem.grad(alg.output(state)).pow(2).sum())
        state = self.run(alg, self.convergence_steps, state)
        g = float(self.problem.grad(alg.output(state)).pow(2).sum())
        if not g <= self.convergence_factor * g0:
            raise Fail(f"expected ||grad f||^2 to fall by a factor {self.convergence_factor:g} in "
                       f"{self.convergence_steps} rounds on {type(self.problem).__name__} (gamma={alg.gamma:.4g}); it "
                       f"went from {g0:.4g} to {g:.4g} (ratio {g / g0 if g0 else float('nan'):.3g}).")
        return f"||grad f||^2 fell from {g0:.3g} to {g:.3g} in {self.convergence_steps} rounds (gamma={alg.gamma:.3g})."
