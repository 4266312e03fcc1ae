"""default_stepsize / default_params: every simulator name, each equal to its formula; error messages."""

from __future__ import annotations

import math

import pytest
import torch

import commpress.theory as T
from commpress.compressors.base import CompressorTheory
from commpress.errors import ConfigError
from commpress.problems.base import Smoothness

N, D = 4, 64
SM = Smoothness(L_i=torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64), L_minus=2.0, L_plus=2.5, L_pm=1.0,
                mu=0.1)
UNB = CompressorTheory("unbiased", omega=3.0, delta=None, A=0.75, B=0.0, bits=96)
COR = CompressorTheory("correlated", omega=63.0, delta=None, A=63 / 4, B=0.0, bits=96,
                       extras={"A_paper": 1.0, "A_homogeneous": 4.0})
CON = CompressorTheory("contractive", omega=None, delta=0.25, A=None, B=None, bits=512)
IDN = CompressorTheory("unbiased", omega=0.0, delta=1.0, A=0.0, B=0.0, bits=32 * D)
FACTS = dict(K=1000, m=50, L_sample=6.0, sigma2=0.5, delta0=3.0)

SIMULATOR_NAMES = ["gd", "psgd", "dcgd", "qsgd", "diana", "vr_diana", "qsvrg", "terngrad_adam", "marina",
                   "weighted_marina", "ef", "ef21", "ef21_sgd", "double_squeeze", "cser", "neolithic"]
SIMULATOR_NAMES += ["three_pc", "lag", "clag", "dasha", "dasha_page", "dasha_mvr"]  # lazy aggregation, momentum
SIMULATOR_NAMES += ["dcgd_plus", "diana_plus"]  # smoothness matrices
SIMULATOR_NAMES += ["ef21_p", "ef21_p_diana", "ef21_p_marina", "marina_p", "ef21_bc"]  # bidirectional
SIMULATOR_NAMES += ["marina_pp", "ef21_pp", "diana_pp", "dasha_pp"]  # partial participation
SIMULATOR_NAMES += ["proxskip", "scaffnew", "gradskip", "tamuna", "compressed_scaffnew"]  # local training


def test_every_simulator_name_is_known():
    assert set(SIMULATOR_NAMES) == set(T.ALGORITHMS)


@pytest.mark.parametrize("name", SIMULATOR_NAMES)
def test_every_method_gives_a_positive_stepsize_with_the_same_facts(name):
    comp = CON if name in ("ef", "ef21", "ef21_sgd", "ef21_pp", "cser", "double_squeeze", "neolithic") else UNB
    params = T.default_params(name, SM, comp, N, D, **FACTS)
    g = T.default_stepsize(name, SM, comp, N, D, **FACTS)
    assert params["gamma"] == g and 0 < g < math.inf
    report = T.stepsize_report(name, SM, comp, N, D, **FACTS)
    assert "source" in report["constants"]


def test_identity_compressor_recovers_gd_where_theory_says_so():
    for name in ("marina", "weighted_marina", "ef21", "ef21_sgd", "dcgd"):
        assert T.default_stepsize(name, SM, IDN, N, D) == pytest.approx(1 / SM.L_minus), name
    assert T.default_params("marina", SM, IDN, N, D)["p"] == 1.0


