"""The biased compressors of "On biased compression" (Beznosikov et al.) and the optimal-compression
defaults (sparse dithering, spherical compression; Albasyoni et al.): conformance, BC's class
constants (B1, B2, B3) by seeded Monte-Carlo with variance-derived tolerances, and negative controls."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.compressors.biased import BiasedRounding
from commpress.compressors.ogc import Spherical
from commpress.compressors.topk import topk_mask
from commpress.errors import ConfigError
from commpress.testing import check_compressor
from commpress.theory.compression_limits import bc_classes, biased_rounding_delta

Z = 5.0


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


CONFIGS = [
    ("biased_sparsification", {}), ("biased_sparsification", {"p": 0.1}), ("adaptive_sparsification", {}),
    ("biased_rounding", {}), ("biased_rounding", {"base": 3.0}), ("topk_q", {}),
    ("topk_q", {"quantizer": "natural_dithering", "ratio": 0.5}), ("topk_q", {"scaled": False}),
    ("sparse_dithering", {}), ("spherical", {}), ("spherical", {"bits": 6, "block": 4}),
]


@pytest.mark.parametrize("name,params", CONFIGS, ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p in CONFIGS])
def test_conformance_suite(name, params):
    trials = 150 if name == "spherical" else 400  # spherical draws a codebook per trial (correlated)
    check_compressor(cp.compressors.make(name, **params), n=4, d=16, trials=trials)


def _gauss(rows, d, seed):
    return torch.randn(rows, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _moments(C, x, trials, seed):
    """Per-draw ||C(x)||^2, <C(x), x>, ||C(x) - x||^2 over ``trials`` rows of one call."""
    Y = C.apply(x.expand(trials, -1).contiguous(), seed)[0]
    return Y.pow(2).sum(1), (Y * x).sum(1), (Y - x).pow(2).sum(1)


def _le(sample: torch.Tensor, bound: float, scale: float) -> bool:
    """One-sided z-test of mean(sample) <= bound."""
    return float(sample.mean()) <= bound + Z * float(sample.std()) / math.sqrt(sample.numel()) + 1e-9 * scale


def bc_check(C, x, cls, trials=3000, seed=0) -> bool:
    """BC's B1(alpha, beta) and B2(gamma, beta) inequalities for one x, by Monte-Carlo (z-tests)."""
    sq, inner, _ = _moments(C, x, trials, seed)
    nx = float(x.pow(2).sum())
    (alpha, beta1), (gamma, beta2) = cls["B1"], cls["B2"]
    return (_le(-sq, -alpha * nx, nx) and _le(sq - beta1 * inner, 0.0, nx)
            and _le(-inner, -gamma * nx, nx) and _le(sq / beta2 - inner, 0.0, nx))


def test_biased_sparsification_exact_error_classes_and_negative_control():
    x = _gauss(1, 40, 1)[0]
    C = cp.compressors.make("biased_sparsification", p=0.3)
    _, _, err = _moments(C, x, 4000, 2)
    exact = 0.7 * float(x.pow(2).sum())
    assert abs(float(err.mean()) - exact) <= Z * float(err.std()) / math.sqrt(4000)
    assert bc_check(C, x, bc_classes("biased_sparsification", 40, q=0.3))
    # negative control: the constants of p = 0.5 are too strong for p = 0.3
    assert not bc_check(C, x, bc_classes("biased_sparsification", 40, q=0.5))
    report = check_compressor(cp.compressors.make("biased_sparsification", p=0.3), n=4, d=16, trials=400,
                              properties=["contraction"], raise_on_failure=False)
    assert report["contraction"].passed
    lying = cp.compressors.make("biased_sparsification", p=0.3)
    lying.theory = lambda n, d: cp.compressors.make("biased_sparsification", p=0.5).theory(n, d)
    report = check_compressor(lying, n=4, d=16, trials=400, properties=["contraction"], raise_on_failure=False)
    assert not report["contraction"].passed


def test_adaptive_sparsification_exact_error_and_worst_case():
    x = _gauss(1, 24, 3)[0]
    C = cp.compressors.make("adaptive_sparsification")
    _, _, err = _moments(C, x, 6000, 4)
    exact = float(x.pow(2).sum() - x.abs().pow(3).sum() / x.abs().sum())
    assert abs(float(err.mean()) - exact) <= Z * float(err.std()) / math.sqrt(6000)
    assert bc_check(C, x, bc_classes("adaptive_sparsification", 24))
    # equal magnitudes attain delta = 1/d exactly (every draw errs by (1 - 1/d) ||x||^2)
    ones = torch.tensor([1.0, -1.0] * 12, dtype=torch.float64)
    _, _, err = _moments(C, ones, 50, 5)
    assert torch.allclose(err, torch.full_like(err, 23.0))
    # negative control: the B1 lower constant alpha = 2/d is violated at equal magnitudes
    assert not bc_check(C, ones, {"B1": (2 / 24, 1.0), "B2": (1 / 24, 1.0)}, trials=200)
    # the draws follow |x_j| / ||x||_1: the index frequencies match within z standard errors
    y = torch.tensor([4.0, 0.0, 1.0, -3.0], dtype=torch.float64)
    Y = C.apply(y.expand(8000, -1).contiguous(), 6)[0]
    freq = (Y != 0).double().mean(0)
    p = y.abs() / y.abs().sum()
    assert bool(((freq - p).abs() <= Z * (p * (1 - p) / 8000).sqrt() + 1e-12).all()) and float(freq[1]) == 0.0


