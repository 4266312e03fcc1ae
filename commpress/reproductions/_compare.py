"""Small helpers the claim checks share: bits with "not reached" as infinity, ratios, formatting."""

from __future__ import annotations

import math
from typing import Any


def bits(method) -> float:
    """Bits to the panel's target, ``inf`` when the method did not reach it (within the budget)."""
    b = method.bits_to_target
    return math.inf if b is None else float(b)


def ratio(a: float, b: float) -> float:
    """a / b with the conventions inf/inf = nan, x/inf = 0, inf/x = inf."""
    if math.isinf(a) and math.isinf(b):
        return math.nan
    if math.isinf(b):
        return 0.0
    if math.isinf(a):
        return math.inf
    return a / b


def show_bits(b: float) -> Any:
    """For the ``numbers`` of a claim: an int, or "not reached"."""
    return "not reached" if math.isinf(b) else round(b)


def rounded(v: float, digits: int = 3) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return v if v is None else ("nan" if math.isnan(v) else "inf")
    return float(f"{v:.{digits}g}")


def input_errors(problem, specs: dict[str, Any], trials: int = 100, steps: int = 50) -> dict[str, float]:
    """Relative error of the server's mean, E‖(1/n)Σ C_i(D_i) − (1/n)Σ D_i‖² / ((1/n)Σ‖D_i‖²), of each
    compressor in ``specs`` (key -> name or {name, params}) on the inputs MARINA compresses on this
    problem: the gradient differences D_i = ∇f_i(x^{k+1}) − ∇f_i(x^k) of a GD step x^{k+1} = x^k − ∇f(x^k)/L_-
    at k = ``steps`` (identical across clients when L± = 0; after 50 steps on the tridiagonal quadratics
    they are dense, the first ones are 3-sparse, where the Hadamard DRIVE is far from unbiased).
    Measured over ``trials`` seeds, not a bound: the numbers behind the readings of the claims."""
    from commpress import compressors

    L = float(problem.smoothness().L_minus)
    x = problem.x0()
    for _ in range(steps):
        x = x - problem.grad(x) / L
    x1 = x - problem.grad(x) / L
    D = problem.client_grads(x1) - problem.client_grads(x)
    mean = D.mean(0)
    scale = float(D.pow(2).sum(1).mean())
    out = {}
    for key, spec in specs.items():
        comp = compressors.make(spec) if isinstance(spec, str) else compressors.make(
            spec["name"], **{k: v for k, v in spec.items() if k != "name"})
        errs = [float((comp.apply(D, seed)[0].mean(0) - mean).pow(2).sum()) for seed in range(trials)]
        out[key] = sum(errs) / trials / scale
    return out