def test_values_equal_their_formulas():
    L, Lmax, Lqm = SM.L_minus, SM.L_max, SM.L_qm
    assert T.default_stepsize("gd", SM, None, N, D) == 1 / L
    assert T.default_stepsize("dgd", SM, None, N, D) == 1 / L
    assert T.default_stepsize("psgd", SM, None, N, D, **FACTS) == pytest.approx(
        min(1 / L, math.sqrt(2 * N * 3.0 / (L * 1000 * 0.5))))
    assert T.default_stepsize("psgd", SM, None, N, D, sigma2=0.5) == 1 / L  # no horizon: any gamma <= 1/L
    assert T.default_stepsize("dcgd", SM, UNB, N, D, K=1000) == pytest.approx(
        min(1 / L, 1 / math.sqrt(L * 0.75 * Lmax * 1000)))
    assert T.default_stepsize("qsgd", SM, UNB, N, D, identical_clients=True) == pytest.approx(1 / (L * 1.75))
    dp = T.default_params("diana", SM, UNB, N, D)
    assert dp["gamma"] == pytest.approx(1 / (10 * Lmax * math.sqrt(1 + 0.75) * 5.0))
    assert dp["alpha"] == pytest.approx(0.25)
    assert T.default_stepsize("diana", SM, UNB, N, D, regime="strongly_convex") == pytest.approx(1 / ((1 + 6 * 0.75) * Lmax))
    vp = T.default_params("vr_diana", SM, UNB, N, D, m=50, L_sample=6.0)
    assert vp["gamma"] == pytest.approx(1 / (10 * 6.0 * math.sqrt(1.75) * (50 ** (2 / 3) + 4.0)))
    assert vp["coin_p"] == pytest.approx(1 / 50) and vp["alpha"] == pytest.approx(0.25)
    assert T.default_stepsize("vr_diana", SM, UNB, N, D, m=50, L_sample=6.0, regime="strongly_convex") == pytest.approx(
        1 / (6.0 * (1 + 36 * 4.0 / N)))
    mp = T.default_params("marina", SM, UNB, N, D)
    assert mp["gamma"] == pytest.approx(T.marina_stepsize(L, 2.5, 1.0, 0.75, 0.0, mp["p"]))
    assert mp["p"] == pytest.approx(T.marina_optimal_p(L, 2.5, 1.0, 0.75, 0.0, D, 96))
    assert T.default_params("marina", SM, UNB, N, D, p="bits_ratio")["p"] == pytest.approx(96 / (32 * D))
    assert T.default_params("marina", SM, UNB, N, D, p=0.3)["gamma"] == pytest.approx(
        1 / (L + math.sqrt(0.7 / 0.3 * 0.75 * 2.5**2)))
    assert T.default_stepsize("marina", SM, UNB, N, D, p=0.3, variant="original") == pytest.approx(
        1 / (Lqm * (1 + math.sqrt(0.7 * 3.0 / (0.3 * N)))))
    theta = 1 - math.sqrt(0.75)  # delta = 0.25
    beta = 0.75 / theta
    assert T.default_stepsize("ef21", SM, CON, N, D) == pytest.approx(1 / (L + Lqm * math.sqrt(beta / theta)))
    assert T.default_stepsize("ef21", SM, CON, N, D, regime="pl") == pytest.approx(
        min(1 / (L + Lqm * math.sqrt(2 * beta / theta)), theta / (2 * 0.1)))
    assert T.default_stepsize("ef", SM, CON, N, D) == pytest.approx(0.25 / (4 * Lmax))
    assert T.default_stepsize("cser", SM, CON, N, D) == pytest.approx(0.25 / (4 * Lmax))
    assert T.default_stepsize("double_squeeze", SM, CON, N, D) == pytest.approx(1 / (4 * Lmax))
    assert T.default_stepsize("double_squeeze", SM, CON, N, D, sigma2=0.5) == pytest.approx(1 / (4 * Lmax))
    assert T.default_stepsize("double_squeeze", SM, CON, N, D, K=1000, sigma2=0.5, compression_error=8.0) == \
        pytest.approx(1 / (4 * Lmax + math.sqrt(0.5 * 1000 / N) + 2.0 * 10.0))
    np_ = T.default_params("neolithic", SM, CON, N, D)
    assert np_ == {"gamma": pytest.approx(1 / (4 * Lmax)), "R": math.ceil(math.log(4) / 0.25)}
    nu = T.default_params("neolithic", SM, UNB, N, D)  # unbiased used through 1/(1+omega) C
    assert nu["compressor_scale"] == pytest.approx(0.25) and nu["R"] == math.ceil(math.log(4) / 0.25)
    assert T.default_params("terngrad_adam", None, None, N, D) == {"gamma": 1e-3, "beta1": 0.9, "beta2": 0.999,
                                                                  "eps": 1e-8}


def test_conventions_change_marina_constants():
    homog = Smoothness(L_i=torch.full((N,), 2.0, dtype=torch.float64), L_minus=2.0, L_plus=2.0, L_pm=0.0)
    r = T.stepsize_report("marina", homog, COR, N, D, p=0.5, convention="rigorous")
    assert r["constants"]["A"] == COR.A
    # the default, "auto", takes the homogeneous constant when L_pm = 0 (identical differences) ...
    assert T.stepsize_report("marina", homog, COR, N, D, p=0.5)["constants"]["A"] == 4.0
    # ... and the rigorous one when L_pm > 0
    assert T.stepsize_report("marina", SM, COR, N, D, p=0.5)["constants"]["A"] == COR.A
    assert T.stepsize_report("marina", homog, COR, N, D, p=0.5, convention="paper")["constants"]["A"] == 1.0
    assert T.stepsize_report("marina", homog, COR, N, D, p=0.5, convention="homogeneous")["constants"]["A"] == 4.0
    g_r = T.default_stepsize("marina", homog, COR, N, D, p=0.5, convention="rigorous")
    g_p = T.default_stepsize("marina", homog, COR, N, D, p=0.5, convention="paper")
    assert g_p > g_r
    with pytest.raises(ConfigError, match="L_pm=1.0 > 0"):
        T.default_stepsize("marina", SM, COR, N, D, convention="homogeneous")


