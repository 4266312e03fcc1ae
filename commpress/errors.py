"""The CommpressError family.

Every error says what was wrong, the offending value, and how to fix it. Subclasses are
also ``ValueError`` / ``TypeError`` where that fits, so callers that catch the builtin
exceptions keep working (the scikit-learn convention).
"""

from __future__ import annotations


class CommpressError(Exception):
    """Base class of every error raised on purpose by commpress."""


class ConfigError(CommpressError, ValueError):
    """An invalid parameter: a compressor, problem, algorithm or config value."""


class InputError(CommpressError, ValueError):
    """Invalid data handed to a compressor or problem: NaN/Inf, wrong shape, wrong dtype."""


class InputTypeError(CommpressError, TypeError):
    """Input of the wrong type (not a tensor, integer tensor where floats are needed)."""


class PayloadError(CommpressError, ValueError):
    """A wire payload that cannot be decoded: truncated, over-long, corrupted or absurd."""


class DataFileError(CommpressError, ValueError):
    """A data file that is missing or malformed."""


class DistributedError(CommpressError, RuntimeError):
    """A failure of distributed execution: a dead or hung rank, a broken collective."""


class NonFiniteError(InputError):
    """A vector to be sent holds NaN/Inf or overflows its wire format: the run has diverged."""