def test_biased_rounding_worst_case_classes_and_negative_control(monkeypatch):
    C = BiasedRounding()
    assert C.theory(1, 4).delta == pytest.approx(8 / 9) == biased_rounding_delta(2)
    mid = torch.tensor([[1.5, -3.0, 6.0, 0.75]], dtype=torch.float64)  # midpoints: ties go up
    out = C.apply(mid, 0)[0]
    assert out.tolist() == [[2.0, -4.0, 8.0, 1.0]]
    assert float((out - mid).pow(2).sum() / mid.pow(2).sum()) == pytest.approx(1 / 9)  # = 1 - delta, attained
    X = _gauss(200, 30, 7) * 10.0 ** torch.randint(-3, 4, (200, 1), generator=torch.Generator().manual_seed(0))
    for base in (2.0, 3.0, 1.5):
        R = BiasedRounding(base=base)
        Y = R.apply(X, 0)[0]
        nx, sq, inner = X.pow(2).sum(1), Y.pow(2).sum(1), (X * Y).sum(1)
        cls = bc_classes("biased_rounding", 30, base=base)
        (a, b1), (g, b2) = cls["B1"], cls["B2"]
        assert bool(((Y - X).pow(2).sum(1) <= (1 - biased_rounding_delta(base)) * nx * (1 + 1e-12)).all())
        assert bool((sq >= a * nx).all() and (sq <= b1 * inner).all() and (inner >= g * nx).all())
        assert bool((sq / b2 <= inner * (1 + 1e-12)).all())
        powers = torch.log(Y[Y != 0].abs()) / math.log(base)
        assert torch.allclose(powers, powers.round(), atol=1e-9)
    # negative control: rounding always down (truncation) errs up to 1/4 ||x||^2 > 1/9: the suite rejects it
    encode = BiasedRounding._encode

    def floor(self, X, ctx):
        msg = encode(self, X, ctx)
        P = self._powers(X.device)
        i = torch.searchsorted(P, X.abs().double().contiguous(), right=True) - 1
        msg["exponent"] = torch.where(X == 0, torch.zeros_like(i), i + 1)
        return msg

    def contracts(R, X):
        Y = R.apply(X, 0)[0]
        return bool(((Y - X).pow(2).sum(1) <= (1 - R.theory(1, X.shape[1]).delta) * X.pow(2).sum(1) * (1 + 1e-12)).all())

    X = torch.cat([X, torch.full((1, 30), 1.9, dtype=torch.float64)])
    assert contracts(BiasedRounding(), X)
    monkeypatch.setattr(BiasedRounding, "_encode", floor)
    assert not contracts(BiasedRounding(), X)  # 1.9 -> 1 errs by (0.9/1.9)^2 = 0.22 > 1/9


def test_topk_q_classes_and_scaling():
    x = _gauss(1, 40, 8)[0]
    C = cp.compressors.make("topk_q", k=8, scaled=False)
    zeta = C.zeta(1, 40)
    assert zeta == pytest.approx(1.125)
    sq, inner, _ = _moments(C, x, 3000, 9)
    top = float((x * topk_mask(x[None], 8)[0]).pow(2).sum())
    # <E C(x), x> = ||Top_k(x)||^2 exactly in expectation (Q unbiased)
    assert abs(float(inner.mean()) - top) <= Z * float(inner.std()) / math.sqrt(3000)
    assert bc_check(C, x, bc_classes("topk_q", 40, k=8, zeta=zeta))
    S = cp.compressors.make("topk_q", k=8)
    th = S.theory(1, 40)
    assert th.kind == "contractive" and th.delta == pytest.approx(8 / (1.125 * 40))
    _, _, err = _moments(S, x, 3000, 10)
    assert _le(err, (1 - th.delta) * float(x.pow(2).sum()), float(x.pow(2).sum()))
    # negative control: on a flat vector <E C(x), x> = (k/d)||x||^2 exactly, so gamma = 2k/d is rejected
    flat = torch.full((40,), 4.0 / 3.0, dtype=torch.float64)
    assert bc_check(C, flat, bc_classes("topk_q", 40, k=8, zeta=zeta), trials=2000, seed=11)
    assert not bc_check(C, flat, bc_classes("topk_q", 40, k=16, zeta=zeta), trials=2000, seed=11)