def test_weighted_marina_with_importance_weights_uses_L_am():
    w = SM.L_i / SM.L_i.sum()
    r = T.stepsize_report("weighted_marina", SM, UNB, N, D, weights=w, A=4.0, B=1.0, p=0.2)
    assert r["constants"]["L_plus_w"] == pytest.approx(SM.L_am)
    assert r["gamma"] == pytest.approx(T.iscc_stepsize(SM.L_minus, SM.L_am, 3.0, 0.2))
    with pytest.raises(ConfigError, match="L_plus_w"):
        T.default_stepsize("weighted_marina", SM, UNB, N, D, weights=torch.tensor([0.4, 0.3, 0.2, 0.1]), A=4.0, B=1.0)
    assert T.default_stepsize("weighted_marina", SM, UNB, N, D, weights=torch.full((N,), 0.25), A=4.0, B=1.0,
                              p=0.2) == pytest.approx(T.marina_stepsize(SM.L_minus, SM.L_plus, SM.L_pm, 4.0, 1.0, 0.2))
    with pytest.raises(ConfigError, match="weighted AB"):
        T.default_stepsize("weighted_marina", SM, UNB, N, D, weights=w)


@pytest.mark.parametrize("name,comp,kw,match", [
    ("marina", None, {}, "compressor=None"),
    ("diana", CON, {}, "omega"),
    ("vr_diana", CON, {"m": 5, "L_sample": 2.0}, "omega"),
    ("vr_diana", UNB, {"L_sample": 2.0}, "needs m"),
    ("vr_diana", UNB, {"m": 5}, "L_sample"),
    ("qsvrg", UNB, {}, "L_sample"),
    ("dcgd", UNB, {}, "constant K"),
    ("marina", CON, {}, "AB-inequality constants"),
    ("ef", UNB, {}, "contraction constant delta"),
    ("ef21", COR, {}, "contraction constant delta"),
    ("gd", None, {}, "smoothness"),
    ("marina", UNB, {"pp": 0.5}, "did you mean 'p'"),
    ("marina", UNB, {"p": "best"}, "optimal"),
    ("margina", UNB, {}, "Did you mean 'marina'"),
])
def test_missing_constants_raise_config_error(name, comp, kw, match):
    sm = None if match == "smoothness" else SM
    with pytest.raises(ConfigError, match=match):
        T.default_stepsize(name, sm, comp, N, D, **kw)


def test_error_message_says_how_to_fix():
    with pytest.raises(ConfigError) as e:
        T.default_stepsize("diana", SM, CON, N, D)
    msg = str(e.value)
    assert "omega" in msg and "pass omega=" in msg
    with pytest.raises(ConfigError) as e:
        T.default_stepsize("marina", SM, None, N, D)
    assert ".theory(n, d)" in str(e.value)
    # explicit constants make the same calls work
    assert T.default_stepsize("diana", SM, CON, N, D, omega=3.0) > 0
    assert T.default_stepsize("ef", SM, UNB, N, D, delta=0.5) == pytest.approx(0.5 / (4 * SM.L_max))


def test_compressor_objects_are_accepted():
    import commpress.compressors as C

    comp = C.make("iq")
    assert T.default_stepsize("marina", SM, comp, N, D, p=0.5) == T.default_stepsize(
        "marina", SM, comp.theory(N, D), N, D, p=0.5)


def test_homogeneous_convention_for_dcgd_needs_identical_clients():
    homog = Smoothness(L_i=torch.full((N,), 2.0, dtype=torch.float64), L_minus=2.0, L_plus=2.0, L_pm=0.0)
    with pytest.raises(ConfigError, match="identical clients"):
        T.default_stepsize("dcgd", homog, COR, N, D, K=10, convention="homogeneous")
    g = T.default_stepsize("dcgd", homog, COR, N, D, convention="homogeneous", identical_clients=True)
    assert g == pytest.approx(1 / (2.0 * (1 + 4.0)))


def test_weighted_marina_reads_wab_constants_of_combinatorial_compressors():
    w = (SM.L_i / SM.L_i.sum()).tolist()
    th = CompressorTheory("combinatorial", omega=3.0, delta=None, A=99.0, B=1.0, bits=24.0,
                          extras={"WAB_A": 4.0, "WAB_B": 1.0, "weights": w})
    r = T.stepsize_report("weighted_marina", SM, th, N, D, p=0.2)
    assert (r["constants"]["A"], r["constants"]["B"]) == (4.0, 1.0)
    assert r["gamma"] == pytest.approx(T.iscc_stepsize(SM.L_minus, SM.L_am, 3.0, 0.2))
    uniform = CompressorTheory("combinatorial", omega=3.0, delta=None, A=4.0, B=1.0, bits=24.0,
                               extras={"WAB_A": 4.0, "WAB_B": 1.0, "weights": [1 / N] * N})
    assert T.default_stepsize("weighted_marina", SM, uniform, N, D, p=0.2) == pytest.approx(
        T.marina_stepsize(SM.L_minus, SM.L_plus, SM.L_pm, 4.0, 1.0, 0.2))
