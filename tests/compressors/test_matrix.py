"""Symmetric-matrix compressors: wire = fast path, exact bits, Frobenius class constants (with controls)."""

from __future__ import annotations


import pytest
import torch

from commpress.compressors import matrix as mc
from commpress.compressors.base import Context
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
       ("threshold", {}), ("threshold", {"lam": 0.2}), ("powersgd", {}), ("powersgd", {"rank": 3}),
       ("rotation", {}), ("rotation", {"inner": {"name": "randk", "k": 7}})]


def test_triangle_packing_and_weights():
    M = sym_batch(3)
    V = mc.sym_to_tri(M)
    assert V.shape == (3, NU) and torch.equal(mc.tri_to_sym(V), M)
    assert torch.allclose(frob2(V), (M * M).sum((-2, -1)))
    with pytest.raises(mc.ConfigError, match="triangular"):
        mc.matrix_side(11)


def test_kept_out_of_the_vector_registry():
    assert not set(vector_names()) & {"matrix/topk", "matrix/rank", "matrix/randk", "matrix/threshold",
                                      "matrix/powersgd", "matrix/rotation"}
    assert mc.names() == ["powersgd", "randk", "rank", "rotation", "threshold", "topk"]
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


# ---------------------------------------------------------------------- PowerSGD and rotation compression
def orthogonal(d: int = D, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64)).Q


def low_rank(rows: int, r: int, d: int = D, seed: int = 0) -> torch.Tensor:
    """Symmetric matrices of rank exactly r: sum of r signed outer products."""
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(rows, d, r, generator=g, dtype=torch.float64)
    s = torch.randn(rows, r, generator=g, dtype=torch.float64)
    return torch.einsum("bik,bk,bjk->bij", U, s, U)


def test_powersgd_bits_and_class():
    for r in (1, 3):
        th = mc.make("powersgd", rank=r).matrix_theory(D)
        assert th.bits == 64 * r * D == th.extras["bits_paper"]
        assert th.kind == "biased" and th.delta is None and th.omega is None  # no learning rate as delta
    comp = mc.make("powersgd", rank=2)
    _, bits = comp.apply(mc.sym_to_tri(sym_batch(4)), seed=0)
    assert bits.tolist() == [64 * 2 * D] * 4
    with pytest.raises(mc.ConfigError, match="rank <= d"):
        mc.make("powersgd", rank=D + 1).apply(mc.sym_to_tri(sym_batch(1)), seed=0)
    with pytest.raises(mc.ConfigError, match="rank >= 1"):
        mc.make("powersgd", rank=0)


def test_powersgd_output_is_the_symmetrised_product_of_its_message():
    comp = mc.make("powersgd", rank=2)
    V = mc.sym_to_tri(sym_batch(6, seed=8))
    V_hat, _ = comp.apply(V, seed=4)
    ctx = Context(seed=4, n=6, d=NU, clients=torch.arange(6), dtype=torch.float64, device=torch.device("cpu"))
    msg = comp.encode_message(V, ctx)
    P = msg["p"].double().reshape(6, 2, D).mT
    Qp = msg["q"].double().reshape(6, 2, D).mT
    assert torch.allclose(P.mT @ P, torch.eye(2, dtype=torch.float64).expand(6, 2, 2), atol=1e-6)  # orthonormal
    A = P @ Qp.mT
    assert torch.allclose(V_hat, mc.sym_to_tri(0.5 * (A + A.mT)), rtol=0, atol=1e-12)
    # negative control: the plain product is not symmetric, its upper triangle is another output
    assert not torch.allclose(A, A.mT, atol=1e-3)
    assert not torch.allclose(V_hat, mc.sym_to_tri(A), atol=1e-3)


