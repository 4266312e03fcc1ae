"""Reproductions of the source papers' figures and tables: ``commpress reproduce NAME [--quick]``.

>>> from commpress import reproductions
>>> reproductions.names()
['cq-dn-plane', 'cq-logreg', 'cq-permk', 'cq-quadratic', 'cq-weighted']
>>> results, claims = reproductions.run("cq-quadratic", quick=True, out="runs/cq-quadratic-quick")
>>> [(c.claim, c.held) for c in claims]

A reproduction is a TOML file ``commpress/reproductions/NAME.toml`` (the paper's claim, the
sweeps, a reduced ``[quick]`` version) and a module ``commpress/reproductions/NAME.py`` (dashes
become underscores) with a ``check(results)`` function that tests the claim on the measured
numbers. ``run`` executes every panel of the file as an ordinary sweep of
:mod:`commpress.experiments` (stored run by run, so an interrupted reproduction resumes where it
stopped), then writes into the output folder:

- ``panels/<panel>/``: each sweep folder (``summary.json``, ``runs/<id>/metrics.csv``, ...);
- ``figure.png``: the figure in the paper's style (default: one subplot per panel, log
  :math:`\\|\\nabla f\\|^2` against uplink bits per client, each method at its best stepsize multiplier);
- ``claims.json``: a list of ``{"claim", "held", "numbers"}`` (plus ``"note"``, the reading of why,
  and ``"unmeasurable"``, why the numbers could not be measured, where given);
- ``report.md``: the claim, the seeds, the verdicts with their numbers (``median [min–max]`` over the
  seeds), the figure (median lines, min–max bands), the per-panel tables and the choices made where
  the paper's numbers were lost;
- ``reproduction.json`` (the resolved file) and ``data.json`` (numbers a module computed itself).

How to add a reproduction
-------------------------
1. Write ``commpress/reproductions/NAME.toml``::

       title = "One line for `commpress list reproductions`"
       source = "Author et al. YEAR, §4.2, Figure 3"
       claim = "What the paper claims, in its words, short."
       notes = "Every choice made here where the paper's numbers are lost, and why."

       [params]                      # anything your check reads: targets, tolerances, grids
       on_par = 1.25

       [sweep]                       # a sweep config as for `commpress run` (see experiments.config)
       problem = { name = "quadratic", n_clients = 16, dim = 64 }

       [sweep.run]
       stepsize_multipliers = [1, 2, 4]
       seeds = [0, 1, 2, 3, 4]       # random methods: at least 5 seeds; the verdicts read medians
       target = 1e-5                 # stop at ||grad f||^2 <= target; keep the multiplier with fewest bits
       bits_budget = 1e6
       iterations = 20000
       record_every = 4

       [[sweep.methods]]
       algorithm = "marina"
       compressor = "cq"
       params = { convention = "paper" }
       label = "MARINA + CQ"

       [[sweep.methods]]
       algorithm = "marina"
       compressor = "iq"
       params = { convention = "paper" }
       label = "MARINA + IQ"

       [[panels]]                    # one sweep (and one subplot) per panel; keys merge into [sweep]
       name = "s0"
       label = "s = 0"
       problem = { noise_scale = 0.0 }

       [quick]                       # merged over the file by --quick: under a minute, for CI
       sweep = { run = { seeds = [0, 1], stepsize_multipliers = [1, 2] } }
       panels = [{ name = "s0", label = "s = 0", problem = { noise_scale = 0.0, dim = 16 } }]

   A theory-only reproduction has no ``[sweep]`` and no ``[[panels]]``.
2. Write ``commpress/reproductions/NAME.py`` (dashes -> underscores) with::

       from commpress.reproductions import Claim
       from commpress.reproductions._compare import bits, less, spread_text

       def check(results) -> list[Claim]:
           panel = results.panel("s0")
           cq, iq = panel.method("MARINA + CQ"), panel.method("MARINA + IQ")
           won = less(bits(cq), bits(iq))  # medians over seeds; None: neither reached the target
           return [Claim("CQ needs fewer bits than IQ at L± = 0 (medians over seeds)", won is True,
                         {"bits CQ": spread_text(cq), "bits IQ": spread_text(iq)},
                         note="why we think it did not hold" if won is False else "",
                         unmeasurable="neither reached the target" if won is None else "")]

   ``results`` is a :class:`Results`: ``results.panel(name)`` -> :class:`Panel` (its ``summary``,
   ``constants()`` with ``L_-``, ``L_+``, ``L_±``, and ``method(label)`` -> :class:`MethodResult` at the
   multiplier selected by medians over seeds: ``bits_spread()`` and ``final_spread()`` (one number
   per seed; ``.median`` decides, ``.lo``–``.hi`` is shown), ``bits_to_target``, ``bits_to(level)``,
   ``value_at(bits)``, ``final`` (means), ``multiplier``, ``p``, ``runs``), ``results.params`` (the
   ``[params]`` table), ``results.quick``. Optional hooks in
   the same module: ``compute(results)`` (numbers that need no optimiser run; put them in
   ``results.data``), ``figure(results, path) -> path or [paths]`` (a figure other than the
   default) and ``report_extra(results) -> str`` (markdown added to the report).
   The verdict must follow from the numbers; never tune a config until a claim holds: a claim
   that does not hold is reported with its numbers and a note saying why we think so. A claim whose
   numbers cannot be measured (nothing reached the level, a ratio inf/inf, fewer than two points,
   ``all()`` over nothing) is not held and gives the reason in ``unmeasurable``: never held vacuously.
   Random methods run with several seeds (at least 5 in the full version, 2 or 3 in ``--quick``) and
   the checks compare medians over the seeds.
3. Nothing to register: :func:`names` lists every ``*.toml`` here whose module exists. Add a
   test in ``tests/reproductions/`` that runs ``--quick`` and checks ``report.md`` and
   ``claims.json`` (the TOML is package data: ``pyproject.toml`` ships ``reproductions/*.toml``).
"""

from __future__ import annotations

import importlib.util

from commpress.reproductions._results import Claim, MethodResult, Panel, Results
from commpress.reproductions._spec import FOLDER, load_spec

__all__ = ["Claim", "MethodResult", "Panel", "Results", "describe", "load_spec", "names", "run"]


def names() -> list[str]:
    """Every reproduction: a ``NAME.toml`` in this folder with its module ``NAME.py``, sorted."""
    out = []
    for path in FOLDER.glob("*.toml"):
        module = f"commpress.reproductions.{path.stem.replace('-', '_')}"
        if importlib.util.find_spec(module) is not None:
            out.append(path.stem)
    return sorted(out)


def describe(name: str) -> str:
    """The one-line title of a reproduction (its TOML ``title``) and its source."""
    from commpress.reproductions._spec import read

    data = read(name)
    title = " ".join(str(data.get("title", "")).split())
    source = " ".join(str(data.get("source", "")).split())
    return f"{title} [{source}]" if source else title


def run(name: str, *, quick: bool = False, out=None, jobs: int = 1, quiet: bool = False):
    """Run reproduction ``name`` (see the module docstring); returns ``(results, claims)``."""
    from commpress.reproductions._run import run as _run

    return _run(name, quick=quick, out=out, jobs=jobs, quiet=quiet)

