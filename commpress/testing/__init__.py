"""Conformance suites as a public API: check any compressor or algorithm, yours or ours.

>>> import commpress as cp
>>> from commpress.testing import check_compressor, check_algorithm
>>> check_compressor(MyCompressor())               # raises ConformanceError naming each failed property
>>> report = check_compressor(C, raise_on_failure=False)
>>> [(r.name, r.passed) for r in report]
>>> check_algorithm("ef21", params={"compressor": "cq"})

The library's own tests run these same functions on every registered compressor and algorithm.
Each failure says what was expected, what was measured, and the call that replays it.
"""

from commpress.testing._algorithm import ALGORITHM_PROPERTIES, PermutedNetwork, check_algorithm
from commpress.testing._compressor import (
    COMPRESSOR_PROPERTIES,
    EXACT_PROPERTIES,
    STATISTICAL_PROPERTIES,
    check_compressor,
    check_hostile_decode,
)
from commpress.testing._report import CheckResult, ConformanceError, ConformanceReport
from commpress.testing._stats import upper_bound_test, zscore

__all__ = [
    "ALGORITHM_PROPERTIES",
    "COMPRESSOR_PROPERTIES",
    "EXACT_PROPERTIES",
    "STATISTICAL_PROPERTIES",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "PermutedNetwork",
    "check_algorithm",
    "check_compressor",
    "check_hostile_decode",
    "upper_bound_test",
    "zscore",
]
