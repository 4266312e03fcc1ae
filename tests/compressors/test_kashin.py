"""Kashin compression (Safaryan, Shulgin, Richtárik 2022; Lyubarskii-Vershynin truncation).

The frame is tight (U U^T = I), the truncation algorithm gives an exact representation with
||a||_inf <= K ||x|| / sqrt(N) (K = (1 - eta)^-1 delta^-1/2), the 1-bit quantisation is unbiased with
the exact variance sum_j ||u_j||^2 (M^2 - a_j^2), the variance per bit lies between the
uncertainty-principle limit and (K^2 - 1)/lambda, and it beats 1-level dithering at equal bits for large d.
Every Monte-Carlo check has a tolerance from the sample variance and a negative control.
"""

from __future__ import annotations

import math

import pytest
import torch

from commpress.compressors import make
from commpress.compressors.kashin import Frame, Kashin, kashin_coefficients, kashin_level
from commpress.errors import ConfigError
from commpress.testing import check_compressor
from commpress.theory.compression_limits import kashin_omega_bound, up_omega

Z = 5.0


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # small transforms: contending threads are 50x slower on a shared machine
    yield
    torch.set_num_threads(saved)


def _heavy(rows: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, d, generator=g, dtype=torch.float64)
    return z / torch.randn(rows, d, 2, generator=g, dtype=torch.float64).pow(2).mean(-1).sqrt()


def _frame(C: Kashin, X: torch.Tensor, seed: int) -> Frame:
    ctx = C._context(X, seed, None, None)
    return C._frame(ctx, torch.float64)


@pytest.mark.parametrize("params", [{}, {"levels": 3}, {"lam": 3.0, "shared_frame": True}],
                         ids=["one-bit", "3-levels", "lam3-shared"])
def test_conformance_suite(params):
    check_compressor(Kashin(**params), n=4, d=16, trials=400)


def test_conformance_orthogonal_frame():
    check_compressor(Kashin(frame="orthogonal"), n=3, d=6, trials=200, shapes=[(3, 6), (1, 1), (4, 9)])


@pytest.mark.parametrize("kind", ["hadamard", "orthogonal"])
def test_frame_is_tight_and_representation_exact(kind):
    C = Kashin(frame=kind)
    X = _heavy(5, 24, 0)
    F = _frame(C, X, 3)
    assert F.N == C.frame_size(24) and F.N > 24
    assert torch.allclose(F.synthesis(F.analysis(X)), X, atol=1e-12)  # U U^T = I
    assert torch.allclose(F.analysis(X).norm(dim=1), X.norm(dim=1), atol=1e-12)  # ||U^T r|| = ||r||
    a = kashin_coefficients(X, F, 0.7, 0.5, 20)
    assert torch.allclose(F.synthesis(a), X, atol=1e-10)  # exact finish: U a = x


@pytest.mark.parametrize("kind,d", [("hadamard", 36), ("hadamard", 256), ("orthogonal", 36), ("orthogonal", 100)])
def test_truncation_bound_and_negative_control(kind, d):
    C = Kashin(frame=kind, shared_frame=True)  # one frame for every row, so that a frame vector can be an input
    K = kashin_level(C.eta, C.delta)
    g = torch.Generator().manual_seed(1)
    X = torch.cat([_heavy(6, d, d), torch.randn(6, d, dtype=torch.float64, generator=g),
                   torch.ones(1, d, dtype=torch.float64), torch.eye(d, dtype=torch.float64)[:1]])
    F = _frame(C, X, 7)

    def level(A, X):
        return A.abs().amax(1) * math.sqrt(F.N) / X.norm(dim=1)

    # inputs independent of the frame: ||a||_inf <= K ||x|| / sqrt(N)
    assert bool((level(kashin_coefficients(X, F, C.eta, C.delta, C.iterations), X) <= K).all())
    # a frame vector x = U e_0 (an input chosen after the frame): its plain frame coefficients
    # a = U^T x have ||a||_inf >= ||u_0||^2 = d/N, level >= sqrt(d) > K -- the negative control: the
    # check rejects an untruncated representation
    e0 = torch.nn.functional.one_hot(torch.tensor([0]), F.N).double().expand(X.shape[0], -1)
    V = F.synthesis(e0)[:1]
    plain = float(level(kashin_coefficients(V, F, C.eta, C.delta, 0), V)[0])
    assert plain >= math.sqrt(d) - 1e-9 and plain > K
    truncated = float(level(kashin_coefficients(V, F, C.eta, C.delta, C.iterations), V)[0])
    if kind == "orthogonal":  # the Haar frame has the uncertainty principle: truncation reaches the level K
        assert truncated <= K
    elif d & (d - 1) == 0:
        # d a power of two, N = 2d: the padded Hadamard frame is two copies of one rotated orthonormal
        # basis (u_j = u_{j+d}), which has no uncertainty principle against its own vectors: the level stays sqrt(d)
        assert truncated == pytest.approx(math.sqrt(d), rel=1e-6)


def _mc_error(C: Kashin, x: torch.Tensor, trials: int, seed: int):
    """(mean of C(x), squared errors) over ``trials`` rows of one call with a shared frame."""
    Y = C.apply(x.expand(trials, -1).contiguous(), seed)[0]
    return Y.mean(0), (Y - x).pow(2).sum(1)


