"""The tridiagonal quadratics' oracles without (n, d) temporaries give the plain formulas' bits."""

from __future__ import annotations

import pytest
import torch

import commpress.problems as problems


def _plain_hess(P, x, rows=None):
    alpha = P.alpha if rows is None else P.alpha[rows]
    beta = P.beta if rows is None else P.beta[rows]
    y = 2.0 * x
    y[..., :-1] -= x[..., 1:]
    y[..., 1:] -= x[..., :-1]
    Tx = y.unsqueeze(0) if y.dim() == 1 and alpha.numel() == 1 else y
    out = Tx.mul_(alpha[:, None]) if Tx.dim() == 2 else alpha[:, None] * Tx
    return out.add_(beta[:, None] * x)


def _plain_grads(P, x, rows=None):
    return _plain_hess(P, x, rows) - (P.b if rows is None else P.b[rows])


def _plain_losses(P, x):
    return 0.5 * (_plain_hess(P, x) * x).sum(-1) - (P.b * x).sum(-1)


def _same_bits(a, b):
    return torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())


@pytest.mark.parametrize("variant", ["generator", "random beta", "dense b", "negative zero in b"])
@pytest.mark.parametrize("n,d", [(21, 1 << 16), (4, 7), (1, 1)])
def test_grads_and_losses_equal_the_plain_formulas(variant, n, d):
    g = torch.Generator().manual_seed(0)
    P = problems.make("quadratic", n_clients=n, dim=d, noise_scale=0.1, seed=1)
    if variant == "random beta":
        P.beta = torch.randn(n, dtype=torch.float64, generator=g)
    elif variant == "dense b":
        P.b = torch.randn(n, d, dtype=torch.float64, generator=g)
    elif variant == "negative zero in b":
        P.b = torch.zeros(n, d, dtype=torch.float64)
        P.b[n // 2, d // 2] = -0.0
    for x in (torch.randn(d, dtype=torch.float64, generator=g), torch.randn(n, d, dtype=torch.float64, generator=g)):
        x.view(-1)[0] = -0.0
        assert _same_bits(P.client_grads(x), _plain_grads(P, x))
        assert _same_bits(P.client_losses(x), _plain_losses(P, x))
        rows = torch.tensor([n - 1, 0]) if n > 1 else torch.tensor([0])
        xs = x if x.dim() == 1 else x[rows]
        assert _same_bits(P.client_grads(xs, clients=rows), _plain_grads(P, xs, rows))


def test_an_in_place_change_of_b_is_seen():
    P = problems.make("quadratic", n_clients=3, dim=50, seed=0)
    x = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    P.client_grads(x)  # caches b's support (column 0)
    P.b[:, 30] += 1.0
    assert _same_bits(P.client_grads(x), _plain_grads(P, x))
    assert _same_bits(P.client_losses(x), _plain_losses(P, x))


def test_gradients_still_differentiable():
    P = problems.make("quadratic", n_clients=3, dim=6, seed=0)
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    P.client_losses(x).sum().backward()
    assert torch.allclose(x.grad, P.client_grads(x.detach()).sum(0))
