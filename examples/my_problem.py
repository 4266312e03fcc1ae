"""Write your own problem: per-client quadratics f_i(x) = ½ xᵀA_i x - b_iᵀx, then run MARINA with CQ.

    python examples/my_problem.py
"""

import torch

import commpress as cp
from commpress.problems import Problem, Smoothness


@cp.problems.register("my_quadratic")  # optional: makes cp.problems.make("my_quadratic", ...) work
class MyQuadratic(Problem):
    """f(x) = (1/n) Σ_i ½ xᵀA_i x - b_iᵀx with given A (n, d, d) symmetric positive definite, b (n, d)."""

    def __init__(self, A: torch.Tensor, b: torch.Tensor) -> None:
        self.A, self.b = A.double(), b.double()
        self.n, self.d = b.shape  # required: number of clients and dimension

    def _Ax_b(self, x, clients):  # x (d,): every client at x; (rows, d): client i at its own x[i]
        A, b = (self.A, self.b) if clients is None else (self.A[clients], self.b[clients])
        return (A @ x[..., None]).squeeze(-1), b

    def client_grads(self, x, *, clients=None):  # required: ∇f_i(x) of the asked clients, (rows, d)
        Ax, b = self._Ax_b(x, clients)
        return Ax - b

    def client_losses(self, x, *, clients=None):  # required: f_i(x), (rows,)
        Ax, b = self._Ax_b(x, clients)
        return ((0.5 * Ax - b) * x).sum(-1)

    def smoothness(self) -> Smoothness:  # required by the theoretical stepsizes (or pass stepsize=)
        eig = torch.linalg.eigvalsh  # ascending eigenvalues, batched
        A_bar, A2_bar = self.A.mean(0), (self.A @ self.A).mean(0)
        return Smoothness(L_i=eig(self.A)[:, -1], L_minus=float(eig(A_bar)[-1]), L_plus=float(eig(A2_bar)[-1]) ** 0.5,
                          L_pm=float(eig(A2_bar - A_bar @ A_bar)[-1].clamp_min(0)) ** 0.5, mu=float(eig(A_bar)[0]))

    # optional: x0() (default zeros), optimum() -> (f*, x*) (then the history records ||x - x*||^2)


if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    n, d = 8, 50
    M = torch.randn(n, d, d, generator=g, dtype=torch.float64) / d**0.5
    A = M @ M.transpose(1, 2) + 0.1 * torch.eye(d, dtype=torch.float64)  # SPD per client
    problem = cp.problems.make("my_quadratic", A=A, b=torch.randn(n, d, generator=g, dtype=torch.float64))
    hist = cp.simulate(problem, "marina", compressor="cq", iterations=300, seed=0)
    print(f"{hist.status}: ||grad f||^2 {hist.grad_norm_sq[0]:.3g} -> {hist.grad_norm_sq[-1]:.3g} "
          f"after {hist.n_iterations} rounds, {hist.bits_up[-1]:.3g} uplink bits per client")
