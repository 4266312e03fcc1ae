"""The uncertainty principle for compression (Safaryan, Shulgin, Richtárik) and the biased classes' algebra
(Beznosikov et al.): closed forms, every registered compressor's declared constants against the limit
(T-UP-1), measured errors against the limit, with negative controls."""

from __future__ import annotations

import math

import pytest
import torch

import commpress as cp
from commpress.errors import ConfigError
from commpress.theory import compression_limits as CL
from commpress.theory.compression_limits import (
    b1_from_b2, b2_from_b1, b3_from_b2, b3_to_b1_b2, bc_classes, biased_rounding_delta, bits_for_omega, cgd_rate,
    kashin_level, kashin_omega_bound, normalized_error, up_delta, up_epsilon, up_omega, up_product,
)


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_exports_and_no_builders():
    assert set(CL.__all__) >= {"up_epsilon", "up_omega", "up_delta", "up_product", "kashin_level"}
    assert all(callable(getattr(CL, name)) for name in CL.__all__)
    assert CL.BUILDERS == {}


def test_closed_forms():
    d = 100
    assert up_epsilon(2 * d, d) == pytest.approx(1 / 16)  # 2 bits per coordinate
    assert up_omega(d, d) == pytest.approx(1 / 3) and up_omega(0, d) == math.inf
    assert up_delta(d, d) == pytest.approx(3 / 4)
    # the limit is attained exactly by the limit's own constants, and the forms agree
    for b in (0.5, 1.0, 3.0):
        assert up_product(normalized_error("unbiased", omega=up_omega(b * d, d)), b * d, d) == pytest.approx(1.0)
        assert up_product(normalized_error("contractive", delta=up_delta(b * d, d)), b * d, d) == pytest.approx(1.0)
        assert bits_for_omega(up_omega(b * d, d), d) == pytest.approx(b * d)
    assert kashin_level(0.7, 0.5) == pytest.approx(1 / (0.3 * math.sqrt(0.5)))
    assert kashin_omega_bound(3.0, 2.0) == 4.0 and kashin_omega_bound(3.0, 2.0, equal_norm=False) == 4.5
    assert kashin_omega_bound(3.0, 2.0, levels=3) == pytest.approx(9 / 72)
    assert biased_rounding_delta(2.0) == pytest.approx(8 / 9)
    for bad in [lambda: up_epsilon(-1, 4), lambda: up_epsilon(8, 0), lambda: normalized_error("biased"),
                lambda: kashin_level(1.0, 0.5), lambda: biased_rounding_delta(1.0), lambda: cgd_rate("B4", 1, 1)]:
        with pytest.raises(ConfigError):
            bad()


def test_bc_class_algebra():
    d, k = 50, 5
    for name, kw in [("topk", {"k": k}), ("biased_sparsification", {"q": 0.2}), ("adaptive_sparsification", {}),
                     ("topk_q", {"k": k, "zeta": 1.125}), ("biased_rounding", {"base": 2.0}), ("randk", {"k": k})]:
        c = bc_classes(name, d, **kw)
        gamma, beta = c["B2"]
        assert c["B3"] == pytest.approx(b3_from_b2(gamma, beta)) or name == "biased_rounding"
        alpha, beta1 = c["B1"]
        assert alpha <= beta1 and gamma <= beta
        # B1(alpha, beta) in B2(alpha/beta, beta) and B2(gamma, beta) in B1(gamma^2, beta): weaker constants
        assert b2_from_b1(alpha, beta1)[0] <= gamma + 1e-12 and b1_from_b2(gamma, beta)[0] <= alpha + 1e-12
    (a, b1), (g, b2) = b3_to_b1_b2(4.0)
    assert (a, b1, g, b2) == (1 / 64, 2.0, 1 / 8, 2.0)
    # biased rounding: B3 is the unscaled contraction (b+1)^2/(4b), the reciprocal of delta
    assert bc_classes("biased_rounding", d, base=3.0)["B3"] == pytest.approx(1 / biased_rounding_delta(3.0))
    eta, rate = cgd_rate("B3", L=2.0, mu=0.5, delta_bc=4.0)
    assert (eta, rate) == (0.5, 1 - 0.5 / 8)
    assert cgd_rate("B1", 1.0, 0.1, alpha=0.5, beta=2.0) == (0.5, 1 - 0.05 / 4)
    assert cgd_rate("B2", 1.0, 0.1, gamma=0.5, beta=2.0) == (0.5, 1 - 0.05 / 2)


