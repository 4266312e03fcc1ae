"""3PC constants of the Hessian-learning mechanisms hold (with the corrected CBAG A), and the local theory's numbers."""

from __future__ import annotations

import math

import pytest
import torch

from commpress.compressors import matrix as mc
from commpress.theory import second_order as so

D = 7


def frob2(V):
    return (V * V * mc.frobenius_weights(D)).sum(-1)


def batch(seed, rows=400):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(rows, D, D, generator=g, dtype=torch.float64)
    return mc.sym_to_tri(A + A.mT)


def expected_error(mechanism, H, Y, X, comp, p=1.0, zeta=2.0):
    """E||C_{H,Y}(X) - X||_F^2, exactly (deterministic compressor; the coin's expectation in closed form)."""
    ef = H + comp.apply(X - H, seed=0)[0]
    if mechanism == "ef21":
        return frob2(ef - X)
    if mechanism == "cbag":
        return p * frob2(ef - X) + (1 - p) * frob2(H - X)
    if mechanism == "clag":
        fire = frob2(X - H) > zeta * frob2(X - Y)
        return torch.where(fire, frob2(ef - X), frob2(H - X))
    if mechanism == "lag":
        fire = frob2(X - H) > zeta * frob2(X - Y)
        return torch.where(fire, torch.zeros_like(fire, dtype=H.dtype), frob2(H - X))
    raise AssertionError(mechanism)


@pytest.mark.parametrize("mechanism", ["ef21", "cbag", "clag", "lag"])
def test_three_point_inequality_holds(mechanism):
    comp = mc.make("topk", k=D)
    delta = comp.matrix_theory(D).delta
    A, B = so.newton_3pc_constants(mechanism, delta=delta, p=0.5, zeta=2.0)
    assert 0 < A <= 1 and B >= 0
    H, Y = batch(1), batch(2)
    X = Y + 0.3 * batch(3)  # X near Y: the regime of Hessian learning
    X[:50] = batch(4)[:50]  # and some far
    lhs = expected_error(mechanism, H, Y, X, comp, p=0.5)
    rhs = (1 - A) * frob2(H - Y) + B * frob2(X - Y)
    assert bool((lhs <= rhs * (1 + 1e-9)).all())


def test_cbag_printed_constant_is_wrong_and_the_corrected_one_is_consistent():
    # N3PC's Lemma prints A = (1 - p delta)(1 + s); with it 1 - A is tiny and the inequality fails (control)
    comp = mc.make("topk", k=D)
    delta, p = comp.matrix_theory(D).delta, 0.5
    A, B = so.newton_3pc_constants("cbag", delta=delta, p=p)
    s = 0.5 * p * delta / (1 - p * delta)
    assert A == pytest.approx(1 - (1 - p * delta) * (1 + s))
    A_printed = (1 - p * delta) * (1 + s)
    H, Y = batch(5), batch(6)
    X = Y.clone()  # X = Y: the bound reduces to (1 - A) ||H - Y||^2
    lhs = expected_error("cbag", H, Y, X, comp, p=p)
    assert not bool((lhs <= (1 - A_printed) * frob2(H - Y) + B * frob2(X - Y)).all())


def test_learning_rates_and_local_theory():
    assert so.hessian_learning_rate("contractive", 0.25, None, "auto", "t") == 1.0
    assert so.hessian_learning_rate("contractive", 0.19, None, "conservative", "t") == pytest.approx(0.1)
    assert so.hessian_learning_rate("unbiased", None, 3.0, "auto", "t") == 0.25
    with pytest.raises(so.ConfigError):
        so.hessian_learning_rate("contractive", 0.25, None, 0.0, "t")
    out = so.local_rate(1.0, 0.0, option=1, mu=1e-3, L_star=2.0, L_F=3.0)
    assert out["rate"] == pytest.approx(2 / 3) and out["C"] == 2 and out["D"] == 4
    assert out["radius"] == pytest.approx(min(1e-3 / (math.sqrt(8) * 3.0), 1e-3 / math.sqrt(8)))
    assert so.local_constants(2, 2.0, 3.0) == (8.0, 64.0)