def _unbiased_and_exact_variance(C: Kashin, x: torch.Tensor, seed: int, trials: int = 4000) -> None:
    m, e = _mc_error(C, x, trials, seed)
    a = C.coefficients(x[None], seed)[0]  # shared frame: the same coefficients for every row
    M = float(a.abs().max())
    N, d = a.numel(), x.numel()
    exact = (d / N) * (N * M * M - float(a.pow(2).sum())) if C.levels is None else None
    se = math.sqrt(float(e.mean()) / trials)
    assert float((m - x).norm()) <= Z * se, "biased mean"
    if exact is not None:
        assert abs(float(e.mean()) - exact) <= Z * float(e.std()) / math.sqrt(trials) + 1e-6 * exact


def test_unbiased_with_the_exact_variance_and_negative_control(monkeypatch):
    x = _heavy(1, 32, 5)[0]
    C = Kashin(shared_frame=True)
    _unbiased_and_exact_variance(C, x, seed=11)
    # negative control: the sign of each coefficient sent deterministically (q = M sign(a)) is biased
    encode = Kashin._encode

    def biased(self, X, ctx):
        msg = encode(self, X, ctx)
        a = kashin_coefficients(X.double(), self._frame(ctx, torch.float64), self.eta, self.delta, self.iterations)
        msg["code"] = (a < 0).view(torch.uint8)
        return msg

    monkeypatch.setattr(Kashin, "_encode", biased)
    with pytest.raises(AssertionError):
        _unbiased_and_exact_variance(Kashin(shared_frame=True), x, seed=11)


def test_variance_per_bit_between_the_uncertainty_principle_and_the_kashin_constant():
    d, trials = 256, 300
    C = Kashin(lam=2.0)
    X = _heavy(3, d, 9)
    Y, bits = C.apply(X.repeat(trials, 1), 21)
    err = (Y.reshape(trials, 3, d) - X).pow(2).sum(-1) / X.pow(2).sum(-1)  # (trials, rows)
    omega = err.mean(0)
    se = err.std(0) / math.sqrt(trials)
    b = float(bits[0])
    lam = C.frame_size(d) / d
    # private frames: the bound is at the largest level the rows reach over the frames drawn
    top = float(torch.stack([C.level(X.repeat(50, 1), 21).reshape(50, 3).amax(0)]).max())
    assert top <= kashin_level(C.eta, C.delta)
    hi = kashin_omega_bound(top, lam)
    lo = up_omega(b, d)
    assert bool((omega - Z * se <= hi).all()) and bool((omega + Z * se >= lo).all())
    # within the spec's constant of the UP limit: omega (4^{b/d} - 1) stays below (K^2 - 1)/lambda (4^{b/d} - 1)
    assert float(omega.max()) / lo <= hi / lo
    # negative control: the same measurement against a budget of 4 bits per coordinate (omega >= 1/255)
    # would pass, but against the Kashin constant of lambda = 8 (5/8 of ours) it must fail
    assert not bool((omega - Z * se <= kashin_omega_bound(1.0 + 0.5 * (top - 1.0), 8.0)).all())


def test_kashin_beats_one_level_dithering_at_equal_bits_for_large_d():
    d, trials = 1024, 40
    X = torch.randn(2, d, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    res = {}
    for name, C in [("kashin", Kashin(lam=2.0)), ("qsgd", make("qsgd", s=1))]:
        Y, bits = C.apply(X.repeat(trials, 1), 33)
        err = ((Y.reshape(trials, 2, d) - X).pow(2).sum(-1) / X.pow(2).sum(-1)).reshape(-1)
        res[name] = (float(err.mean()), float(err.std()) / math.sqrt(err.numel()), float(bits.double().mean()) / d)
    (ok, sk, bk), (oq, sq, bq) = res["kashin"], res["qsgd"]
    assert abs(bk - bq) <= 0.1  # equal bits: 2 per coordinate plus a float
    assert ok + Z * sk < oq - Z * sq  # Kashin's omega (~4) far below dithering's (~25, growing like sqrt d)
    # negative control: at d = 16 dithering's omega (~2.4) is below Kashin's: the comparison is not vacuous
    x16 = X[:, :16]
    small = {}
    for name, C in [("kashin", Kashin(lam=2.0)), ("qsgd", make("qsgd", s=1))]:
        Y, _ = C.apply(x16.repeat(400, 1), 35)
        small[name] = float(((Y.reshape(400, 2, 16) - x16).pow(2).sum(-1) / x16.pow(2).sum(-1)).mean())
    assert not small["kashin"] < small["qsgd"] / 2


def test_theory_and_bits():
    C = Kashin()
    th = C.theory(4, 16)
    assert th.kind == "unbiased" and th.extras["N"] == 32 and th.bits == 32 + 32
    assert th.omega == pytest.approx((kashin_level(0.7, 0.5) ** 2 - 1) / 2)
    assert th.A == pytest.approx(th.omega / 4) and th.B == 0.0
    assert Kashin(levels=3).theory(1, 16).bits == 32 + 32 * 3
    assert Kashin(lam=4.0).frame_size(16) == 64 and Kashin().frame_size(100) == 128 and Kashin().frame_size(1) == 2
    for bad in [{"frame": "dct"}, {"lam": 1.0}, {"eta": 1.0}, {"delta": 0.0}, {"levels": 0}, {"iterations": -1}]:
        with pytest.raises(ConfigError):
            Kashin(**bad)
