"""least_squares, logreg, nonconvex_logreg: oracles vs autograd, finite sums, constants, optimum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

import commpress as cp
import commpress.datasets  # noqa: F401  (cp.datasets)
import commpress.problems  # noqa: F401  (cp.problems)
from commpress.problems._quadform import dense_constants
from tests.compressors._stats import zscore
from tests.problems._shared import need, reference_blocks

make = cp.problems.make
GEN = torch.Generator().manual_seed


def _data_term(name, z, t):
    if name == "least_squares":
        return 0.5 * (z - t) ** 2
    return torch.log1p(torch.exp(-t * z))  # moderate margins in these tests


def _reg(problem, x):
    if problem.name == "nonconvex_logreg":
        return problem.reg * (x**2 / (1 + x**2)).sum()
    return 0.5 * problem.l2 * x @ x


def _blocks(problem):
    """Client rows written independently of the padded storage when the data is a file."""
    if problem.params["dataset"] == "synthetic":
        return [(problem.features[i, :m], problem.targets[i, :m]) for i, m in enumerate(problem.num_samples().tolist())]
    X, y = cp.datasets.load(problem.params["dataset"])
    X = torch.from_numpy(X.toarray())
    y = torch.from_numpy(y)
    if problem.classification or torch.unique(y).numel() == 2:
        y = torch.where(y == y.min(), -1.0, 1.0).double()
    return reference_blocks(X, y, problem.n)


CASES = [
    ("logreg", dict(dataset="splice", n_clients=7, l2=0.01)),
    ("nonconvex_logreg", dict(dataset="splice", n_clients=7, reg=0.1)),
    ("least_squares", dict(dataset="splice", n_clients=3, l2=0.0)),
    ("logreg", dict(n_clients=4, dim=6, samples_per_client=11, heterogeneity=2.0, l2=0.1)),
    ("least_squares", dict(n_clients=5, dim=8, samples_per_client=13, l2=0.01)),
    ("nonconvex_logreg", dict(n_clients=3, dim=5, samples_per_client=9)),
]
IDS = [f"{n}-{p.get('dataset', 'synthetic')}" for n, p in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def problem(request):
    name, params = request.param
    if "dataset" in params:
        need(params["dataset"])
    return make(name, **params)


def test_losses_and_gradients_match_autograd(problem):
    blocks = _blocks(problem)
    d, n = problem.d, problem.n
    X = 0.1 * torch.randn(n, d, generator=GEN(0), dtype=torch.float64)
    x = X[0]
    losses, grads, grads_own = problem.client_losses(x), problem.client_grads(x), problem.client_grads(X)
    for i, (A, t) in enumerate(blocks):
        for point, G, L in ((x, grads, losses), (X[i], grads_own, None)):
            xi = point.clone().requires_grad_(True)
            loss = _data_term(problem.name, A @ xi, t).mean() + _reg(problem, xi)
            (g,) = torch.autograd.grad(loss, xi)
            assert torch.allclose(G[i], g, rtol=1e-10, atol=1e-12), i
            if L is not None:
                assert float(L[i]) == pytest.approx(float(loss.detach()), rel=1e-12, abs=1e-14)
    assert torch.allclose(problem.grad(x), grads.mean(0), rtol=0, atol=0)
    assert problem.loss(x) == pytest.approx(float(losses.mean()))
    rows = torch.tensor([n - 1, 0])
    assert torch.allclose(problem.client_grads(x, clients=rows), grads[rows])
    assert torch.allclose(problem.client_grads(X[rows], clients=rows), grads_own[rows])
    assert torch.allclose(problem.client_losses(x, clients=rows), losses[rows])


def test_sample_gradients_match_autograd(problem):
    blocks = _blocks(problem)
    m = problem.num_samples()
    assert m.tolist() == [A.shape[0] for A, _ in blocks]
    x = 0.1 * torch.randn(problem.d, generator=GEN(1), dtype=torch.float64)
    index = problem.sample_indices(GEN(2), 3)  # (n, 3)
    assert index.shape == (problem.n, 3) and bool((index < m[:, None]).all()) and bool((index >= 0).all())
    G3 = problem.sample_grads(x, index)
    G1 = problem.sample_grads(x, index[:, 0])
    assert torch.allclose(G1, G3[:, 0], rtol=1e-14, atol=1e-15)
    for i, (A, t) in enumerate(blocks):
        for k in range(3):
            j = int(index[i, k])
            xi = x.clone().requires_grad_(True)
            loss = _data_term(problem.name, A[j] @ xi, t[j]) + _reg(problem, xi)
            (g,) = torch.autograd.grad(loss, xi)
            assert torch.allclose(G3[i, k], g, rtol=1e-10, atol=1e-13)
    # scalar form (SAGA tables): grad_ij = s_ij a_ij + reg_grad(x); mean of the table = data gradient
    s = problem.sample_scalars(x, index)
    assert torch.allclose(s[..., None] * problem.sample_features(index) + problem.reg_grad(x), G3, atol=1e-13)
    S = problem.all_sample_scalars(x)
    assert torch.allclose(problem.scalar_mean(S) + problem.reg_grad(x), problem.client_grads(x), atol=1e-12)
    # the average over all samples of each client is the client gradient
    full = torch.arange(int(m.max()))[None, :].expand(problem.n, -1)
    if bool((m == m.max()).all()):
        assert torch.allclose(problem.batch_grads(x, full), problem.client_grads(x), atol=1e-12)


def test_minibatch_gradients_are_unbiased(problem):
    x = 0.1 * torch.randn(problem.d, generator=GEN(3), dtype=torch.float64)
    truth = problem.client_grads(x)
    g = GEN(4)
    T = 1000
    S = torch.stack([problem.minibatch_grads(x, g, 2) for _ in range(T)])  # (T, n, d)
    z = zscore(S, truth)
    live = S.std(0) > 0  # coordinates that never vary (all-zero features) must be exact
    assert z[live].abs().max() <= 5.0
    assert torch.allclose(S[:, ~live], truth[~live].expand(T, -1), atol=1e-12)
    # negative control: sampling only the first half of each client's rows is biased and must fail
    m = problem.num_samples()
    idx = problem.sample_indices(g, 2 * T) // 2
    B = problem.sample_grads(x, idx).reshape(problem.n, T, 2, problem.d).mean(2).transpose(0, 1)
    assert zscore(B, truth)[live].abs().max() > 5.0
    assert int(m.min()) >= 2


def test_client_subsets_are_bit_identical_to_the_full_call(problem):
    """A process holding some clients must compute exactly the simulator's rows."""
    x = 0.1 * torch.randn(problem.d, generator=GEN(6), dtype=torch.float64)
    X = 0.1 * torch.randn(problem.n, problem.d, generator=GEN(7), dtype=torch.float64)
    index = problem.sample_indices(GEN(8), 3)
    for rows in (torch.tensor([problem.n - 1]), torch.arange(problem.n).flip(0), torch.tensor([0, problem.n - 1])):
        assert torch.equal(problem.client_grads(x, clients=rows), problem.client_grads(x)[rows])
        assert torch.equal(problem.client_grads(X[rows], clients=rows), problem.client_grads(X)[rows])
        assert torch.equal(problem.client_losses(X[rows], clients=rows), problem.client_losses(X)[rows])
        assert torch.equal(problem.sample_grads(X[rows], index[rows, 0], clients=rows), problem.sample_grads(X, index[:, 0])[rows])
        assert torch.equal(problem.batch_grads(x, index[rows], clients=rows), problem.batch_grads(x, index)[rows])
        assert torch.equal(problem.minibatch_grads(x, GEN(9), 5, clients=rows), problem.minibatch_grads(x, GEN(9), 5)[rows])
        S = problem.all_sample_scalars(X)
        assert torch.equal(problem.all_sample_scalars(X[rows], clients=rows), S[rows])
        assert torch.equal(problem.scalar_mean(S[rows], clients=rows), problem.scalar_mean(S)[rows])


