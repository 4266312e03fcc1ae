"""The algorithm interface: settings in the constructor, explicit state, pure ``step``.

Every method is a class with

- ``__init__(problem, network, compressor=None, *, gamma=None, seed=0, ...)``: all settings,
  validated; ``gamma=None`` takes the theoretical stepsize from :mod:`commpress.theory`;
- ``init(x0=None) -> State``: the initial state (a frozen dataclass; client state has a leading
  client axis holding the rows of ``network.clients``); initial communication, if the method has
  any (e.g. MARINA's dense g^0), is charged to round ``-1``;
- ``step(state) -> State``: one round; returns a new state and never mutates its input.
  Communication goes through the network (which keeps the ledger), reductions over clients
  through ``network.mean``; every random draw is keyed by the run seed and the round number,
  so ``step`` is a pure function of the state (save, reload, continue: the same iterates);
- ``output(state) -> x``: the point at which the method is evaluated (usually ``state.x``);
- ``params()``: every setting used, resolved (for the run's history).

Round seeds: ``derive_seed(seed, t, role)`` with ``role`` one of ``"uplink"``, ``"downlink"``,
``"oracle"``, ``"coin"``, ... : shared randomness comes from the run seed and the round only.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import re
from typing import Any, ClassVar

import torch

from commpress import theory
from commpress._rng import derive_seed, shared_generator
from commpress.compressors import Compressor
from commpress.compressors import make as make_compressor
from commpress.errors import ConfigError, InputError, InputTypeError
from commpress.network import LocalNetwork, Network
from commpress.problems.base import Problem

#: Round number under which initial communication is charged.
INIT_ROUND = -1
#: Where a stepsize goes besides ``gamma=``, for the messages.
_STEPSIZE_WAYS = "(cp.simulate: stepsize=; a TOML config: [run] stepsize)"
#: The start of a theory error's closing hint: ", or pass X=", "; pass X=", ". Pass X=", ...
_PASS_HINT = re.compile(r"(?:,?\s+or\s+|[;:.]?\s+|^)pass\s+\w+=", re.IGNORECASE)


def algorithm_state(cls: type) -> type:
    """Class decorator for states: a frozen dataclass, loadable by ``torch.load`` (weights_only)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    torch.serialization.add_safe_globals([cls])
    return cls


def dense_compressor() -> Compressor:
    """The uncompressed wire: float32 values, 32 d bits (the papers' "no compression")."""
    return make_compressor("identity", float_bits=32)


def resolve_compressor(spec: Any, what: str, default: str | Compressor | None = None) -> Compressor | None:
    """A compressor from a name, an instance or None (then ``default``)."""
    if spec is None:
        spec = default
    if spec is None:
        return None
    if isinstance(spec, Compressor):
        return spec
    if isinstance(spec, str):
        return make_compressor(spec)
    if isinstance(spec, dict) and "name" in spec:
        params = {k: v for k, v in spec.items() if k != "name"}
        return make_compressor(spec["name"], **params)
    raise InputTypeError(
        f"{what} must be a compressor name, a Compressor or a dict with 'name'; got {type(spec).__name__}."
    )


def compressor_theory(compressor: Compressor, n: int, d: int):
    """``compressor.theory(n, d)`` or None when the compressor states no theory."""
    try:
        return compressor.theory(n, d)
    except NotImplementedError:
        return None


def contractive_scale(compressor: Compressor, n: int, d: int, scale: Any, owner: str) -> tuple[float, float | None]:
    """The factor ``s`` applied to decoded messages and the contraction δ of ``s·C``.

    ``scale="auto"``: 1 for a contractive compressor (δ from its theory); ``1/(1+ω)`` for an
    unbiased one (then ``s·C ∈ B(1/(1+ω))``, the standard rescaling, e.g. Beznosikov et al. 2020);
    ``scale=None``: 1 (raw
    compressor, δ as its theory states); a number: that factor (δ unknown).
    """
    th = compressor_theory(compressor, n, d)
    if scale is None:
        return 1.0, (th.delta if th is not None else None)
    if isinstance(scale, str):
        if scale != "auto":
            raise ConfigError(f"{owner} needs scale='auto', None or a number; got scale={scale!r}.")
        if th is None:
            return 1.0, None
        if th.kind == "contractive":
            return 1.0, th.delta
        if th.kind in ("unbiased", "correlated") and th.omega is not None and math.isfinite(th.omega):
            s = 1.0 / (1.0 + th.omega)
            return s, s
        return 1.0, th.delta
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs scale='auto', None or a number; got scale={scale!r}.") from None
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{owner} needs a positive finite scale; got scale={scale!r}.")
    return value, None


