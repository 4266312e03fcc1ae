"""Lazy aggregation and momentum: the 3PC family (EF21, LAG, CLAG), DASHA, DASHA-PAGE, DASHA-MVR: formulas and default parameters.

(Filled in by the family's implementation; BUILDERS and ALIASES are merged into
:mod:`commpress.theory.stepsizes`.)
"""

from __future__ import annotations

__all__: list[str] = []

#: name -> (builder, accepted keyword parameters); see :mod:`commpress.theory.stepsizes`.
BUILDERS: dict = {}
#: Other accepted spellings of the names above.
ALIASES: dict = {}
