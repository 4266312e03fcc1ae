"""mlp: batched per-client oracles vs torch.nn reference, per-sample gradients, smoothness estimate."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import commpress as cp
import commpress.problems  # noqa: F401
from tests.compressors._stats import zscore

GEN = torch.Generator().manual_seed


@pytest.fixture(scope="module")
def mlp():
    return cp.problems.make("mlp", n_clients=5, hidden=(6, 5), l2=1e-3, split="shuffled", seed=1)


def _reference_loss(p, x, A, y):
    """An independent torch.nn forward for one client's rows."""
    layers, off, mods = p.layers, 0, []
    for k, (i, o) in enumerate(layers):
        lin = torch.nn.Linear(i, o, dtype=torch.float64)
        mods.append(lin)
        if k < len(layers) - 1:
            mods.append(torch.nn.Tanh())
    net = torch.nn.Sequential(*mods)
    params = {}
    for k, (i, o) in enumerate(layers):
        W = x[off:off + i * o].reshape(i, o)
        off += i * o
        params[f"{2 * k}.weight"] = W.T
        params[f"{2 * k}.bias"] = x[off:off + o]
        off += o
    logits = torch.func.functional_call(net, params, (A,))
    return F.cross_entropy(logits, y) + 0.5 * p.l2 * x @ x


def test_shapes_and_start(mlp):
    assert mlp.sizes == (64, 6, 5, 10)
    assert mlp.d == 64 * 6 + 6 + 6 * 5 + 5 + 5 * 10 + 10
    x0 = mlp.x0()
    assert x0.shape == (mlp.d,) and torch.equal(x0, mlp.x0())
    W1, b1 = mlp.unflatten(x0)[0]
    assert float(W1.abs().max()) <= 1 / 8 and W1.shape == (64, 6)
    assert int(mlp.num_samples().sum()) == 1797


def test_client_gradients_match_torch_nn(mlp):
    X = mlp.x0() + 0.05 * torch.randn(mlp.n, mlp.d, generator=GEN(0), dtype=torch.float64)
    x = X[0]
    G, G_own, losses = mlp.client_grads(x), mlp.client_grads(X), mlp.client_losses(x)
    for i in range(mlp.n):
        m = int(mlp.num_samples()[i])
        A, y = mlp.data.features[i, :m], mlp.data.targets[i, :m]
        for point, ref in ((x, G), (X[i], G_own)):
            xi = point.clone().requires_grad_(True)
            loss = _reference_loss(mlp, xi, A, y)
            (g,) = torch.autograd.grad(loss, xi)
            assert torch.allclose(ref[i], g, rtol=1e-10, atol=1e-12)
            if point is x:
                assert float(losses[i]) == pytest.approx(float(loss.detach()), rel=1e-12)
    assert torch.allclose(mlp.grad(x), G.mean(0), atol=0)
    for rows in (torch.tensor([4, 1]), torch.tensor([3]), torch.arange(5).flip(0)):
        assert torch.equal(mlp.client_grads(x, clients=rows), G[rows])
        assert torch.equal(mlp.client_grads(X[rows], clients=rows), G_own[rows])
        assert torch.equal(mlp.client_losses(X[rows], clients=rows), mlp.client_losses(X)[rows])


def test_sample_gradients_match_torch_nn(mlp):
    x = mlp.x0()
    index = mlp.sample_indices(GEN(1), 2)
    G = mlp.sample_grads(x, index)
    assert G.shape == (mlp.n, 2, mlp.d)
    for i in range(mlp.n):
        for k in range(2):
            j = int(index[i, k])
            xi = x.clone().requires_grad_(True)
            loss = _reference_loss(mlp, xi, mlp.data.features[i, j:j + 1], mlp.data.targets[i, j:j + 1])
            (g,) = torch.autograd.grad(loss, xi)
            assert torch.allclose(G[i, k], g, rtol=1e-10, atol=1e-12)
    for rows in (torch.tensor([2]), torch.tensor([4, 0])):
        assert torch.equal(mlp.sample_grads(x, index[rows], clients=rows), G[rows])
        assert torch.equal(mlp.minibatch_grads(x, GEN(3), 3, clients=rows), mlp.minibatch_grads(x, GEN(3), 3)[rows])


def test_minibatch_gradients_are_unbiased(mlp):
    x = mlp.x0()
    truth = mlp.client_grads(x)
    g = GEN(2)
    T = 400
    S = torch.stack([mlp.minibatch_grads(x, g, 4) for _ in range(T)])
    live = S.std(0) > 1e-14  # zero pixels in every sample of a client give exact-zero coordinates
    assert zscore(S, truth)[live].abs().max() <= 5.0
    assert torch.allclose(S[:, ~live], truth[~live].expand(T, -1), atol=1e-12)
    B = S + 0.2 * truth.abs().max()  # negative control
    assert zscore(B, truth)[live].abs().max() > 5.0


def test_smoothness_estimate_matches_the_hessian():
    p = cp.problems.make("mlp", n_clients=3, hidden=(3,), l2=0.0, seed=0)
    s = p.smoothness()
    assert not s.exact and "estimate" in s.notes
    x = p.x0()
    for i in range(3):
        H = torch.autograd.functional.hessian(lambda v: p._losses(v.expand(3, -1), None)[i], x)
        top = float(torch.linalg.eigvalsh(H).abs().max())
        assert float(s.L_i[i]) <= top * (1 + 1e-9)
        assert float(s.L_i[i]) >= 0.95 * top
    H = torch.autograd.functional.hessian(lambda v: p._losses(v, None).mean(), x)
    top = float(torch.linalg.eigvalsh(H).abs().max())
    assert top * 0.95 <= s.L_minus <= top * (1 + 1e-9)


def test_other_datasets_and_errors():
    p = cp.problems.make("mlp", dataset="splice", n_clients=4, hidden=(), split="label_skew")
    assert p.classes == 2 and p.d == 60 * 2 + 2
    assert set(p.data.targets[0, : int(p.num_samples()[0])].tolist()) == {0}
    with pytest.raises(cp.ConfigError, match="activation"):
        cp.problems.make("mlp", activation="relu")
    with pytest.raises(cp.ConfigError, match="hidden"):
        cp.problems.make("mlp", hidden=(0,))
    with pytest.raises(cp.ConfigError, match="n_clients"):
        cp.problems.make("mlp", n_clients=5000)
