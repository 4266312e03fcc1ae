"""Distributed problems f = (1/n) sum_i f_i, all clients answered in one batched call.

>>> import commpress as cp
>>> P = cp.problems.make("quadratic", n_clients=10, dim=1000, noise_scale=0.05)
>>> P.client_grads(P.x0()).shape            # (10, 1000)
>>> P.smoothness().L_pm                      # exact Hessian variance
>>> P = cp.problems.make("logreg", dataset="mushrooms", n_clients=12, l2=0.1)
>>> f_star, x_star = P.optimum()
>>> P = cp.problems.make("logreg", data=(A, b), n_clients=8)   # your arrays: NumPy, SciPy sparse, torch

Registered names: ``quadratic`` (Algorithm 5), ``quadratic_spread`` (Algorithm 6),
``least_squares``, ``logreg``, ``nonconvex_logreg``, ``mlp``, ``cnn``. ``QuadraticProblem`` builds a
problem from explicit matrices. Your own problem: subclass :class:`Problem` (its docstring lists
what to implement; ``examples/my_problem.py``) and pass the instance to ``cp.simulate``.
"""

from commpress.problems._quadratic_base import QuadraticProblem, TridiagonalQuadratic
from commpress.problems._splits import SPLITS, ClientData
from commpress.problems.base import Problem, Smoothness
from commpress.problems.registry import describe, get, make, names, parameters, register

__all__ = [
    "ClientData",
    "Problem",
    "QuadraticProblem",
    "SPLITS",
    "Smoothness",
    "TridiagonalQuadratic",
    "describe",
    "get",
    "make",
    "names",
    "parameters",
    "register",
]
