"""commpress: communication-efficient distributed optimization, honest to the bit."""

from commpress import compressors, datasets, problems, theory
from commpress import algorithms, integrations, network
from commpress.simulate import History, simulate
from commpress.experiments import run
from commpress import distributed
from commpress._malloc import keep_freed_memory
from commpress._rng import derive_seed
from commpress.errors import (
    CommpressError,
    ConfigError,
    DataFileError,
    DistributedError,
    InputError,
    InputTypeError,
    NonFiniteError,
    PayloadError,
)

__version__ = "0.1.0"

__all__ = [
    "keep_freed_memory",
    "algorithms",
    "compressors",
    "integrations",
    "network",
    "simulate",
    "run",
    "distributed",
    "History",
    "datasets",
    "problems",
    "theory",
    "derive_seed",
    "CommpressError",
    "ConfigError",
    "DataFileError",
    "DistributedError",
    "InputError",
    "InputTypeError",
    "NonFiniteError",
    "PayloadError",
]
