"""Symmetric-matrix compressors: wire = fast path, exact bits, Frobenius class constants (with controls)."""

from __future__ import annotations


import pytest
import torch

from commpress.compressors import matrix as mc
from commpress.compressors import names as vector_names

D = 9
NU = D * (D + 1) // 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sym_batch(rows: int, d: int = D, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(rows, d, d, generator=g, dtype=torch.float64)
    return A + A.mT


def frob2(V: torch.Tensor, d: int = D) -> torch.Tensor:
    return (V * V * mc.frobenius_weights(d)).sum(-1)


ALL = [("topk", {}), ("topk", {"k": 3}), ("rank", {}), ("rank", {"rank": 3}), ("randk", {"k": 7}),
       ("threshold", {}), ("threshold", {"lam": 0.2})]


def test_triangle_packing_and_weights():
    M = sym_batch(3)
    V = mc.sym_to_tri(M)
    assert V.shape == (3, NU) and torch.equal(mc.tri_to_sym(V), M)
    assert torch.allclose(frob2(V), (M * M).sum((-2, -1)))
    with pytest.raises(mc.ConfigError, match="triangular"):
        mc.matrix_side(11)


def test_kept_out_of_the_vector_registry():
    assert not set(vector_names()) & {"matrix/topk", "matrix/rank", "matrix/randk", "matrix/threshold"}
    assert mc.names() == ["randk", "rank", "threshold", "topk"]
    with pytest.raises(mc.ConfigError, match="unknown matrix compressor"):
        mc.make("cq")


@pytest.mark.parametrize("name,kw", ALL, ids=[f"{n}{kw}" for n, kw in ALL])
def test_wire_equals_fast_path_and_bits_are_payload_lengths(name, kw):
    comp = mc.make(name, **kw)
    V = mc.sym_to_tri(sym_batch(5, seed=1))
    V_hat, bits = comp.apply(V, seed=7)
    payloads = comp.encode(V, seed=7)
    assert bits.tolist() == [8 * len(p) for p in payloads]
    assert torch.equal(comp.decode(payloads, seed=7, d=NU, dtype=torch.float64), V_hat)
    # a subset of clients gives the same rows (every draw is keyed by client index)
    sub = torch.tensor([3, 1])
    V_sub, bits_sub = comp.apply(V[sub], seed=7, clients=sub, n=5)
    assert torch.equal(V_sub, V_hat[sub]) and torch.equal(bits_sub, bits[sub])
    M_hat, _ = comp.compress(mc.tri_to_sym(V), seed=7)
    assert torch.equal(M_hat, M_hat.mT) and M_hat.dtype == torch.float64


def test_declared_bits():
    assert mc.make("rank", rank=2).matrix_theory(D).bits == 32 * 2 * (D + 1)
    th = mc.make("topk").matrix_theory(D)
    assert th.extras["bits_paper"] == 32 * D and th.bits >= 32 * D
    assert mc.make("randk", k=7).matrix_theory(D).bits == 32 * 7


def adversarial(d: int = 6) -> torch.Tensor:
    """Diagonal 1.0001, off-diagonal 1: symmetric Top-K with K = 3 keeps the 3 diagonal entries only."""
    return (torch.ones(d, d, dtype=torch.float64) + 1e-4 * torch.eye(d, dtype=torch.float64))[None]


def kept_fraction(comp, M: torch.Tensor) -> torch.Tensor:
    d = M.shape[-1]
    V = mc.sym_to_tri(M)
    V_hat, _ = comp.apply(V, seed=0)
    return 1 - frob2(V_hat - V, d) / frob2(V, d)


def test_topk_contraction_is_k_over_d_squared_and_the_reference_constant_fails():
    comp = mc.make("topk", k=3)
    M = torch.cat([sym_batch(300, seed=2), adversarial(D)])
    delta = comp.matrix_theory(D).delta
    assert delta == 3 / D**2
    assert bool((kept_fraction(comp, M) >= delta - 1e-6).all())
    # negative control: the FedNL code's 2K/(d(d+1)) is violated by the adversarial matrix (d = 6)
    th6 = comp.matrix_theory(6)
    frac = float(kept_fraction(comp, adversarial(6)))
    assert frac == pytest.approx(0.0833, abs=1e-3)
    assert frac < th6.extras["delta_code"] and frac >= th6.delta


def test_rank_r_error_is_the_tail_of_the_spectrum():
    comp = mc.make("rank", rank=2)
    M = sym_batch(50, seed=3)
    lam = torch.linalg.eigvalsh(M)
    tail = (lam**2).sort(dim=-1).values[:, :-2].sum(-1)
    V = mc.sym_to_tri(M)
    err = frob2(comp.apply(V, seed=0)[0] - V)
    assert torch.allclose(err, tail, rtol=1e-5)
    assert bool((1 - err / frob2(V) >= comp.matrix_theory(D).delta - 1e-6).all())
    # R/d is attained (equal eigenvalues), and Rank-(R-1) falls below it there (negative control)
    eye = mc.sym_to_tri(torch.eye(D, dtype=torch.float64)[None])
    for r, expected in ((2, 2 / D), (1, 1 / D)):
        kept = 1 - frob2(mc.make("rank", rank=r).apply(eye, seed=0)[0] - eye) / frob2(eye)
        assert float(kept) == pytest.approx(expected, rel=1e-6)
    assert 1 / D < comp.matrix_theory(D).delta


def test_threshold_contraction():
    comp = mc.make("threshold", lam=0.5)
    M = torch.cat([sym_batch(300, seed=4), adversarial(D)])
    th = comp.matrix_theory(D)
    assert bool((kept_fraction(comp, M) >= th.delta - 1e-6).all())
    assert th.delta >= th.extras["delta_paper"]


def randk_moments(comp, trials: int = 20000):
    X = mc.sym_to_tri(sym_batch(1, seed=5))  # one fixed matrix; trials ride the client axis
    Xs = X.expand(trials, NU).contiguous()
    V_hat, _ = comp.apply(Xs, seed=11)
    return X[0], V_hat


def test_randk_unbiased_with_exact_omega_and_topk_fails_the_same_check():
    comp = mc.make("randk", k=7)
    omega = comp.matrix_theory(D).omega
    assert omega == pytest.approx(NU / 7 - 1)
    x, V_hat = randk_moments(comp)
    trials = V_hat.shape[0]
    se = (omega / trials) ** 0.5 * x.abs()  # Var C(x)_jl = omega x_jl^2
    assert bool(((V_hat.mean(0) - x).abs() <= 5 * se + 1e-12).all())
    err = frob2(V_hat - x)  # E = omega ||X||_F^2 exactly; tolerance from the sample sd of the error
    sd = float(err.std()) / trials**0.5
    assert abs(float(err.mean()) - omega * float(frob2(x[None]))) <= 6 * sd + 1e-9
    # negative control: symmetric Top-K (biased) fails the unbiasedness test
    _, T_hat = randk_moments(mc.make("topk", k=7), trials=200)
    se_t = (omega / 200) ** 0.5 * x.abs()
    assert not bool(((T_hat.mean(0) - x).abs() <= 5 * se_t + 1e-12).all())