def test_topk_beats_random_sparsification_on_gaussian_vectors():
    """T-BC-1: Top-k (d = 1000, k = 100) on Gaussian vectors errs by 1 - 2[t phi(t) + 1 - Phi(t)] ~ 0.56,
    t = Phi^{-1}(0.95); unscaled random sparsification with p = k/d by 0.9."""
    X = _gauss(100, 1000, 12)
    e_top = (X * ~topk_mask(X, 100)).pow(2).sum(1) / X.pow(2).sum(1)
    Y = cp.compressors.make("biased_sparsification", p=0.1).apply(X, 13)[0]
    e_rand = (Y - X).pow(2).sum(1) / X.pow(2).sum(1)
    t = 1.6448536269514722
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    tail = 1 - 2 * (t * phi + 0.05)
    assert tail == pytest.approx(0.5617, abs=1e-3)
    assert abs(float(e_top.mean()) - tail) <= max(0.03, Z * float(e_top.std()) / 10)
    assert abs(float(e_rand.mean()) - 0.9) <= Z * float(e_rand.std()) / 10
    # negative control: the tolerance rejects random sparsification as "Top-k"
    assert not abs(float(e_rand.mean()) - tail) <= 0.03


def test_sparse_dithering_exact_variance_and_bits():
    x = _gauss(1, 64, 14)[0]
    C = cp.compressors.make("sparse_dithering")
    Y, bits = C.apply(x.expand(4000, -1).contiguous(), 15)
    err = (Y - x).pow(2).sum(1)
    N = float(torch.tensor(float(x.norm()), dtype=torch.float32))  # the float32 norm header (rounded up)
    N = N if N >= float(x.norm()) else float(torch.nextafter(torch.tensor(N, dtype=torch.float32),
                                                             torch.tensor(math.inf)))
    exact = N * float(x.abs().sum()) - float(x.pow(2).sum())
    assert abs(float(err.mean()) - exact) <= Z * float(err.std()) / math.sqrt(4000)
    m = Y.mean(0)
    assert float((m - x).norm()) <= Z * math.sqrt(float(err.mean()) / 4000)  # unbiased
    nnz = (Y != 0).sum(1).double()
    assert abs(float(nnz.mean()) - float(x.abs().sum()) / N) <= Z * float(nnz.std()) / math.sqrt(4000)
    c = (Y != 0).sum(1)
    expected = 8 * torch.ceil((64 + torch.minimum(c * 6, torch.tensor(64)) + c) / 8)
    assert torch.equal(bits, expected.to(torch.int64))
    assert C.theory(1, 64).omega == pytest.approx(7.0)
    # negative control: a compressor that drops each nonzero's sign half of the time is biased: the same test rejects it
    flipped = Y * torch.where(torch.rand(Y.shape, generator=torch.Generator().manual_seed(0)) < 0.25, -1.0, 1.0)
    assert float((flipped.mean(0) - x).norm()) > Z * math.sqrt(float(err.mean()) / 4000)


def test_spherical_worst_case_and_average_case():
    S = Spherical(bits=8, block=8)
    # worst case: the basis codewords guarantee rho^2 >= 1/m on every block, every seed
    X = torch.cat([torch.ones(1, 20, dtype=torch.float64), _gauss(7, 20, 16)])
    for seed in range(30):
        Y = S.apply(X, seed)[0]
        assert bool(((Y - X).pow(2).sum(1) <= (1 - 1 / 8) * X.pow(2).sum(1) * (1 + 1e-6)).all())
    # average case (T-OGC-1): a uniformly random direction errs by about 4^{-b/m}, within a factor 2
    g = torch.Generator().manual_seed(17)
    means = {}
    for b in (8, 12):
        S = Spherical(bits=b, block=8)
        errs = []
        for t in range(15):
            V = torch.randn(10, 8, generator=g, dtype=torch.float64)
            Y = S.apply(V, 100 * b + t)[0]
            errs.append((Y - V).pow(2).sum(1) / V.pow(2).sum(1))
        means[b] = float(torch.cat(errs).mean())
        assert 0.5 <= means[b] / 4.0 ** (-b / 8) <= 2.0
    # negative control: the 8-bit error is not within a factor 2 of the 16-bit bound: the check discriminates
    assert not means[8] / 4.0 ** (-16 / 8) <= 2.0
    with pytest.raises(ConfigError):
        Spherical(bits=2, block=8)