def check_positive(name: str, value: Any, owner: str, *, allow_none: bool = False, upper: float | None = None) -> Any:
    if value is None and allow_none:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs a positive number {name}; got {name}={value!r}.") from None
    if not (v > 0 and math.isfinite(v)) or (upper is not None and v > upper):
        bound = f"in (0, {upper:g}]" if upper is not None else "positive and finite"
        raise ConfigError(f"{owner} needs {name} {bound}; got {name}={value!r}.")
    return v


def check_int(name: str, value: Any, owner: str, *, low: int = 1, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise ConfigError(f"{owner} needs an integer {name} >= {low}; got {name}={value!r}.")
    value = int(value)
    if value < low:
        raise ConfigError(f"{owner} needs {name} >= {low}; got {name}={value}.")
    return value


def shared_uniform(seed: int, tag: str) -> float:
    """One shared U[0,1) draw of the round (same value on every process): a coin."""
    return float(torch.rand((), generator=shared_generator(seed, tag), dtype=torch.float64))


class Algorithm:
    """Base class of the methods; see the module docstring."""

    name: ClassVar[str] = ""
    #: Compressor used when none is given (None: the method needs one).
    default_compressor: ClassVar[str | None] = None
    #: The method sends a compressor's messages (False: dense only, e.g. GD).
    uses_compressor: ClassVar[bool] = True

    def __init__(
        self,
        problem: Problem,
        network: Network | None = None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
    ) -> None:
        if not isinstance(problem, Problem):
            raise InputTypeError(
                f"{type(self).__name__} needs a commpress Problem; got {type(problem).__name__}. "
                "Build one with commpress.problems.make(...)."
            )
        self.problem = problem
        self.network = LocalNetwork(problem.n) if network is None else network
        if not isinstance(self.network, Network):
            raise InputTypeError(f"network must be a commpress Network; got {type(self.network).__name__}.")
        if self.network.n != problem.n:
            raise ConfigError(
                f"the network has n={self.network.n} clients but the problem has n={problem.n}; "
                f"build the network with LocalNetwork({problem.n})."
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ConfigError(f"seed must be an integer in [0, 2**63); got seed={seed!r}.")
        self.seed = seed
        self.n, self.d = int(problem.n), int(problem.d)
        if self.uses_compressor:
            self.compressor = resolve_compressor(compressor, "compressor", self.default_compressor)
            if self.compressor is None:
                raise ConfigError(
                    f"{self.name} needs a compressor; pass compressor='cq' (or any name in "
                    "commpress.compressors.names())."
                )
        else:
            if compressor is not None:
                raise ConfigError(
                    f"{self.name} sends uncompressed vectors and takes no compressor; got compressor={compressor!r}. "
                    "Use 'dcgd' to compress gradients."
                )
            self.compressor = dense_compressor()
        self.downlink_compressor = resolve_compressor(downlink_compressor, "downlink_compressor", None) or dense_compressor()
        self.dense = dense_compressor()
        self._gamma_arg = gamma
        self.gamma = float("nan")  # resolved by the subclass via _resolve_gamma once its settings are known

    # ------------------------------------------------------------------ interface
    def init(self, x0: torch.Tensor | None = None):
        raise NotImplementedError

    def step(self, state):
        raise NotImplementedError

    def output(self, state) -> torch.Tensor:
        """The point at which the method is evaluated."""
        return state.x

    def known_gradient(self, state) -> torch.Tensor | None:
        r""":math:`\nabla f` at ``output(state)`` when the state already holds it exactly (else None).

        The simulator's recorder uses it to skip one full gradient evaluation per record.
        """
        return None

    def params(self) -> dict[str, Any]:
        """Every setting of the method, resolved."""
        out = {
            "algorithm": self.name,
            "gamma": self.gamma,
            "seed": self.seed,
            "compressor": _describe(self.compressor),
            "downlink_compressor": _describe(self.downlink_compressor),
        }
        out.update(self._extra_params())
        return out

    def with_gamma(self, gamma: float) -> "Algorithm":
        """A copy of this method with another stepsize (same network, same settings)."""
        other = copy.copy(self)
        other.gamma = check_positive("gamma", gamma, type(self).__name__)
        return other

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gamma={self.gamma:.6g}, compressor={self.compressor!r})"

    # ------------------------------------------------------------------ helpers for subclasses
    def _extra_params(self) -> dict[str, Any]:
        return {}

    def _theory_params(self) -> dict[str, Any]:
        """Parameters handed to ``theory.default_stepsize`` besides the constants."""
        return {}

    def _theory_compressor(self):
        return compressor_theory(self.compressor, self.n, self.d)

    def _resolve_gamma(self) -> None:
        """Set ``self.gamma``: the given one, else the theoretical default of ``commpress.theory``."""
        if self._gamma_arg is not None:
            self.gamma = check_positive("gamma", self._gamma_arg, type(self).__name__)
            return
        self.gamma = self.theory_stepsize()

    def theory_stepsize(self) -> float:
        """The theoretical stepsize of this method with these settings (``commpress.theory``)."""
        params = {k: v for k, v in self._theory_params().items() if v is not None}
        try:
            gamma = theory.default_stepsize(self.name, self.problem.smoothness(), self._theory_compressor(),
                                            self.n, self.d, **params)
        except NotImplementedError:
            raise ConfigError(
                f"{self.name}: no theoretical stepsize is known for this problem/compressor; "
                f"pass gamma= {_STEPSIZE_WAYS}, e.g. tuned over 2^j multiples."
            ) from None
        except ConfigError as err:
            raise self._algorithm_hint(err, f"Or pass gamma=<stepsize> {_STEPSIZE_WAYS} to run {self.name} "
                                            "without its theoretical stepsize.") from None
        return check_positive("theoretical gamma", gamma, type(self).__name__)

    def _algorithm_hint(self, err: ConfigError, fix: str) -> ConfigError:
        """``err`` from :mod:`commpress.theory`, its closing hint made true for this algorithm.

        The theory's functions take the constants they miss (``pass delta=...``, ``A=... and B=...``);
        an algorithm takes only its constructor's parameters. A hint naming one it does not take
        is replaced by ``fix`` (e.g. pass a stepsize); hints naming only parameters it takes stay.
        """
        message = str(err)
        match = _PASS_HINT.search(message)
        if match is None:
            return err
        hinted = set(re.findall(r"\b(\w+)=", message[match.start():]))
        taken = {p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if hinted <= taken:
            return err
        return ConfigError(f"{message[:match.start()].rstrip(' ,;:.')}. {fix}")

    def _seed(self, t: int, role: str, *more: int | str) -> int:
        """Round seed ``derive_seed(seed, t, role, *more)``."""
        return derive_seed(self.seed, int(t), role, *more)

    def _x0(self, x0: torch.Tensor | None) -> torch.Tensor:
        if x0 is None:
            x0 = self.problem.x0()
        if not isinstance(x0, torch.Tensor):
            raise InputTypeError(f"x0 must be a torch.Tensor of shape ({self.d},); got {type(x0).__name__}.")
        if x0.shape != (self.d,):
            raise InputError(f"x0 must have shape ({self.d},); got {tuple(x0.shape)}.")
        if not bool(torch.isfinite(x0).all()):
            raise InputError("x0 holds NaN or Inf; start from a finite point.")
        # The state lives on the problem's device: every state tensor derives from x^0 or from the
        # oracles' answers (which are on that device), and the network's messages follow them.
        return x0.to(device=self.problem.device, dtype=self.problem.dtype).clone()

    def _up(self, X: torch.Tensor, compressor: Compressor, t: int, *more: int | str) -> torch.Tensor:
        return self.network.uplink(X, compressor, self._seed(t, "uplink", *more), round=t)

    def _down(self, x: torch.Tensor, t: int, *more: int | str, compressor: Compressor | None = None) -> torch.Tensor:
        comp = self.downlink_compressor if compressor is None else compressor
        return self.network.downlink(x, comp, self._seed(t, "downlink", *more), round=t)


def _describe(compressor: Compressor | None) -> Any:
    if compressor is None:
        return None
    return {"name": compressor.name, **compressor.params()}