@pytest.mark.parametrize("r", [1, 3])
def test_powersgd_is_exact_on_rank_r_and_not_on_rank_r_plus_one(r):
    comp = mc.make("powersgd", rank=r)
    V = mc.sym_to_tri(low_rank(40, r, seed=r))
    err = frob2(comp.apply(V, seed=5)[0] - V) / frob2(V)
    assert float(err.max()) < 1e-10  # float32 wire only
    # negative control: rank R+1 leaves an error on every matrix (at least the smallest eigenvalue^2)
    W = mc.sym_to_tri(low_rank(40, r + 1, seed=10 + r))
    err_w = frob2(comp.apply(W, seed=5)[0] - W) / frob2(W)
    assert float(err_w.min()) > 1e-6
    # the draw depends on the round seed: another seed, another output on a full-rank matrix
    X = mc.sym_to_tri(sym_batch(1, seed=9))
    assert not torch.equal(comp.apply(X, seed=5)[0], comp.apply(X, seed=6)[0])


def test_rotation_with_identity_is_the_inner_compressor():
    V = mc.sym_to_tri(sym_batch(5, seed=12))
    eye = torch.eye(D, dtype=torch.float64)
    for inner in ({"name": "topk", "k": 5}, {"name": "randk", "k": 7}, {"name": "rank", "rank": 2}):
        ref, ref_bits = mc.make(inner).apply(V, seed=3)
        ref_pay = mc.make(inner).encode(V, seed=3)
        for basis in (None, eye):
            comp = mc.make("rotation", basis=basis, inner=inner)
            out, bits = comp.apply(V, seed=3)
            assert torch.equal(out, ref) and torch.equal(bits, ref_bits)
            assert comp.encode(V, seed=3) == ref_pay
            th, th_in = comp.matrix_theory(D), mc.make(inner).matrix_theory(D)
            assert (th.kind, th.delta, th.omega, th.bits) == (th_in.kind, th_in.delta, th_in.omega, th_in.bits)


def test_rotation_wire_with_a_basis_and_bad_bases():
    Q = orthogonal(seed=1)
    comp = mc.make("rotation", basis=Q, inner={"name": "threshold", "lam": 0.3})
    V = mc.sym_to_tri(sym_batch(5, seed=13))
    V_hat, bits = comp.apply(V, seed=2)
    payloads = comp.encode(V, seed=2)
    assert bits.tolist() == [8 * len(p) for p in payloads]
    assert torch.equal(comp.decode(payloads, seed=2, d=NU, dtype=torch.float64), V_hat)
    with pytest.raises(mc.ConfigError, match="orthogonal"):
        mc.make("rotation", basis=2 * Q)
    with pytest.raises(mc.ConfigError, match="square"):
        mc.make("rotation", basis=Q[:, :3])
    with pytest.raises(mc.ConfigError, match="basis is"):
        mc.make("rotation", basis=orthogonal(D - 1)).apply(V, seed=0)


def contraction_holds(comp, M: torch.Tensor, delta: float, trials: int = 1) -> bool:
    """Monte-Carlo E||C(X)-X||_F^2 <= (1-delta)||X||_F^2 for every matrix of M (trials seeds each),
    with a slack of 5 standard errors of the mean error."""
    V = mc.sym_to_tri(M)
    errs = torch.stack([frob2(comp.apply(V, seed=s)[0] - V) for s in range(trials)])  # (trials, rows)
    se = errs.std(0) / trials**0.5 if trials > 1 else torch.zeros(V.shape[0], dtype=V.dtype)
    return bool((errs.mean(0) <= (1 - delta) * frob2(V) + 5 * se + 1e-9).all())


