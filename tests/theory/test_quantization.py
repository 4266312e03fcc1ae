"""IQ vs CQ in the zero-Hessian-variance regime: the d = n numbers of App. B.2 and the d-n plane."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import commpress.theory as T

# theory.md §4.4, output of the independent script: d = n, p*_IQ, IF_IQ, p*_CQ, IF_CQ, ratio
ROWS = [
    (16, 0.05704, 0.44112, 0.02864, 0.20685, 2.133),
    (64, 0.03027, 0.29003, 0.01129, 0.09135, 3.175),
    (256, 0.02339, 0.24422, 0.00610, 0.05741, 4.254),
    (1024, 0.02164, 0.23192, 0.00377, 0.04499, 5.155),
    (4096, 0.02120, 0.22878, 0.00240, 0.03921, 5.836),
    (65536, 0.02106, 0.22780, 0.00098, 0.03422, 6.656),
    (1048576, 0.02105, 0.22773, 0.00039, 0.03241, 7.027),
]


def test_published_dn_numbers():
    a = T.dn_equal_analysis()  # d = n -> inf, paper convention
    # the paper's 0.23 / 0.03 / 7.29, to two significant digits
    assert round(a.if_iq, 2) == 0.23
    assert round(a.if_cq, 2) == 0.03
    assert round(a.ratio, 2) == 7.29
    # spec tolerances
    assert a.if_iq == pytest.approx(0.2277, abs=5e-4)
    assert a.if_cq == 0.03125
    assert a.ratio == pytest.approx(7.29, abs=0.01)
    assert a.p_iq == pytest.approx(0.0211, abs=1e-4)


def test_rigorous_convention_does_not_reproduce():
    a = T.dn_equal_analysis(convention="rigorous")
    assert a.if_iq == pytest.approx(0.4018, abs=1e-4)
    assert a.p_iq == pytest.approx(0.0255, abs=1e-4)
    assert a.ratio == pytest.approx(12.859, abs=1e-3)
    assert round(a.ratio, 2) != 7.29  # negative control


@pytest.mark.parametrize("row", ROWS)
def test_finite_dn_rows(row):
    d, p_iq, if_iq, p_cq, if_cq, ratio = row
    a = T.dn_equal_analysis(d)
    assert a.p_iq == pytest.approx(p_iq, abs=5e-5)
    assert a.if_iq == pytest.approx(if_iq, abs=5e-5)
    assert a.p_cq == pytest.approx(p_cq, abs=5e-5)
    assert a.if_cq == pytest.approx(if_cq, abs=5e-5)
    assert a.ratio == pytest.approx(ratio, abs=5e-4)


def test_finite_d_converges_to_the_limit():
    lim = T.dn_equal_analysis()
    big = T.dn_equal_analysis(2.0**40)
    assert big.if_iq == pytest.approx(lim.if_iq, abs=1e-6)
    assert big.if_cq == pytest.approx(lim.if_cq, abs=1e-4)


PLANE_IQ = [[1.0000, 0.5411, 0.2944, 0.2005, 0.1619, 0.1452],
            [1.0000, 0.6956, 0.2686, 0.1267, 0.0760, 0.0563],
            [1.0000, 1.0000, 0.6121, 0.2320, 0.1066, 0.0622],
            [1.0000, 1.0000, 1.0000, 0.6032, 0.2282, 0.1045],
            [1.0000, 1.0000, 1.0000, 1.0000, 0.6023, 0.2278]]
PLANE_CQ = [[1.0000, 0.2944, 0.1619, 0.1376, 0.1326, 0.1315],
            [1.0000, 0.2686, 0.0760, 0.0480, 0.0427, 0.0416],
            [1.0000, 0.6121, 0.1066, 0.0451, 0.0349, 0.0328],
            [1.0000, 1.0000, 0.2282, 0.0608, 0.0370, 0.0325],
            [1.0000, 1.0000, 0.6023, 0.1043, 0.0439, 0.0338]]
D_AX = [10, 100, 1000, 10000, 100000]
N_AX = [1, 10, 100, 1000, 10000, 100000]


def test_dn_plane_matches_reference_table():
    pl = T.dn_plane(np.array(D_AX), np.array(N_AX))
    assert pl.if_iq.shape == (5, 6)
    np.testing.assert_allclose(pl.if_iq, PLANE_IQ, atol=5e-5)
    np.testing.assert_allclose(pl.if_cq, PLANE_CQ, atol=5e-5)
    np.testing.assert_allclose(pl.ratio, pl.if_iq / pl.if_cq)


def test_dn_plane_torch_in_torch_out_and_properties():
    d = torch.logspace(0, 6, 25, dtype=torch.float64).round()
    n = torch.logspace(0, 6, 25, dtype=torch.float64).round()
    pl = T.dn_plane(d, n)
    assert isinstance(pl.if_iq, torch.Tensor) and pl.if_iq.shape == (25, 25)
    assert torch.all(pl.if_cq <= pl.if_iq * (1 + 1e-12))       # correlation never hurts
    assert torch.all(pl.ratio < 32) and torch.all(pl.if_iq <= 1 + 1e-12)
    assert torch.all((pl.p_iq > 0) & (pl.p_iq <= 1))
    # n = 1: CQ is IQ
    assert torch.allclose(pl.if_iq[:, 0], pl.if_cq[:, 0])
    # each cell equals the scalar solver
    i, j = 17, 9
    f, _ = T.quantized_improvement_factor("iq", float(n[j]), float(d[i]))
    assert float(pl.if_iq[i, j]) == pytest.approx(float(f), rel=1e-12)


def test_prop4_communication_cq_below_iq():
    for n, d in [(10, 100), (100, 1000), (1000, 1000)]:
        iq = T.quantized_marina_communication("iq", n, d, 1.0, 1.0, 0.01)
        cq = T.quantized_marina_communication("cq", n, d, 1.0, 1.0, 0.01)
        assert cq.bits_paper <= iq.bits_paper
        gd = T.gd_communication(1.0, d, 1.0, 0.01)
        f_iq, _ = T.quantized_improvement_factor("iq", n, d)
        assert iq.bits_paper / gd.bits_paper == pytest.approx(float(f_iq), rel=1e-10)


def test_quantizer_constants():
    assert float(T.quantizer_ab_constants("iq", 10, 100)) == pytest.approx(100 / 40)
    assert float(T.quantizer_ab_constants("cq", 10, 100)) == pytest.approx(100 / 400)
    assert float(T.quantizer_ab_constants("iq", 10, 100, convention="rigorous")) == pytest.approx(99 / 10)
    assert float(T.quantizer_ab_constants("cq", 10, 100, convention="rigorous")) == pytest.approx(1.0)
    assert float(T.quantizer_ab_constants("iq", 10, 100, levels=3)) == pytest.approx(100 / 360)
    assert float(T.quantizer_bits(100)) == 132 and float(T.quantizer_bits(100, levels=3)) == 232
    assert math.isclose(float(T.quantizer_ab_constants("cq", 5, 7)),
                        float(T.quantizer_ab_constants("iq", 5, 7)) / 5)
