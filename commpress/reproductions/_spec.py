"""A reproduction's TOML file: validated, with its ``[quick]`` overrides applied and its panels
turned into ordinary sweep configs (:class:`commpress.experiments.Config`).

Layout of ``commpress/reproductions/NAME.toml`` (every key but ``title``, ``source`` and ``claim``
is optional)::

    title = "one line: what is reproduced"          # shown by `commpress list reproductions`
    source = "Panferov et al. 2024, §4.1, Figure 1"  # paper, section, figure or table
    claim = "the paper's claim, in a few sentences"
    notes = "choices made here where the paper's numbers were lost"

    [params]          # free-form values the claim check reads (targets, tolerances, grids)
    [figure]          # x = "bits" | "bits_total" | "iterations", y = "grad_norm_sq" | ..., columns, title
    [sweep]           # the base sweep: [sweep.problem], [sweep.run], [[sweep.methods]], as in any config
    [[panels]]        # one sweep per panel: name, label, and keys deep-merged into [sweep]
    [quick]           # deep-merged over the whole file by --quick (a list, e.g. panels, replaces)

A reproduction without ``[[panels]]`` but with ``[sweep]`` has one panel named ``main``; one with
neither runs no optimiser (a theory reproduction: its module's ``compute`` does the work).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from commpress.errors import ConfigError

FOLDER = Path(__file__).parent


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``: tables merge key by key, any other value (lists too) replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FigureSpec(_Table):
    """``[figure]``: the default figure (one subplot per panel, the papers' convergence plots)."""

    x: str = "bits"
    y: str = "grad_norm_sq"
    columns: int = Field(4, ge=1)
    title: str | None = None
    #: methods (labels) allowed to run off the right edge: the x axis ends at 1.1 x the largest final x of
    #: the other methods (e.g. ["GD"], whose 32 bits per coordinate would squeeze the compressed methods).
    xmax_exclude: list[str] = Field(default_factory=list)

    @field_validator("x")
    @classmethod
    def _x(cls, v: str) -> str:
        if v not in ("bits", "bits_total", "iterations"):
            raise ValueError(f"figure.x = {v!r}: must be 'bits', 'bits_total' or 'iterations'.")
        return v

    @field_validator("y")
    @classmethod
    def _y(cls, v: str) -> str:
        if v not in ("grad_norm_sq", "loss_gap", "dist"):
            raise ValueError(f"figure.y = {v!r}: must be 'grad_norm_sq', 'loss_gap' or 'dist'.")
        return v


class PanelSpec(BaseModel):
    """One ``[[panels]]`` entry: ``name`` (a folder name), ``label`` (the subplot title) and the
    keys that differ from ``[sweep]`` (``problem``, ``run``, ``methods``, ...)."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    label: str = ""

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ReproductionSpec(_Table):
    """A validated reproduction file (after ``[quick]`` when asked)."""

    name: str
    title: str
    source: str
    claim: str
    notes: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    figure: FigureSpec = Field(default_factory=FigureSpec)
    sweep: dict[str, Any] | None = None
    panels: list[PanelSpec] = Field(default_factory=list)
    quick: dict[str, Any] = Field(default_factory=dict)
    is_quick: bool = False

    def panel_configs(self) -> list[tuple[PanelSpec, Any]]:
        """Every panel with its validated sweep :class:`~commpress.experiments.Config`."""
        from commpress.experiments.config import load_config

        panels = self.panels
        if not panels and self.sweep is not None:
            panels = [PanelSpec(name="main", label="")]
        if panels and self.sweep is None and not all("problem" in p.overrides() for p in panels):
            raise ConfigError(f"reproduction {self.name!r}: panels need a [sweep] table (or a problem each).")
        out = []
        names = [p.name for p in panels]
        if len(set(names)) != len(names):
            raise ConfigError(f"reproduction {self.name!r}: panel names must be unique; got {names}.")
        for p in panels:
            data = deep_merge(self.sweep or {}, p.overrides())
            data["name"] = f"{self.name}{'-quick' if self.is_quick else ''}-{p.name}"
            try:
                config = load_config(data)
            except ConfigError as err:
                raise ConfigError(f"reproduction {self.name!r}, panel {p.name!r}: {err}") from None
            out.append((p, config))
        return out


def path_of(name: str) -> Path:
    return FOLDER / f"{name}.toml"


def read(name: str) -> dict[str, Any]:
    """The raw TOML table of a reproduction file."""
    path = path_of(name)
    if not path.is_file():
        raise ConfigError(f"reproduction {name!r} has no file {path.name} in {FOLDER}.")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path.name}: not valid TOML: {err}.") from None


def load_spec(name: str, *, quick: bool = False) -> ReproductionSpec:
    """The validated spec of reproduction ``name``; ``quick=True`` applies its ``[quick]`` table."""
    data = read(name)
    data.setdefault("name", name)
    if quick:
        over = data.get("quick", {})
        if not isinstance(over, dict):
            raise ConfigError(f"{name}.toml: [quick] must be a table.")
        data = deep_merge({k: v for k, v in data.items() if k != "quick"}, over)
        data["quick"] = over
        data["is_quick"] = True
    try:
        return ReproductionSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ConfigError(f"{name}.toml: {where}: {first.get('msg')}.") from None
