"""Experiment configs: TOML files validated by pydantic, resolved with every default.

The smallest config::

    [problem]
    name = "quadratic"
    n_clients = 4
    dim = 64

    [run]
    algorithm = "marina"
    compressor = "cq"
    iterations = 200
    seed = 3

Sweeps: ``algorithm``, ``compressor``, ``seed`` and ``stepsize_multiplier`` also take lists (spelled
in the singular or the plural): the runs are every algorithm x compressor (an algorithm that sends
uncompressed vectors, such as ``gd``, runs once, without a compressor) x stepsize multiplier x seed.
A compressor is a name (``"cq"``) or a table with its parameters (``{name = "iq", levels = 2}``).
Partial participation: ``participation = "nice:4"`` (4 clients per round; also ``"independent:0.5"``,
``"full"`` or a table ``{name = "nice", tau = 4}``) in ``[run]`` applies to every partial-participation
method of the sweep (``marina_pp``, ``ef21_pp``, ``diana_pp``, ``dasha_pp``; other methods accept only
``"full"``); per method it is ``params = {participation = "nice:4"}``.
For methods that do not form a product, list them as ``[[methods]]`` tables (``algorithm``,
``compressor``, ``params``, ``label``) instead of ``run.algorithm``. Stopping rules: ``iterations``
(always), ``bits_budget`` (uplink bits per client) and ``target`` (on ||grad f||^2), whichever comes
first. The stepsize is ``stepsize_multiplier x`` the method's theoretical stepsize (or
``x run.stepsize`` when given); per method the report keeps the best multiplier (``run.select``).
``device = "cuda"`` (or ``"cuda:1"``; default ``"cpu"`` when absent) in ``[run]`` runs every run's
problem and method state on that device (``commpress run --device`` overrides it); it is where the
runs compute, not what they compute, so it is not part of the run ids.

Your own data: ``[problem] dataset = "path/to/file"``, a LibSVM file or an ``.npz`` file of arrays
``A`` and ``b`` (written by ``commpress.datasets.save_npz(path, A, b)``). TOML cannot hold arrays,
so the problems' ``data=(A, b)`` is for Python only.

Unknown keys are errors with a "did you mean" hint; every error names the key, the bad value and
what is allowed. ``load_config(path)`` reads a file; ``Config.model_validate(dict)`` a dict;
``check(config)`` additionally builds the problem and the methods once so that every value the
constructors reject (a negative dimension, a bad ``p``) is reported before any run starts.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from commpress.errors import CommpressError, ConfigError
from commpress.experiments._errors import format_validation_error
from commpress.experiments._params import (
    algorithm_defaults,
    check_params,
    lookup,
    no_run_set,
    registry,
    resolved_params,
    resolve_compressor,
)
from commpress.experiments._methods import Method, methods

DEFAULTS_DIR = Path(__file__).parent / "defaults"
#: The config ``commpress run`` runs when given none.
MAIN_CONFIG = DEFAULTS_DIR / "main.toml"


def _listify(value: Any) -> Any:
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    return [value]


def _plural_default(name: str, default: Any) -> Any:
    return Field(default, validation_alias=AliasChoices(name + "s", name))


# ----------------------------------------------------------------------------- models
class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, validate_default=False)


class ProblemConfig(_Table):
    """``[problem]``: a registered problem's name and its constructor parameters (flat)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" not in data:
            return {"name": data.get("name"), "params": {k: v for k, v in data.items() if k != "name"}} \
                if "name" in data else {"params": {k: v for k, v in data.items()}}
        return data

    @model_validator(mode="after")
    def _resolve(self) -> "ProblemConfig":
        try:
            cls = lookup("problems", self.name)
        except ConfigError as err:
            raise ValueError(f"problem.name = {self.name!r}: {err}") from None
        defaults = registry("problems").parameters(cls.name)
        if "data" in defaults:  # arrays (Python only): not a config value, and not part of the run id
            if "data" in self.params:
                raise ValueError(
                    f"problem.data: a config cannot hold arrays (data=(A, b) is for Python). Name a file instead: "
                    f"dataset = \"path/to/file\" (LibSVM, or .npz with arrays A and b written by "
                    f"commpress.datasets.save_npz)."
                )
            defaults = {k: v for k, v in defaults.items() if k != "data"}
        typed = check_params("problem", f"problem {cls.name!r}", self.params, defaults)
        self.name = cls.name
        self.params = resolved_params(typed, defaults)
        return self

    def as_table(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


class MethodConfig(_Table):
    """One ``[[methods]]`` entry: an algorithm with its compressor and parameters."""

    algorithm: str
    compressor: Any = None
    params: dict[str, Any] = Field(default_factory=dict)
    downlink_compressor: Any = None
    label: str | None = None

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, v: str) -> str:
        return lookup("algorithms", v).name

    @field_validator("compressor", "downlink_compressor")
    @classmethod
    def _compressor(cls, v: Any, info) -> Any:
        return resolve_compressor(v, f"methods.{info.field_name}")


