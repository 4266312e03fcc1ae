"""Small helpers the claim checks share: bits with "not reached" as infinity (medians over seeds), ratios,
comparisons that say when they cannot be decided, formatting."""

from __future__ import annotations

import math
from typing import Any


def bits(method) -> float:
    """Median over seeds of the bits to the panel's target, ``inf`` when the median seed did not reach it
    (within the budget)."""
    return method.bits_spread().median


def undecided(a: float, b: float, *, zero: bool = False) -> bool:
    """``a`` and ``b`` cannot be ordered: one is nan (not measured), or both are inf (neither reached the
    level, or both diverged); with ``zero=True`` also both 0 (ratios x/inf: neither denominator reached)."""
    if math.isnan(a) or math.isnan(b):
        return True
    if math.isinf(a) and math.isinf(b):
        return True
    return zero and a == 0.0 and b == 0.0


def less(a: float, b: float, *, factor: float = 1.0, or_equal: bool = False, zero: bool = False) -> bool | None:
    """``a < factor · b`` (``<=`` with ``or_equal``); None when it cannot be decided (:func:`undecided`)."""
    if undecided(a, b, zero=zero):
        return None
    rhs = b if math.isinf(b) else factor * b
    return bool(a <= rhs) if or_equal else bool(a < rhs)


def all_hold(decisions: dict[str, bool | None]) -> tuple[bool, list[str], list[str]]:
    """A claim that needs every comparison: ``(held, refuted keys, undecided keys)``. Held only when every
    decision is True; a False refutes it (a measured loss); otherwise an undecided one (None) leaves it
    not measured. No decision at all is not held either."""
    refuted = [k for k, v in decisions.items() if v is False]
    open_ = [k for k, v in decisions.items() if v is None]
    return bool(decisions) and not refuted and not open_, refuted, open_


def unmeasured_reason(refuted: list[str], open_: list[str], what: str) -> str:
    """The ``unmeasurable`` text of :func:`all_hold`'s verdict: empty when a comparison refuted the claim
    (it is measured) or every one was decided."""
    if refuted or not open_:
        return ""
    return f"{what}: {', '.join(open_)}"


def spread_text(method, measure: str = "bits") -> str:
    """``"median [min–max]"`` over seeds of a method's bits to target (``measure="bits"``, "not reached"
    for inf) or final ‖∇f‖² (``"final"``)."""
    if measure == "bits":
        return method.bits_spread().text(show_bits_text)
    return method.final_spread().text()


def show_bits_text(b: float) -> str:
    return "not reached" if math.isinf(b) else ("nan" if math.isnan(b) else f"{round(b):,}")


def ratio(a: float, b: float) -> float:
    """a / b with the conventions inf/inf = nan, x/inf = 0, inf/x = inf."""
    if math.isinf(a) and math.isinf(b):
        return math.nan
    if math.isinf(b):
        return 0.0
    if math.isinf(a):
        return math.inf
    return a / b


def ratio_reading(r: float, a: str, b: str) -> str:
    """What a ratio of bits a / b (:func:`ratio`) says: ``"0.5"``, ``"inf (a did not reach the target)"``,
    ``"0 (b did not)"``, ``"nan (neither did)"``."""
    if math.isnan(r):
        return "nan (neither reached the target)"
    if math.isinf(r):
        return f"inf ({a} did not reach the target)"
    if r == 0.0:
        return f"0 ({b} did not reach the target)"
    return f"{r:.3g}"


def show_bits(b: float) -> Any:
    """For the ``numbers`` of a claim: an int, or "not reached" (or "nan": not measured)."""
    if math.isnan(b):
        return "nan"
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
