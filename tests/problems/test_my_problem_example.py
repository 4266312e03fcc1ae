"""examples/my_problem.py: a user-written Problem subclass, registered, run by cp.simulate.

Each check runs in a fresh interpreter: the example registers "my_quadratic" in the global problem
registry, which must not leak into the other tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "my_problem.py"


def _python(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_example_runs_marina_with_cq_to_convergence():
    out = _python(str(EXAMPLE))
    found = re.fullmatch(r"max_iterations: \|\|grad f\|\|\^2 (\S+) -> (\S+) after 300 rounds, (\S+) uplink bits per client\n", out)
    assert found, out
    first, last, bits = (float(v) for v in found.groups())
    assert last < 1e-8 * first and bits > 0


CHECK = f"""
import runpy, torch, commpress as cp
ns = runpy.run_path({str(EXAMPLE)!r})  # defines and registers the class; not __main__, so no run
MyQuadratic = ns["MyQuadratic"]
assert cp.problems.get("my_quadratic") is MyQuadratic and "my_quadratic" in cp.problems.names()
g = torch.Generator().manual_seed(1)
n, d = 3, 4
M = torch.randn(n, d, d, generator=g, dtype=torch.float64)
A = M @ M.transpose(1, 2) + torch.eye(d, dtype=torch.float64)
b = torch.randn(n, d, generator=g, dtype=torch.float64)
P = cp.problems.make("my_quadratic", A=A, b=b)
X = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
for i in range(n):  # gradients are those of the losses, one point per client
    (gi,) = torch.autograd.grad(P.client_losses(X)[i], X)
    assert torch.allclose(gi[i], P.client_grads(X.detach())[i], atol=1e-12)
x = X.detach()[0]
rows = torch.tensor([2, 0])
assert torch.equal(P.client_grads(x, clients=rows), P.client_grads(x)[rows])
assert torch.equal(P.client_losses(x, clients=rows), P.client_losses(x)[rows])
s = P.smoothness()  # constants against their definitions
H = A.mean(0)
assert abs(s.L_minus - float(torch.linalg.matrix_norm(H, 2))) < 1e-9
assert abs(s.L_pm ** 2 - float(torch.linalg.eigvalsh((A @ A).mean(0) - H @ H)[-1])) < 1e-9
assert torch.allclose(s.L_i, torch.linalg.matrix_norm(A, 2), atol=1e-9)
hist = cp.simulate(P, "marina", compressor="cq", iterations=5)  # an instance goes straight in
assert hist.params["problem"]["name"] == "my_quadratic" and hist.iterations.tolist() == [0, 1, 2, 3, 4, 5]
print("ok")
"""


def test_the_example_problem_is_correct():
    assert _python("-c", CHECK) == "ok\n"