def test_same_indices_give_same_samples_at_two_points(problem):
    index = problem.sample_indices(GEN(5), 4)
    assert torch.equal(index, problem.sample_indices(GEN(5), 4))
    rows = torch.tensor([problem.n - 1])
    assert torch.equal(problem.sample_indices(GEN(5), 4, clients=rows), index[rows])
    x, y = problem.x0(), torch.ones(problem.d, dtype=torch.float64)
    diff = problem.batch_grads(x, index) - problem.batch_grads(y, index)
    assert diff.shape == (problem.n, problem.d)


def test_bad_oracle_inputs(problem):
    x = problem.x0()
    with pytest.raises(cp.InputError, match="shape"):
        problem.client_grads(torch.zeros(problem.d + 1, dtype=torch.float64))
    with pytest.raises(cp.InputTypeError):
        problem.client_grads(torch.zeros(problem.d, dtype=torch.int64))
    with pytest.raises(cp.InputError, match="out of range"):
        problem.sample_grads(x, problem.num_samples())  # index m_i is one past the end
    with pytest.raises(cp.InputError, match="clients"):
        problem.client_grads(x, clients=torch.tensor([problem.n]))
    with pytest.raises(cp.ConfigError, match="batch_size"):
        problem.minibatch_grads(x, GEN(0), 0)


