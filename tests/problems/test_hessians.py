"""Exact client Hessians and Hessian-vector products (the second-order oracle)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

import commpress as cp

PROBLEMS = [
    ("logreg", dict(dim=6, n_clients=3, samples_per_client=15, l2=1e-2)),
    ("nonconvex_logreg", dict(dim=6, n_clients=3, samples_per_client=15)),
    ("least_squares", dict(dim=6, n_clients=3, samples_per_client=15, l2=1e-2)),
    ("quadratic", dict(dim=6, n_clients=3)),
]


@pytest.mark.parametrize("name,kw", PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_hessians_are_the_jacobians_of_the_client_gradients(name, kw):
    p = cp.problems.make(name, **kw)
    g = torch.Generator().manual_seed(0)
    x = 0.5 * torch.randn(p.d, generator=g, dtype=torch.float64)
    H = p.hessians(x)
    assert H.shape == (p.n, p.d, p.d) and torch.allclose(H, H.mT)
    for i in range(p.n):
        J = jacobian(lambda z: p.client_grads(z)[i], x)
        assert torch.allclose(H[i], J, atol=1e-10), (name, i)
    v = torch.randn(p.d, generator=g, dtype=torch.float64)
    assert torch.allclose(p.hessian_vector_products(x, v), H @ v, atol=1e-12)
    rows = torch.tensor([2, 0])
    assert torch.equal(p.hessians(x, clients=rows), H[rows])
    # control: the Hessian at another point differs for the non-quadratic losses
    if "logreg" in name:
        assert not torch.allclose(p.hessians(x + 1.0), H)
