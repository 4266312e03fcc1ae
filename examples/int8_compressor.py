"""A user-written compressor, checked and trained: the int8 plugin of ``examples/plugin``.

``examples/plugin/commpress_int8/__init__.py`` is 8-bit stochastic rounding written with public
names only (its package registers it as ``"int8"`` through an entry point). This script checks it
with the library's conformance suite, then runs MARINA with it at the theoretical stepsize and
probability p, which MARINA derives from the constants the compressor declares in ``theory(n, d)``.
Run: ``python examples/int8_compressor.py`` (or ``pip install -e examples/plugin`` first).
"""

import sys
from pathlib import Path

import commpress as cp
from commpress.testing import check_compressor

sys.path.insert(0, str(Path(__file__).resolve().parent / "plugin"))  # as after `pip install -e examples/plugin`
from commpress_int8 import Int8  # noqa: E402

if __name__ == "__main__":
    report = check_compressor(Int8())  # raises ConformanceError, naming each property that fails
    print(f"check_compressor: {sum(r.passed for r in report)}/{len(report)} properties hold")

    problem = cp.problems.make("quadratic", n_clients=10, dim=100, seed=0)
    history = cp.simulate(problem, "marina", compressor=Int8(), iterations=300)  # no stepsize, no p: theory's
    params = history.params
    assert params["stepsize_source"] == "theory" and params["p_source"] == "theory", params
    ratio = float(history.grad_norm_sq[-1] / history.grad_norm_sq[0])
    print(f"MARINA + int8: gamma = {params['gamma']:.4g} and p = {params['p']:.4g} from theory; "
          f"||grad f||^2 fell by {ratio:.2e} in 300 rounds, {float(history.bits_up[-1]):.4g} bits up per client")
    assert ratio < 1e-3, ratio
