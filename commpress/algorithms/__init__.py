"""Optimisation methods: one module per method, settings in the constructor, explicit state.

>>> alg = cp.algorithms.make("marina", problem, network, compressor="cq", p=0.1)
>>> state = alg.init()
>>> state = alg.step(state)          # a new state; bits are in network.ledger
"""

from commpress.algorithms.base import Algorithm, algorithm_state
from commpress.algorithms.registry import describe, get, make, names, parameters, register

__all__ = ["Algorithm", "algorithm_state", "describe", "get", "make", "names", "parameters", "register"]
