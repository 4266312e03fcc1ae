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
  where given);
- ``report.md``: the claim, the verdicts with their numbers, the figure, the per-panel tables and
  the choices made where the paper's numbers were lost;
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
       seeds = [0, 1]
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
       sweep = { run = { seeds = [0], stepsize_multipliers = [1, 2] } }
       panels = [{ name = "s0", label = "s = 0", problem = { noise_scale = 0.0, dim = 16 } }]

   A theory-only reproduction has no ``[sweep]`` and no ``[[panels]]``.
2. Write ``commpress/reproductions/NAME.py`` (dashes -> underscores) with::

       from commpress.reproductions import Claim

       def check(results) -> list[Claim]:
           panel = results.panel("s0")
           cq, iq = panel.method("MARINA + CQ"), panel.method("MARINA + IQ")
           held = cq.bits_to_target is not None and (iq.bits_to_target is None
                                                     or cq.bits_to_target < iq.bits_to_target)
           return [Claim("CQ needs fewer bits than IQ at L± = 0", held,
                         {"bits CQ": cq.bits_to_target, "bits IQ": iq.bits_to_target},
                         note="" if held else "why we think it did not hold")]

   ``results`` is a :class:`Results`: ``results.panel(name)`` -> :class:`Panel` (its ``summary``,
   ``constants()`` with L_-, L_+, L_±, and ``method(label)`` -> :class:`MethodResult`:
   ``bits_to_target``, ``bits_to(level)``, ``value_at(bits)``, ``final``, ``multiplier``, ``p``,
   ``runs``), ``results.params`` (the ``[params]`` table), ``results.quick``. Optional hooks in
   the same module: ``compute(results)`` (numbers that need no optimiser run; put them in
   ``results.data``), ``figure(results, path) -> path or [paths]`` (a figure other than the
   default) and ``report_extra(results) -> str`` (markdown added to the report).
   The verdict must follow from the numbers; never tune a config until a claim holds: a claim
   that does not hold is reported with its numbers and a note saying why we think so.
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