_StrList = Annotated[list[str], BeforeValidator(_listify)]
_IntList = Annotated[list[int], BeforeValidator(_listify)]
_FloatList = Annotated[list[float], BeforeValidator(_listify)]
_AnyList = Annotated[list[Any], BeforeValidator(_listify)]


class RunConfig(_Table):
    """``[run]``: what runs (algorithms x compressors, unless ``[[methods]]`` is given), the
    stepsize multipliers, seeds, and the stopping rules."""

    algorithms: _StrList | None = _plural_default("algorithm", None)
    compressors: _AnyList | None = _plural_default("compressor", None)
    params: dict[str, Any] = Field(default_factory=dict)
    downlink_compressor: Any = None
    seeds: _IntList = _plural_default("seed", [0])
    stepsize: float | None = Field(None, gt=0, allow_inf_nan=False)
    stepsize_multipliers: _FloatList = _plural_default("stepsize_multiplier", [1.0])
    iterations: int = Field(1000, ge=1)
    bits_budget: float | None = Field(None, gt=0, allow_inf_nan=False)
    target: float | None = Field(None, gt=0, allow_inf_nan=False)
    record_every: int = Field(1, ge=1)
    select: Literal["auto", "bits_to_target", "final_grad_norm_sq"] = "auto"
    participation: str | dict[str, Any] | None = None
    #: Where every run computes: None (the CPU), "cpu", "cuda" or "cuda:<k>" (checked when loaded).
    device: str | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from commpress._device import resolve_device

        try:
            resolve_device(v, "run.device")
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return v.strip()

    @field_validator("participation")
    @classmethod
    def _participation(cls, v: Any) -> Any:
        if v is None:
            return None
        from commpress.network.sampling import make_sampler

        try:
            make_sampler(v)
        except ConfigError as err:
            raise ValueError(f"run.{err}") from None
        return v

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        if not v:
            raise ValueError("run.algorithms is empty; give at least one, e.g. algorithm = \"marina\".")
        return list(dict.fromkeys(lookup("algorithms", a).name for a in v))

    @field_validator("compressors")
    @classmethod
    def _compressors(cls, v: list[Any] | None) -> list[Any] | None:
        if v is None:
            return None
        if not v:
            raise ValueError("run.compressors is empty; give at least one, e.g. compressor = \"cq\".")
        return [resolve_compressor(c, f"run.compressors[{i}]") for i, c in enumerate(v)]

    @field_validator("downlink_compressor")
    @classmethod
    def _downlink(cls, v: Any) -> Any:
        return resolve_compressor(v, "run.downlink_compressor")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("run.seeds is empty; give at least one seed, e.g. seed = 0.")
        bad = [s for s in v if not 0 <= s < 2**63]
        if bad:
            raise ValueError(f"run.seeds = {v!r}: every seed must be in [0, 2**63); got {bad[0]}.")
        return list(dict.fromkeys(v))

    @field_validator("stepsize_multipliers")
    @classmethod
    def _multipliers(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("run.stepsize_multipliers is empty; give at least one, e.g. [1, 2, 4, 8].")
        bad = [m for m in v if not (m > 0 and math.isfinite(m))]
        if bad:
            raise ValueError(f"run.stepsize_multipliers = {v!r}: every multiplier must be positive and finite; "
                             f"got {bad[0]}. Use powers of two, e.g. [1, 2, 4, 8, 16].")
        return list(dict.fromkeys(float(m) for m in v))


class PlotConfig(_Table):
    """``[plot]``: the PNGs written after a sweep."""

    x: Annotated[list[Literal["bits", "bits_total", "iterations"]], BeforeValidator(_listify)] = ["bits", "iterations"]
    y: Literal["grad_norm_sq", "loss_gap", "dist"] = "grad_norm_sq"


class Config(_Table):
    """A sweep: one problem, several methods, stepsize multipliers, seeds and stopping rules."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    problem: ProblemConfig
    run: RunConfig = Field(default_factory=RunConfig)
    methods: list[MethodConfig] | None = None
    plot: PlotConfig = Field(default_factory=PlotConfig)
    _source: str = PrivateAttr(default="config")

    @property
    def source(self) -> str:
        """Where the config came from (the file name), for error messages."""
        return self._source

    @model_validator(mode="after")
    def _methods_xor_product(self) -> "Config":
        if self.methods is not None:
            if not self.methods:
                raise ValueError("methods is empty; give at least one [[methods]] table or use run.algorithm.")
            given = [k for k in ("algorithms", "compressors") if getattr(self.run, k) is not None]
            if given:
                raise ValueError(f"run.{given[0]} and [[methods]] both say what to run; use one of them "
                                 "([[methods]] for a list of algorithm/compressor pairs).")
        elif self.run.algorithms is None:
            raise ValueError("nothing to run: give run.algorithm (e.g. algorithm = \"marina\") or [[methods]] tables.")
        if self.run.compressors is not None and self.run.algorithms is not None:
            from commpress.algorithms.registry import get

            if not any(get(a).uses_compressor for a in self.run.algorithms):
                raise ValueError(f"run.compressors is given but none of run.algorithms = {self.run.algorithms} "
                                 "takes a compressor; drop run.compressors or add e.g. \"marina\".")
        if self.run.params and self.methods is None:
            accepted = set().union(*(algorithm_defaults(a) for a in self.run.algorithms))
            for key in self.run.params:
                if key not in accepted:
                    close = difflib.get_close_matches(key, sorted(accepted), n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"run.params.{key}: none of the algorithms {self.run.algorithms} has a parameter "
                                     f"{key!r}.{hint} Their parameters: {', '.join(sorted(accepted)) or '(none)'}.")
        if self.run.participation is not None:
            from commpress.algorithms._participation import participation_params

            for a in (self.run.algorithms or [m.algorithm for m in self.methods or []]):
                participation_params(a, self.run.participation, {}, "run.participation")
        for i, m in enumerate(self.methods or []):
            check_params(f"methods[{i}].params", f"algorithm {m.algorithm!r}", no_run_set(m.params, f"methods[{i}]"),
                          algorithm_defaults(m.algorithm))
        return self


# ----------------------------------------------------------------------------- loading
def load_config(source: Any = None) -> Config:
    """A validated :class:`Config` from a path, a TOML string path, a dict or a Config.

    ``None`` loads the embedded main config (``commpress/experiments/defaults/main.toml``).
    Raises :class:`~commpress.errors.ConfigError` with a one-line message.
    """
    if isinstance(source, Config):
        return source
    if source is None:
        source = MAIN_CONFIG
    if isinstance(source, dict):
        return _validate(source, "config")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            hint = " (it is a folder)" if path.is_dir() else ""
            raise ConfigError(f"config file {str(path)!r} not found{hint}; give a .toml file, or no file for the "
                              "built-in main experiment.")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path.name}: not valid TOML: {err}.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path.name}: not a text file; give a TOML config.") from None
        data.setdefault("name", path.stem)
        return _validate(data, path.name)
    raise ConfigError(f"a config must be a path, a dict or a Config; got {type(source).__name__}.")


def compressor_arg(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The value handed to the library (``{"name": ..., **params}``); None for no compressor."""
    return None if spec is None else dict(spec)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _validate(data: dict[str, Any], source: str) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_one_line(format_validation_error(err, Config, source))) from None
    except CommpressError as err:
        raise ConfigError(_one_line(f"{source}: {err}")) from None
    config._source = source
    return config