def test_logistic_hessian_lipschitz_bounds_the_third_derivative():
    import commpress as cp

    p = cp.problems.make("logreg", dim=5, n_clients=3, samples_per_client=20, l2=1e-2)
    L = so.logistic_hessian_lipschitz(p.data.features, p.data.counts, reduce="max")
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x, y = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
        diff = torch.linalg.matrix_norm(p.hessians(x) - p.hessians(y), ord=2)
        assert bool((diff <= L * float((x - y).norm()) + 1e-12).all())


def test_constants_of_the_3pcv_and_rotation_mechanisms():
    # 3PCv2 (derived): A = delta, B = (1 - delta) omega; rotation (N3PC App. A): A = delta / 2,
    # B = (1 - delta)(2 - delta) / delta; 3PCv4: EF21 with 1 - delta = (1 - delta1)(1 - delta2)
    assert so.newton_3pc_constants("3pcv2", delta=0.25, omega=3.0) == (0.25, 0.75 * 3.0)
    A, B = so.newton_3pc_constants("rotation", delta=0.25)
    assert A == pytest.approx(0.125) and B == pytest.approx(0.75 * 1.75 / 0.25)
    assert so.newton_3pc_constants("3pcv4", delta=0.5, delta2=0.5) == so.newton_3pc_constants("ef21", delta=0.75)
    A, B = so.newton_3pc_constants("adaptive_topk", d0=7, dim=7)
    assert A == pytest.approx(1 / 14) and B == pytest.approx((1 - 1 / 7) * 13)


def expected_error_3pcv(mechanism, H, Y, X, comp, p):
    """E||C_{H,Y}(X) - X||_F^2 of the deterministic 3PCv* / rotation / adaptive mechanisms (3PCv5's coin in closed form)."""
    ap = lambda c, V: c.apply(V, seed=0)[0]  # noqa: E731
    if mechanism == "3pcv1":
        return frob2(Y + ap(comp, X - Y) - X)
    if mechanism == "3pcv4":
        b = H + ap(comp, X - H)
        return frob2(b + ap(comp, X - b) - X)
    if mechanism == "3pcv5":
        return (1 - p) * frob2(H + ap(comp, X - Y) - X)  # w.p. p the error is 0 (X itself)
    if mechanism == "rotation":
        Q = torch.linalg.qr(torch.randn(D, D, dtype=torch.float64, generator=torch.Generator().manual_seed(9))).Q
        return frob2(H + ap(mc.make({"name": "rotation", "basis": Q, "inner": comp}), X - H) - X)
    K = torch.ceil(D * D * frob2(Y - H) / frob2(X - H)).clamp(max=D).long()  # adaptive Top-K, d0 = D
    out = H.clone()
    for k in K.unique().tolist():
        if k == 0:
            continue  # nothing sent: H stays
        rows = K == k
        out[rows] = H[rows] + ap(mc.make("topk", k=int(k)), (X - H)[rows])
    return frob2(out - X)


@pytest.mark.parametrize("mechanism", ["3pcv1", "3pcv4", "3pcv5", "rotation", "adaptive_topk"])
def test_three_point_inequality_holds_for_the_3pcv_rotation_and_adaptive_mechanisms(mechanism):
    comp = mc.make("topk", k=D)
    delta = comp.matrix_theory(D).delta
    A, B = so.newton_3pc_constants(mechanism, delta=delta, delta2=delta, p=0.5, d0=D, dim=D)
    assert 0 < A <= 1 and B >= 0
    H, Y = batch(1), batch(2)
    X = Y + 0.3 * batch(3)
    X[:50] = batch(4)[:50]
    lhs = expected_error_3pcv(mechanism, H, Y, X, comp, p=0.5)
    assert bool((lhs <= ((1 - A) * frob2(H - Y) + B * frob2(X - Y)) * (1 + 1e-9)).all())
    # control (power): at Y = H the bound is B ||X - H||^2 alone; without the B term it must fail
    lhs0 = expected_error_3pcv(mechanism, H, H.clone(), X, comp, p=0.5)
    assert not bool((lhs0 <= (1 - A) * frob2(H - H)).all())
    assert bool((lhs0 <= B * frob2(X - H) * (1 + 1e-9)).all())