def test_rotation_contraction_with_an_orthogonal_basis_and_a_broken_back_rotation(monkeypatch):
    Q = orthogonal(seed=2)
    inner = {"name": "topk", "k": 3}
    comp = mc.make("rotation", basis=Q, inner=inner)
    delta = comp.matrix_theory(D).delta
    assert delta == mc.make(inner).matrix_theory(D).delta == 3 / D**2
    # adversarial for Top-3 in the rotated basis: Q A Q^T is rotated onto the adversarial matrix
    A = adversarial(D)
    M = torch.cat([sym_batch(200, seed=14), Q @ A @ Q.mT])
    assert contraction_holds(comp, M, delta)
    kept = 1 - frob2(comp.apply(mc.sym_to_tri(Q @ A @ Q.mT), seed=0)[0] - mc.sym_to_tri(Q @ A @ Q.mT)) / frob2(
        mc.sym_to_tri(A))
    assert float(kept) == pytest.approx(float(kept_fraction(mc.make(inner), A)), rel=1e-9)
    # a basis of the matrices' eigenvectors makes Top-d exact; Top-d of the raw entries is not
    lam = torch.randn(30, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    X = Q @ torch.diag_embed(lam) @ Q.mT
    Vx = mc.sym_to_tri(X)
    exact = mc.make("rotation", basis=Q, inner={"name": "topk", "k": D})
    assert float((frob2(exact.apply(Vx, seed=0)[0] - Vx) / frob2(Vx)).max()) < 1e-12  # float32 wire only
    assert float((frob2(mc.make("topk", k=D).apply(Vx, seed=0)[0] - Vx) / frob2(Vx)).min()) > 0.1
    # negative control: forgetting the back rotation breaks the bound, and the check sees it
    monkeypatch.setattr(mc.Rotation, "_decode", lambda self, message, ctx: self.inner.decode_message(message, ctx))
    assert not contraction_holds(comp, M, delta)


def test_rotation_of_an_unbiased_inner_keeps_omega_by_monte_carlo():
    Q = orthogonal(seed=4)
    comp = mc.make("rotation", basis=Q, inner={"name": "randk", "k": 7})
    th = comp.matrix_theory(D)
    assert th.kind == "unbiased" and th.omega == pytest.approx(NU / 7 - 1)
    trials = 20000
    X = mc.sym_to_tri(sym_batch(1, seed=15))
    V_hat, _ = comp.apply(X.expand(trials, NU).contiguous(), seed=11)  # trials ride the client axis
    err = frob2(V_hat - X)
    sd = float(err.std()) / trials**0.5
    assert abs(float(err.mean()) - th.omega * float(frob2(X))) <= 6 * sd  # exact omega, preserved by Q
    # unbiased: the mean is X within 5 standard errors per entry (variance of each entry from the sample)
    se = V_hat.std(0) / trials**0.5
    assert bool(((V_hat.mean(0) - X[0]).abs() <= 5 * se + 1e-12).all())
    # negative control: without the back rotation the mean is Q^T X Q, not X
    Vb = mc.sym_to_tri(Q.mT @ mc.tri_to_sym(V_hat) @ Q)
    assert not bool(((Vb.mean(0) - X[0]).abs() <= 5 * se + 1e-12).all())


def test_fednl_runs_with_powersgd_and_rotation():
    import commpress as cp
    from commpress.network import LocalNetwork

    p = cp.problems.make("logreg", dim=8, n_clients=4, samples_per_client=40, l2=1e-2)
    xs = p.optimum()[1]
    with pytest.raises(cp.ConfigError, match="no automatic alpha"):  # no class: no automatic alpha
        cp.algorithms.make("fednl", p, LocalNetwork(p.n), compressor="powersgd")
    Q = torch.linalg.eigh(p.hessians(xs).mean(0)).eigenvectors
    for comp, kw in (("powersgd", {"alpha": 1.0}), (mc.make("rotation", basis=Q, inner={"name": "topk", "k": 8}), {})):
        alg = cp.algorithms.make("fednl", p, LocalNetwork(p.n), compressor=comp, **kw)
        s = alg.init(xs + 0.1)
        for _ in range(30):
            s = alg.step(s)
        assert float(((alg.output(s) - xs) ** 2).sum()) < 1e-10