def check(config: Config) -> None:
    """Build the problem and every method once: the constructors reject bad values (a negative
    dimension, a bad ``p``) before any run starts. Raises ConfigError naming the table."""
    from commpress.algorithms import registry as algorithms

    from commpress.problems import registry as problems

    try:
        problem = problems.make(config.problem.name, **config.problem.params)
    except CommpressError as err:
        raise ConfigError(_one_line(f"{config.source}: problem: {err}")) from None
    for m in methods(config):
        try:
            algorithms.make(m.algorithm, problem, None, compressor=compressor_arg(m.compressor),
                            downlink_compressor=compressor_arg(m.downlink_compressor), gamma=config.run.stepsize,
                            **{k: v for k, v in m.params.items()})
        except CommpressError as err:
            raise ConfigError(_one_line(f"{config.source}: method {m.label!r}: {err}")) from None


# ----------------------------------------------------------------------------- resolved view
def resolved_dict(config: Config) -> dict[str, Any]:
    """The fully resolved config (every default filled in) as a plain dict in TOML's shape."""
    run = config.run.model_dump()
    out: dict[str, Any] = {"name": config.name, "description": config.description,
                           "problem": config.problem.as_table(), "run": run}
    if config.methods is not None:
        run.pop("algorithms")
        run.pop("compressors")
        out["methods"] = [{"algorithm": m.algorithm, "compressor": m.compressor, "params": m.params,
                           "downlink_compressor": m.downlink_compressor, "label": m.label} for m in methods(config)]
    out["plot"] = config.plot.model_dump()
    return out


__all__ = ["Config", "MAIN_CONFIG", "Method", "check", "compressor_arg", "load_config", "methods", "resolve_compressor",
           "resolved_dict"]