def test_labels_are_mapped_to_plus_minus_one():
    need("mushrooms")
    p = make("logreg", dataset="mushrooms", n_clients=12, l2=0.1)
    _, y = cp.datasets.load("mushrooms")
    t = p.targets[p.mask]
    assert set(t.unique().tolist()) == {-1.0, 1.0}
    # contiguous split keeps file order: label 1 -> -1, label 2 -> +1
    assert torch.equal(t, torch.from_numpy(np.where(y == 1, -1.0, 1.0)))
    assert p.num_samples().tolist() == [677] * 12  # 8124 = 12 * 677


@pytest.mark.parametrize("name", ["splice", "mushrooms", "a5a"])
def test_contiguous_split_keeps_the_file_rows(name):
    need(name)
    n = 13
    p = make("logreg", dataset=name, n_clients=n)
    X, y = cp.datasets.load(name)
    X = torch.from_numpy(X.toarray())
    for i, (A, _) in enumerate(reference_blocks(X, torch.from_numpy(y), n)):
        m = int(p.num_samples()[i])
        assert torch.equal(p.features[i, :m], A)
        assert bool((p.features[i, m:] == 0).all()) and not bool(p.mask[i, m:].any())


def test_logreg_optimum_matches_scipy():
    need("mushrooms")
    p = make("logreg", dataset="mushrooms", n_clients=12, l2=0.1)
    f_star, x_star = p.optimum()
    assert float(p.grad(x_star).norm()) < 1e-10
    assert p.loss(x_star) == pytest.approx(f_star, rel=1e-14)
    X, y = cp.datasets.load("mushrooms")
    A = X.toarray()
    b = np.where(y == 1, -1.0, 1.0)  # equal blocks: (1/n) sum_i mean_i = mean over all rows

    def fun(w):
        z = -b * (A @ w)
        val = np.logaddexp(0, z).mean() + 0.05 * w @ w
        grad = A.T @ (-b * scipy.special.expit(z)) / len(b) + 0.1 * w
        return val, grad

    res = scipy.optimize.minimize(fun, np.zeros(A.shape[1]), jac=True, method="L-BFGS-B",
                                  options=dict(gtol=1e-12, ftol=1e-15, maxiter=5000))
    # strong convexity mu = 0.1: ||x - x*|| <= ||grad f(x)|| / mu
    tol = np.linalg.norm(fun(res.x)[1]) / 0.1 + 1e-9
    assert np.linalg.norm(res.x - x_star.numpy()) <= tol
    assert res.fun == pytest.approx(f_star, abs=1e-12)
    # the optimum is cached
    assert p.optimum()[1] is not x_star and torch.equal(p.optimum()[1], x_star)


def test_logreg_optimum_synthetic_unequal_clients():
    p = make("logreg", n_clients=3, dim=5, samples_per_client=7, l2=1e-3, split="shuffled", seed=2)
    f_star, x_star = p.optimum()
    assert float(p.grad(x_star).norm()) < 1e-10
    for _ in range(5):  # no nearby point is better
        assert p.loss(x_star + 1e-4 * torch.randn(5, generator=GEN(_), dtype=torch.float64)) > f_star


def test_least_squares_optimum_matches_lstsq():
    need("splice")
    p = make("least_squares", dataset="splice", n_clients=7, l2=1e-3)
    f_star, x_star = p.optimum()
    assert float(p.grad(x_star).norm()) < 1e-10
    # independent: weighted stacked least squares, rows of client i scaled by 1/sqrt(n m_i)
    blocks = _blocks(p)
    rows, rhs = [], []
    for A, t in blocks:
        s = 1 / np.sqrt(p.n * A.shape[0])
        rows.append(A.numpy() * s)
        rhs.append(t.numpy() * s)
    rows.append(np.sqrt(1e-3) * np.eye(p.d))
    rhs.append(np.zeros(p.d))
    x_ref = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0]
    assert np.allclose(x_star.numpy(), x_ref, rtol=1e-8, atol=1e-10)
    assert p.loss(torch.from_numpy(x_ref)) == pytest.approx(f_star, rel=1e-12)