def _up_violations(entries):
    """(name, d, product) of the declared constants below the limit epsilon 4^{b/d} >= 1."""
    out = []
    for name, d, th in entries:
        if th.kind not in ("unbiased", "correlated", "contractive") or (th.omega is None and th.delta is None):
            continue
        eps = normalized_error(th.kind, th.omega, th.delta)
        if eps == 0:  # exact on float inputs (identity): the bound is for x in R^d
            continue
        p = up_product(eps, th.bits, d)
        if p < 1.0 - 1e-12:
            out.append((name, d, p))
    return out


def test_every_registered_compressor_declares_constants_above_the_limit():
    """T-UP-1: epsilon 4^{b/d} >= 1 for every compressor's declared constant and exact bits."""
    entries = []
    for name in cp.compressors.names():
        for n, d in [(4, 16), (8, 64), (2, 1000)]:
            try:
                entries.append((name, d, cp.compressors.make(name).theory(n, d)))
            except ConfigError:
                continue
    assert len(entries) > 50
    assert _up_violations(entries) == []
    # negative control: QSGD claiming omega = 0.01 with its 2 bits per coordinate is impossible
    th = cp.compressors.make("qsgd").theory(4, 64)
    fake = type(th)("unbiased", omega=0.01, delta=None, A=None, B=None, bits=th.bits)
    assert _up_violations([("qsgd-fake", 64, fake)]) == [("qsgd-fake", 64, pytest.approx(up_product(0.01 / 1.01, th.bits, 64)))]


def _measured_product(C, d, bits_scale=1.0, trials=300, seed=0):
    """Monte-Carlo epsilon (best fixed scale) of one x, its standard error, and epsilon 4^{b/d} with the bits sent."""
    x = torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    if C.correlated:
        Ys, bits = zip(*(C.apply(x[None], 1000 + t) for t in range(trials)))
        Y, bits = torch.cat(Ys), torch.cat(bits)
    else:
        Y, bits = C.apply(x.expand(trials, -1).contiguous(), seed + 1)
    # the best-scale error 1 - E<C,x>^2 / (E||C||^2 ||x||^2), with a delta-method standard error
    inner, sq, nx = (Y * x).sum(1), Y.pow(2).sum(1), float(x.pow(2).sum())
    mi, ms = float(inner.mean()), float(sq.mean())
    eps = 1 - mi * mi / (ms * nx)
    grad_i, grad_s = -2 * mi / (ms * nx), mi * mi / (ms * ms * nx)
    var = (grad_i**2 * float(inner.var()) + grad_s**2 * float(sq.var())
           + 2 * grad_i * grad_s * float(((inner - mi) * (sq - ms)).mean())) / trials
    b = float(bits.double().mean()) * bits_scale
    return eps, math.sqrt(max(var, 0.0)), up_product(1.0, b, d)


@pytest.mark.parametrize("name,params", [("kashin", {}), ("drive", {}), ("spherical", {"bits": 8, "block": 4}),
                                         ("natural", {}), ("sign", {}), ("topk_q", {"ratio": 0.25})])
def test_measured_errors_respect_the_limit_and_negative_control(name, params):
    C = cp.compressors.make(name, **params)
    d = 16
    eps, se, factor = _measured_product(C, d, trials=200 if C.correlated else 600)
    assert (eps + 5 * se) * factor >= 1.0  # no compressor beats the limit
    # negative control: had the compressor reported a tenth of the bits it sends, the same test would
    # reject it (for the compressors far enough from the trivial error 1 to tell)
    if name in ("spherical", "drive", "natural", "sign"):
        assert (eps + 5 * se) * factor ** 0.1 < 1.0
