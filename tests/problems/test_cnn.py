"""cnn: batched per-client oracles vs a torch.nn reference, minibatches, held-out rows, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import commpress as cp
import commpress.problems  # noqa: F401
from tests.compressors._stats import zscore

GEN = torch.Generator().manual_seed


@pytest.fixture(scope="module")
def cnn():
    # digits: 8x8 -> 4 -> 2 -> pool 1; small and bundled with scikit-learn
    return cp.problems.make("cnn", dataset="digits", n_clients=4, channels=(3, 4), l2=1e-3, holdout=0.25,
                            samples=400, seed=1, dtype="float64")


def _reference_net(p, x):
    """An independent torch.nn network holding the parameters of x (layout of CNN.unflatten)."""
    c1, c2 = p.channels
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, c1, 5, stride=2, padding=2, dtype=torch.float64), torch.nn.Tanh(),
        torch.nn.Conv2d(c1, c2, 5, stride=2, padding=2, dtype=torch.float64), torch.nn.Tanh(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(p.feat, p.classes, dtype=torch.float64),
    )
    w1, b1, w2, b2, w3, b3 = p.unflatten(x)
    params = {"0.weight": w1, "0.bias": b1, "2.weight": w2, "2.bias": b2, "6.weight": w3.T, "6.bias": b3}
    return net, params


def _reference_loss(p, x, A, y):
    net, params = _reference_net(p, x)
    logits = torch.func.functional_call(net, params, (A.reshape(-1, 1, p.side, p.side),))
    return F.cross_entropy(logits, y) + 0.5 * p.l2 * x @ x


def test_shapes_start_and_holdout(cnn):
    c1, c2 = 3, 4
    assert cnn.side == 8 and cnn.feat == c2 * 1 * 1
    assert cnn.d == c1 * 25 + c1 + c2 * c1 * 25 + c2 + cnn.feat * 10 + 10
    x0 = cnn.x0()
    assert x0.shape == (cnn.d,) and torch.equal(x0, cnn.x0())
    w1 = cnn.unflatten(x0)[0]
    assert w1.shape == (c1, 1, 5, 5) and float(w1.abs().max()) <= 1 / 5
    assert int(cnn.num_samples().sum()) == 300 and cnn.test_targets.numel() == 100
    # held-out rows are rows of the dataset that no client holds
    from sklearn.datasets import load_digits

    pixels = torch.from_numpy(load_digits().data / 16.0)
    train = cnn.data.features[cnn.data.mask]
    key = lambda rows: {tuple(r.tolist()) for r in rows}  # noqa: E731
    assert not key(train) & key(cnn.test_features)
    assert key(cnn.test_features) <= key(pixels)


def test_gradients_match_torch_nn(cnn):
    X = cnn.x0() + 0.05 * torch.randn(cnn.n, cnn.d, generator=GEN(0), dtype=torch.float64)
    x = X[0]
    G, G_own, losses = cnn.client_grads(x), cnn.client_grads(X), cnn.client_losses(x)
    own_losses = cnn.client_losses(X)
    for i in range(cnn.n):
        m = int(cnn.num_samples()[i])
        A, y = cnn.data.features[i, :m], cnn.data.targets[i, :m]
        for point, ref, lref in ((x, G, losses), (X[i], G_own, own_losses)):
            xi = point.clone().requires_grad_(True)
            loss = _reference_loss(cnn, xi, A, y)
            (g,) = torch.autograd.grad(loss, xi)
            assert torch.allclose(ref[i], g, rtol=1e-10, atol=1e-12)
            # client_losses(x) runs the one-point forward, client_losses(X) the grouped one
            assert float(lref[i]) == pytest.approx(float(loss.detach()), rel=1e-12)
    for rows in (torch.tensor([3, 1]), torch.tensor([2])):
        assert torch.equal(cnn.client_grads(X[rows], clients=rows), G_own[rows])


def test_batch_gradients_are_the_mean_of_sample_gradients(cnn):
    X = cnn.x0() + 0.05 * torch.randn(cnn.n, cnn.d, generator=GEN(4), dtype=torch.float64)
    index = cnn.sample_indices(GEN(1), 3)
    S = cnn.sample_grads(X, index)
    assert S.shape == (cnn.n, 3, cnn.d)
    i, k = 2, 1
    j = int(index[i, k])
    xi = X[i].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_reference_loss(cnn, xi, cnn.data.features[i, j:j + 1], cnn.data.targets[i, j:j + 1]), xi)
    assert torch.allclose(S[i, k], g, rtol=1e-10, atol=1e-12)
    B = cnn.batch_grads(X, index)
    assert torch.allclose(B, S.mean(1), rtol=1e-10, atol=1e-13)
    for rows in (torch.tensor([3, 0]), torch.tensor([1])):
        assert torch.equal(cnn.batch_grads(X[rows], index[rows], clients=rows), B[rows])
    with pytest.raises(cp.InputError, match="rows, k"):
        cnn.batch_grads(X, index[:, 0])


def test_minibatch_gradients_are_unbiased(cnn):
    x = cnn.x0()
    truth = cnn.client_grads(x)
    g = GEN(2)
    T = 300
    S = torch.stack([cnn.minibatch_grads(x, g, 4) for _ in range(T)])
    live = S.std(0) > 1e-14  # pixels that are zero in every sample of a client give exact-zero coordinates
    assert zscore(S, truth)[live].abs().max() <= 5.0
    assert torch.allclose(S[:, ~live], truth[~live].expand(T, -1), atol=1e-12)
    B = S + 0.2 * truth.abs().max()  # negative control
    assert zscore(B, truth)[live].abs().max() > 5.0


def test_test_accuracy(cnn):
    x = cnn.x0() + 0.1 * torch.randn(cnn.d, generator=GEN(3), dtype=torch.float64)
    net, params = _reference_net(cnn, x)
    with torch.no_grad():
        logits = torch.func.functional_call(net, params, (cnn.test_features.reshape(-1, 1, 8, 8),))
    expected = float((logits.argmax(-1) == cnn.test_targets).double().mean())
    assert cnn.test_accuracy(x) == pytest.approx(expected, abs=0)
    assert 0.0 <= cnn.accuracy(x) <= 1.0
    none = cp.problems.make("cnn", dataset="digits", n_clients=2, channels=(2, 2), holdout=0.0, samples=50)
    with pytest.raises(cp.ConfigError, match="holdout"):
        none.test_accuracy(none.x0())


def test_mnist_shape(tmp_path, monkeypatch):
    # MNIST is not shipped: fabricated t10k IDX files (250 random 28x28 images, labels 0..9) in
    # <COMMPRESS_DATA>/mnist/, where load_mnist looks by default
    import gzip
    import struct

    n = 250
    images = torch.randint(0, 256, (n, 28, 28), generator=GEN(0), dtype=torch.uint8).numpy()
    labels = (torch.arange(n) % 10).to(torch.uint8).numpy()
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">4I", 2051, n, 28, 28) + images.tobytes()))
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">2I", 2049, n) + labels.tobytes()))
    monkeypatch.setenv("COMMPRESS_DATA", str(tmp_path))
    p = cp.problems.make("cnn", n_clients=8, samples=200)
    assert p.side == 28 and p.d == 4874 and p.dtype == torch.float32
    assert int(p.num_samples().sum()) == 160 and p.test_targets.numel() == 40


@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="mushrooms"), "square grey images"),
    (dict(holdout=1.0), "holdout"),
    (dict(channels=(4,)), "channels"),
    (dict(channels=(4, 0)), "channel count"),
    (dict(samples=10**6), "samples"),
    (dict(samples=10, n_clients=9), "training rows"),
    (dict(activation="relu"), "activation"),
])
def test_errors(kwargs, match):
    params = dict(dataset="digits", n_clients=4, channels=(2, 2))
    params.update(kwargs)
    with pytest.raises(cp.ConfigError, match=match):
        cp.problems.make("cnn", **params)