def test_least_squares_constants_are_exact():
    p = make("least_squares", n_clients=4, dim=6, samples_per_client=10, l2=0.05, heterogeneity=2.0)
    s = p.smoothness()
    H = torch.stack([A.T @ A / A.shape[0] + 0.05 * torch.eye(6, dtype=torch.float64) for A, _ in _blocks(p)])
    ref = dense_constants(H)
    assert s.exact and torch.allclose(s.L_i, ref["L_i"]) and s.L_pm == pytest.approx(ref["L_pm"])
    assert s.L_minus == pytest.approx(ref["L_minus"]) and s.L_plus == pytest.approx(ref["L_plus"])
    assert s.mu == pytest.approx(float(torch.linalg.eigvalsh(H.mean(0))[0]))
    assert s.L_sample == pytest.approx(float(p.features.pow(2).sum(-1).max()) + 0.05)
    # gradient differences realise the constants: grad_i(x+h)-grad_i(x) = H_i h
    h = torch.randn(6, generator=GEN(0), dtype=torch.float64)
    D = p.client_grads(p.x0() + h) - p.client_grads(p.x0())
    assert torch.allclose(D, H @ h, atol=1e-12)
    homog = make("least_squares", n_clients=3, dim=4, samples_per_client=5, heterogeneity=0.0)
    assert homog.smoothness().L_pm > 0  # different samples per client: not identical clients


@pytest.mark.parametrize("name,params", [("logreg", dict(l2=0.01)), ("nonconvex_logreg", dict(reg=0.1))])
def test_logistic_smoothness_bounds_hold_and_are_tight_at_zero(name, params):
    need("splice")
    p = make(name, dataset="splice", n_clients=5, **params)
    s = p.smoothness()
    assert not s.exact and "L_pm" in s.notes and s.L_pm == s.L_plus
    assert s.L_minus <= s.L_plus <= s.L_qm * (1 + 1e-12)
    g = GEN(1)
    for _ in range(20):
        x = torch.randn(p.d, generator=g, dtype=torch.float64)
        h = 0.5 * torch.randn(p.d, generator=g, dtype=torch.float64)
        D = p.client_grads(x + h) - p.client_grads(x)
        hn = h.norm()
        assert bool((D.norm(dim=1) <= s.L_i * hn * (1 + 1e-10)).all())
        assert float(D.mean(0).norm()) <= s.L_minus * hn * (1 + 1e-10)
        assert float(D.pow(2).sum(1).mean().sqrt()) <= s.L_plus * hn * (1 + 1e-10)
        j = torch.zeros(p.n, dtype=torch.int64)
        Ds = p.sample_grads(x + h, j) - p.sample_grads(x, j)
        assert bool((Ds.norm(dim=1) <= s.L_sample * hn * (1 + 1e-10)).all())
    # tightness (negative control for a loose or wrong constant): at x = 0 the data Hessian is
    # exactly A^T A / (4m); a small step along the top eigenvector attains L_i up to the regulariser
    G = p._grams()
    evals, evecs = torch.linalg.eigh(G)
    extra = 2 * p.reg if name == "nonconvex_logreg" else p.l2
    for i in range(p.n):
        h = 1e-6 * evecs[i, :, -1]
        ratio = float((p.client_grads(h)[i] - p.client_grads(torch.zeros_like(h))[i]).norm() / h.norm())
        assert ratio == pytest.approx(float(s.L_i[i]), rel=1e-5)
        assert float(s.L_i[i]) == pytest.approx(float(evals[i, -1]) / 4 + extra, rel=1e-12)
    if name == "logreg":
        assert s.mu == 0.01
    else:
        assert s.mu == 0.0 and p.optimum() is None


def test_float32_problems():
    need("splice")
    p = make("logreg", dataset="splice", n_clients=4, dtype="float32")
    x = torch.zeros(p.d, dtype=torch.float64)
    assert p.client_grads(x).dtype == torch.float32
    ref = make("logreg", dataset="splice", n_clients=4).client_grads(x)
    assert torch.allclose(p.client_grads(x).double(), ref, atol=1e-6)
    assert p.optimum()[1].dtype == torch.float32


def test_start_points():
    p = make("logreg", n_clients=2, dim=4)
    assert torch.equal(p.x0(), torch.zeros(4, dtype=torch.float64))
    q = make("logreg", n_clients=2, dim=4, start="normal", seed=3)
    assert q.x0().abs().sum() > 0 and torch.equal(q.x0(), make("logreg", n_clients=2, dim=4, start="normal", seed=3).x0())
