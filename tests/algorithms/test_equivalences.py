"""Exact special cases: MARINA(p=1) = GD, DCGD(identity) = GD; error feedback with an exact wire ~ GD."""

from __future__ import annotations

import pytest
import torch

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress.compressors.base import Compressor
from commpress.network import LocalNetwork

from tests.algorithms._toy import toy


def _run(alg, k):
    state = alg.init()
    xs = [alg.output(state)]
    for _ in range(k):
        state = alg.step(state)
        xs.append(alg.output(state))
    return torch.stack(xs)


def _gamma(problem, c=0.5):
    return c / problem.smoothness().L_minus


def test_marina_with_p_one_is_gd_iterate_for_iterate():
    problem = toy(hetero=2.0)
    gd = cp.algorithms.make("gd", problem, gamma=_gamma(problem))
    marina = cp.algorithms.make("marina", problem, compressor="cq", p=1.0, gamma=_gamma(problem))
    a, b = _run(gd, 25), _run(marina, 25)
    assert torch.equal(a, b)
    # Negative control: p < 1 takes compressed rounds and departs from GD.
    marina_p = cp.algorithms.make("marina", problem, compressor="cq", p=0.5, gamma=_gamma(problem))
    assert not torch.equal(a, _run(marina_p, 25))


def test_dcgd_with_identity_is_gd_and_charges_the_same_bits():
    problem = toy()
    na, nb = LocalNetwork(problem.n), LocalNetwork(problem.n)
    gd = cp.algorithms.make("gd", problem, na, gamma=_gamma(problem))
    dcgd = cp.algorithms.make("dcgd", problem, nb, compressor="identity", gamma=_gamma(problem))
    assert torch.equal(_run(gd, 20), _run(dcgd, 20))
    assert torch.equal(na.ledger.total("up"), nb.ledger.total("up"))
    assert torch.equal(na.ledger.total("up"), torch.full((problem.n,), 20 * 32 * problem.d))
    # and with a real compressor it is not GD
    dcgd_iq = cp.algorithms.make("dcgd", problem, compressor="iq", gamma=_gamma(problem))
    assert not torch.equal(_run(gd, 20), _run(dcgd_iq, 20))


def test_psgd_without_noise_is_gd():
    problem = toy()
    gd = cp.algorithms.make("gd", problem, gamma=_gamma(problem))
    psgd = cp.algorithms.make("psgd", problem, gamma=_gamma(problem))
    assert torch.equal(_run(gd, 10), _run(psgd, 10))


class _Exact64(Compressor):
    """Identity with 64-bit values: an exact wire (test helper, not registered)."""

    name = "exact64"

    def apply(self, X, seed, *, clients=None, n=None):
        return X.clone(), torch.full((X.shape[0],), 64 * X.shape[1], dtype=torch.int64)

    def theory(self, n, d):
        return cp.compressors.CompressorTheory("unbiased", 0.0, 1.0, 0.0, 0.0, 64 * d)


@pytest.mark.parametrize("name,kw", [
    ("ef", {}), ("ef21", {"g0": "compressed"}), ("double_squeeze", {"downlink_compressor": _Exact64()}),
    ("neolithic", {"R": 1}), ("neolithic", {"R": 3, "downlink_compressor": _Exact64()}),
    ("diana", {"alpha": 1.0}), ("cser", {"H": 3}), ("vr_diana", {"alpha": 1.0}),
    ("vr_diana", {"alpha": 1.0, "variant": "saga"}),
])
def test_methods_with_an_exact_wire_reduce_to_gd(name, kw):
    # With an exact 64-bit wire every compressed method is GD (exact DCGD) up to float rounding.
    # (VR-DIANA on clients with one sample each: its estimator is the exact local gradient.)
    problem = toy(hetero=1.5, m=1 if name == "vr_diana" else 8)
    exact = _Exact64()
    gd = cp.algorithms.make("dcgd", problem, compressor=exact, gamma=_gamma(problem), downlink_compressor=exact)
    other = cp.algorithms.make(name, problem, compressor=exact, gamma=_gamma(problem), **kw)
    if "downlink_compressor" not in kw and name != "neolithic":
        other = cp.algorithms.make(name, problem, compressor=exact, gamma=_gamma(problem),
                                   downlink_compressor=exact, **kw)
    a, b = _run(gd, 15), _run(other, 15)
    # Unidirectional NEOLITHIC broadcasts one dense float32 message and keeps its rounding error
    # in v (error feedback): it tracks GD to float32 rounding (~1e-8), not to 1e-12.
    tol = 1e-6 if (name == "neolithic" and "downlink_compressor" not in kw) else 1e-12
    assert torch.allclose(a, b, rtol=tol, atol=tol), (a - b).abs().max()
    # Negative control: the float32 wire of GD differs from the exact wire at ~1e-8.
    gd32 = cp.algorithms.make("gd", problem, gamma=_gamma(problem), downlink_compressor=exact)
    if tol == 1e-12:
        assert not torch.allclose(_run(gd32, 15), b, rtol=tol, atol=tol)
