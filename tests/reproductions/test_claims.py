"""Every claim check of every reproduction on fabricated numbers: a case where it holds, a case where it
does not, and the cases where its numbers cannot be measured (then it is not held and says why). The
verdicts read medians over seeds: one bad seed does not flip them.

Each claim has a held and a not-held case, so a check that returned ``held=True`` (or ``False``) without
looking at the numbers fails here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from commpress.reproductions import Claim
from commpress.reproductions import cq_dn_plane as dn
from commpress.reproductions import cq_logreg as lr
from commpress.reproductions import cq_permk as pk
from commpress.reproductions import cq_quadratic as q
from commpress.reproductions import cq_weighted as w
from commpress.reproductions import neolithic_images as images
from commpress.reproductions import neolithic_synthetic as synthetic
from commpress.reproductions import vrdiana
from commpress.reproductions import vrdiana_alpha as alpha
from commpress.reproductions._seeds import Spread, band
from tests.reproductions._fake import data_results, held, measured, method, panels, spread
from tests.reproductions.test_lazy_claims import (  # noqa: F401
    test_3pc_clag_held, test_3pc_clag_not_held, test_3pc_clag_unmeasurable, test_dasha_held, test_dasha_not_held,
    test_dasha_unmeasurable)
from tests.reproductions.test_pp_claims import test_pp_held, test_pp_not_held, test_pp_unmeasurable  # noqa: F401
from tests.reproductions.test_microadam_claims import test_all_measurable_claims_hold as test_microadam_held  # noqa: F401
from tests.reproductions.test_microadam_claims import test_claims_fail_on_bad_numbers as test_microadam_not_held  # noqa: F401
from tests.reproductions.test_microadam_claims import (  # noqa: F401
    test_unmeasurable_numbers_are_not_held as test_microadam_unmeasurable,
)
from tests.reproductions.test_local_training_claims import (  # noqa: F401
    test_gradskip_held,
    test_gradskip_not_held,
    test_gradskip_unmeasurable,
    test_proxskip_held,
    test_proxskip_not_held,
    test_proxskip_unmeasurable,
    test_tamuna_held,
    test_tamuna_not_held,
    test_tamuna_unmeasurable,
)
from tests.reproductions.test_smoothness_claims import (  # noqa: F401
    test_basis_learn_held, test_basis_learn_not_held, test_basis_learn_unmeasurable,
    test_smoothness_aware_quantization_held, test_smoothness_aware_quantization_not_held,
    test_smoothness_aware_quantization_unmeasurable, test_smoothness_matrices_held,
    test_smoothness_matrices_not_held, test_smoothness_matrices_unmeasurable)
from tests.reproductions.test_bidirectional_claims import (  # noqa: F401
    test_ef21_bc_held, test_ef21_bc_not_held, test_ef21_bc_unmeasurable, test_ef21_p_held, test_ef21_p_not_held,
    test_ef21_p_unmeasurable, test_marina_p_held, test_marina_p_not_held, test_marina_p_unmeasurable)
from tests.reproductions.test_second_order_claims import (  # noqa: F401
    test_fednl_held, test_fednl_not_held, test_fednl_unmeasurable, test_newton_3pc_held, test_newton_3pc_not_held,
    test_newton_3pc_unmeasurable,
)


def _reasons(claims) -> bool:
    """Every claim that was not measured says why, and every measured one that failed has a reading."""
    return all(c.unmeasurable or c.held or c.note for c in claims)


# ----------------------------------------------------------------------------- the framework
def test_every_reproduction_has_a_held_and_a_not_held_case_here():
    from commpress import reproductions

    tests = set(globals())
    for name in reproductions.names():
        mod = name.replace("-", "_")
        assert {f"test_{mod}_held", f"test_{mod}_not_held", f"test_{mod}_unmeasurable"} <= tests, name


def test_claim_that_cannot_be_measured_is_never_held():
    with pytest.raises(ValueError, match="cannot be held"):
        Claim("x", True, {}, unmeasurable="nothing converged")
    c = Claim("x", False, {"a": 1}, unmeasurable="nothing converged")
    assert c.as_dict() == {"claim": "x", "held": False, "numbers": {"a": 1}, "unmeasurable": "nothing converged"}
    assert "unmeasurable" not in Claim("x", False, {}).as_dict()  # claims.json unchanged where measured


def test_spread_median_and_range():
    s = Spread.of([3.0, None, 1.0, 2.0, 100.0])
    assert s.median == 3.0 and s.lo == 1.0 and math.isinf(s.hi) and s.n == 5   # None = not reached = inf
    assert Spread.of([1.0, None]).median == math.inf                          # half reached: the median did not
    assert math.isnan(Spread.of([]).median) and math.isnan(Spread.of([1.0, math.nan]).median)
    assert Spread.of([2.0, 1.0, 4.0]).text() == "2 [1–4]" and Spread.of([2.0]).text() == "2"


def test_band_is_median_and_min_max_over_seeds():
    x, med, lo, hi = band([([0, 10, 20], [1.0, 0.1, 0.01]), ([0, 5, 30], [1.0, 0.5, 0.05]), ([0, 20], [1.0, 0.2])])
    assert list(x) == [0, 5, 10, 20, 30]
    assert list(med) == [1.0, 1.0, 0.5, 0.2, 0.05]    # each seed keeps its last value until its next point
    assert list(lo) == [1.0, 0.5, 0.1, 0.01, 0.01] and list(hi) == [1.0, 1.0, 1.0, 0.5, 0.2]


def test_plot_band_draws_a_median_line_and_a_shaded_band():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from commpress.reproductions._seeds import plot_band

    fig, ax = plt.subplots()
    line = plot_band(ax, [([0, 1, 2], [1.0, 0.5, 0.1]), ([0, 1, 2], [1.0, 0.2, 0.3]), ([0, 2], [1.0, 0.2])],
                     color="C0", label="m")
    assert list(line.get_ydata()) == [1.0, 0.5, 0.2] and line.get_label() == "m"
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1   # the min–max band
    plot_band(ax, [([0, 1], [1.0, 0.5])], color="C1")                       # one seed: a line, no band
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1
    plt.close(fig)


def test_selection_reads_medians_over_seeds():
    # multiplier 1: one slow seed (mean 3,400 bits, median 100); multiplier 2: 200 bits on every seed
    res = panels("cq-quadratic", {"s0": {q.CQ: {"multipliers": {1.0: method([100.0, 100.0, 10000.0]),
                                                              2.0: method([200.0, 200.0, 200.0])}}}}, [0.0])
    m = res.panel("s0").method(q.CQ)
    assert m.multiplier == 1.0 and m.bits_spread().median == 100.0 and m.seeds == 3
    # a multiplier whose median seed does not reach the target is not chosen over one whose median does
    res = panels("cq-quadratic", {"s0": {q.CQ: {"multipliers": {1.0: method([50.0, None, None]),
                                                              2.0: method([300.0, 300.0, None])}}}}, [0.0])
    assert res.panel("s0").method(q.CQ).multiplier == 2.0


# ----------------------------------------------------------------------------- cq-quadratic
def _quad(s0, s1):
    return panels("cq-quadratic", {"s0": dict(zip((q.CQ, q.IQ, q.DRIVE, q.GD), s0)),
                                   "s1": dict(zip((q.CQ, q.IQ, q.DRIVE, q.GD), s1))}, [0.0, 0.4])


def test_cq_quadratic_held():
    claims = q.check(_quad([[90.0, 100.0, 10000.0], 300.0, 200.0, 1000.0],   # one bad CQ seed: the median decides
                           [250.0, 300.0, 260.0, 1000.0]))
    assert held(claims) == [True, True, True, True] and all(measured(claims))
    assert claims[0].numbers["bits MARINA + CQ"] == "100 [90–10,000]"        # median [min–max] over the seeds


def test_cq_quadratic_not_held():
    claims = q.check(_quad([250.0, 300.0, 200.0, 1000.0],     # DRIVE beats CQ at L± = 0
                           [None, 300.0, 200.0, 1000.0]))     # CQ never reaches the target: loses to IQ and DRIVE
    assert held(claims) == [False, False, False, True] and all(measured(claims)) and _reasons(claims)
    shrink = q.check(_quad([100.0, 300.0, 200.0, 1000.0], [100.0, 600.0, 400.0, 1000.0]))  # the advantage grows
    assert held(shrink) == [True, True, True, False] and all(measured(shrink)) and shrink[3].note


def test_cq_quadratic_unmeasurable():
    nothing = [None, None, None, None]
    claims = q.check(_quad(nothing, nothing))
    assert held(claims) == [False] * 4 and measured(claims) == [False] * 4   # was: claim 4 held on a NaN ratio
    assert "not measured" in claims[0].unmeasurable and "cannot be ordered" in claims[3].unmeasurable
    one = panels("cq-quadratic", {"s0": dict(zip((q.CQ, q.IQ, q.DRIVE, q.GD), [100.0, 300.0, 200.0, 1000.0]))}, [0.0])
    claims = q.check(one)
    assert held(claims) == [True, True, True, False] and "single L±" in claims[3].unmeasurable


# ----------------------------------------------------------------------------- cq-weighted
def _weighted(s0, s4):
    return panels("cq-weighted", {"s0": dict(zip((w.ISCC, w.DRIVE), s0)), "s4": dict(zip((w.ISCC, w.DRIVE), s4))},
                  [0.0, 4.0])  # noise: L_QM/L_AM grows with it


def test_cq_weighted_held():
    claims = w.check(_weighted([[100.0, 90.0, 5000.0], 150.0], [100.0, 400.0]))
    assert held(claims) == [True, True] and all(measured(claims))


def test_cq_weighted_not_held():
    claims = w.check(_weighted([200.0, 150.0], [400.0, 300.0]))
    assert held(claims) == [False, False] and all(measured(claims)) and _reasons(claims)


def test_cq_weighted_unmeasurable():
    claims = w.check(_weighted([None, None], [None, None]))
    assert held(claims) == [False, False] and measured(claims) == [False, False]
    assert "neither method reached" in claims[0].unmeasurable and "cannot be ordered" in claims[1].unmeasurable


# ----------------------------------------------------------------------------- cq-logreg
def _logreg(finals, majority=2):
    """finals: dataset -> (CQ, IQ, DRIVE, GD) final ‖∇f‖² (per seed where a list)."""
    table = {k: {m: method(1.0, final=f) for m, f in zip((lr.CQ, lr.IQ, lr.DRIVE, lr.GD), v)}
             for k, v in finals.items()}
    return panels("cq-logreg", table, [0.5] * len(finals), target=None, select="final_grad_norm_sq",
                  params={"majority": majority})


def test_cq_logreg_held():
    seeds = [1e-8, 1e-8, 5e-7]  # one seed ends above IQ; the median does not
    claims = lr.check(_logreg({"a": (seeds, 1e-7, 1e-7, 1e-6), "b": (1e-8, 1e-7, 1e-7, 1e-6),
                               "c": (1e-8, 1e-7, 1e-6, 1e-6)}))
    assert held(claims) == [True, True, True] and all(measured(claims))
    assert "1e-08 [1e-08–5e-07] vs 1e-07" in claims[0].numbers["final ‖∇f‖² CQ vs IQ"]["a"]


def test_cq_logreg_not_held():
    claims = lr.check(_logreg({"a": ([3e-7, 3.2e-7, 3.4e-7], [1.4e-7, 1.5e-7, 4e-7], 1e-7, 1e-6),  # IQ below CQ
                               "b": (1e-8, 1e-7, 1e-7, 1e-9),                                    # GD below CQ
                               "c": (1e-8, 1e-7, 1e-9, 1e-6)}))                                   # DRIVE below CQ
    assert held(claims) == [False, False, False] and all(measured(claims)) and _reasons(claims)
    assert "overlap" in claims[0].note  # the seeds' ranges of CQ and IQ overlap on a


def test_cq_logreg_unmeasurable():
    inf = math.inf
    claims = lr.check(_logreg({"a": (inf, inf, inf, inf), "b": (1e-8, 1e-7, 1e-7, 1e-6), "c": (inf, inf, inf, inf)}))
    # every method diverged on a and c: CQ won on b only, 2 of 3 needed, the rest undecided
    assert held(claims) == [False, False, False]
    assert measured(claims) == [False, False, False]
    assert "both diverged" in claims[0].unmeasurable and "the count is not measured" in claims[2].unmeasurable


# ----------------------------------------------------------------------------- cq-permk
PCQ = "MARINA + PermK+CQ (b=2)"


def _permk(s0, s1, monkeypatch, mse=(0.01, 0.02), msg_bits=(40.0, 20.0)):
    """s0, s1: bits of (CQ, PermK, PermK+CQ) at L± = 0 and at L± > 0; the Monte-Carlo errors of the mean and
    message sizes of Corollary 3: (CQ, PermK+CQ)."""
    def fake_mse(name, n, d, trials=0, **params):
        k = 0 if name == "cq" else 1
        return mse[k], 0.0, msg_bits[k]

    monkeypatch.setattr(pk, "homogeneous_mse", fake_mse)
    labels = (pk.CQ, pk.PERMK, PCQ)
    return panels("cq-permk", {"s0": dict(zip(labels, s0)), "s1": dict(zip(labels, s1))}, [0.0, 1.0])


def test_cq_permk_held(monkeypatch):
    claims = pk.check(_permk([100.0, 200.0, [100.0, 90.0, 9000.0]], [400.0, 1000.0, 300.0], monkeypatch))
    assert held(claims) == [True, True, True] and all(measured(claims))   # growth 3 < 5; ratios 2 and 2 for b = 2


def test_cq_permk_not_held(monkeypatch):
    claims = pk.check(_permk([100.0, 200.0, 300.0], [400.0, 1000.0, 3000.0], monkeypatch, mse=(0.01, 0.1)))
    assert held(claims) == [False, False, False] and all(measured(claims)) and _reasons(claims)


def test_cq_permk_unmeasurable(monkeypatch):
    nothing = [None, None, None]
    claims = pk.check(_permk(nothing, nothing, monkeypatch, mse=(0.0, 0.02)))
    assert held(claims) == [False] * 3 and measured(claims) == [False] * 3
    assert "not measured" in claims[0].unmeasurable and "nan" in claims[1].unmeasurable
    assert "b = 2" in claims[2].unmeasurable


def test_corollary3_verdict():
    assert pk.corollary3_verdict(2, 1.9, 2.2, 2.0) is True
    assert pk.corollary3_verdict(2, 1.9, 5.0, 2.0) is False
    assert pk.corollary3_verdict(2, math.nan, 2.0, 2.0) is None and pk.corollary3_verdict(2, 2.0, 0.0, 2.0) is None


# ----------------------------------------------------------------------------- cq-dn-plane (theory: no seeds)
def _plane(**change):
    """A 6 x 6 grid d, n in {1, ..., 1e5} with improvement factors that satisfy the four claims."""
    grid = np.logspace(0.0, 5.0, 6)
    D, N = np.meshgrid(grid, grid, indexing="ij")
    one_bit = (D + 32.0) / (32.0 * D)
    if_iq = np.minimum(one_bit * (1.0 + D / N), 1.0)        # GD when d >> n, the 1-bit limit when n >> d
    if_cq = one_bit.copy()                                    # at the limit everywhere in reach
    ratio = np.ones_like(D)
    ratio[3, 2] = 7.29                                        # the maximum at d = 1e3, n = 1e2: n < d < n²
    data = {"d": grid, "n": grid, "if_iq": if_iq, "if_cq": if_cq, "ratio": ratio,
            "d_equals_n_limit": {"if_iq": 0.2277, "if_cq": 0.03125, "ratio": 7.287, "p_iq": 0.1},
            "d_equals_n_finite": {"1024": {"if_iq": 0.232, "if_cq": 0.045, "ratio": 5.16}}}
    for key, fn in change.items():
        data[key] = fn(data[key], D, N)
    return data_results("cq-dn-plane", data)


def test_cq_dn_plane_held():
    claims = dn.check(_plane())
    assert held(claims) == [True, True, True, True] and all(measured(claims))


def test_cq_dn_plane_not_held():
    claims = dn.check(_plane(d_equals_n_limit=lambda v, D, N: {**v, "if_cq": 0.045},    # a finite-d number
                             if_iq=lambda v, D, N: np.where(D >= 100 * N, 0.5, v),       # IQ gains where d >> n
                             if_cq=lambda v, D, N: np.where(N >= 100 * np.sqrt(D), 2.0 * v, v),  # CQ off the limit
                             ratio=lambda v, D, N: np.where((D == 1e5) & (N == 1.0), 40.0, v)))  # max >= 32, d > n²
    assert held(claims) == [False, False, False, False] and all(measured(claims)) and _reasons(claims)


def test_cq_dn_plane_unmeasurable():
    claims = dn.check(_plane(d_equals_n_limit=lambda v, D, N: {**v, "ratio": math.nan},
                             d=lambda v, D, N: v[:2], n=lambda v, D, N: v[:2],   # d, n in {1, 10}: no d >= 100 n
                             if_iq=lambda v, D, N: v[:2, :2], if_cq=lambda v, D, N: v[:2, :2],
                             ratio=lambda v, D, N: np.where(np.arange(4).reshape(2, 2) == 0, np.nan, 1.0)))
    assert held(claims) == [False] * 4 and measured(claims) == [False] * 4
    assert "ratio" in claims[0].unmeasurable and "d ≥ 100 n" in claims[1].unmeasurable


# ----------------------------------------------------------------------------- vrdiana
def _vr_row(final=1e-9, mid=1e-5, dist=1e-9, bits=1e5, mult=1.0):
    return {"final_rel_gap": final, "mid_rel_gap": mid, "final_rel_dist": dist, "bits_to_level": bits,
            "multiplier": mult, "edge": False, "iterations": 800.0, "seeds": 3, "diverged": 0}


def _vrdiana(**rows):
    base = {vrdiana.LSVRG: _vr_row(), vrdiana.SAGA: _vr_row(bits=1.2e5), vrdiana.DIANA: _vr_row(1e-4, 1.2e-4, 1e-3, None),
            vrdiana.QSVRG: _vr_row(bits=3e5), vrdiana.TERN: _vr_row(2e-4, 2.1e-4, 1e-3, None)}
    for label, change in rows.items():
        base[{"lsvrg": vrdiana.LSVRG, "saga": vrdiana.SAGA, "diana": vrdiana.DIANA, "qsvrg": vrdiana.QSVRG,
              "tern": vrdiana.TERN}[label]].update(change)
    return data_results("vrdiana", {"phishing": base}, panel_labels={"phishing": "phishing"})


def test_vrdiana_held():
    res = _vrdiana(lsvrg={"spread": {"final_rel_gap": spread(1e-9, 1e-9, 0.5)}})  # one seed far off: the median decides
    claims = vrdiana.check(res)
    assert held(claims) == [True, True, True] and all(measured(claims))
    assert claims[0].numbers[vrdiana.LSVRG]["rel gap"] == "1e-09 [1e-09–0.5]"


def test_vrdiana_not_held():
    claims = vrdiana.check(_vrdiana(lsvrg={"final_rel_gap": 1e-3},                  # not linear within the budget
                                    diana={"final_rel_gap": 1e-6, "mid_rel_gap": 1e-4},  # still descending
                                    qsvrg={"bits_to_level": 0.9e5}))                # QSVRG needs fewer bits
    assert held(claims) == [False, False, False] and all(measured(claims)) and _reasons(claims)


def test_vrdiana_unmeasurable():
    inf = math.inf
    claims = vrdiana.check(_vrdiana(lsvrg={"final_rel_gap": inf, "final_rel_dist": inf, "bits_to_level": None},
                                    saga={"final_rel_gap": inf, "final_rel_dist": inf, "bits_to_level": None},
                                    qsvrg={"bits_to_level": None}))
    # VR-DIANA diverged: claim 1 measured (not linear), no reference for the floor, nothing reached the level
    assert held(claims) == [False, False, False] and measured(claims) == [True, False, False]
    assert "no reference" in claims[1].unmeasurable and "no method reached" in claims[2].unmeasurable
    claims = vrdiana.check(_vrdiana(diana={"mid_rel_gap": 0.0}))  # final/mid undefined: not a "floor"
    assert measured(claims) == [True, False, True] and not claims[1].held


# ----------------------------------------------------------------------------- vrdiana-alpha
def _alpha_rows(spec, level_iter=None):
    """spec: (variant, α/α*, final rel gap, iterations to the level or None)."""
    return [{"label": f"{v} {r:g}", "variant": v, "alpha": 0.2 * r, "alpha_star": 0.2, "ratio": r,
             "final_rel_gap": g, "final_rel_dist": g, "iterations": 600.0, "iterations_to_level": k,
             "diverged": int(math.isinf(g)), "seeds": 3, "stepsize": 0.1} for v, r, g, k in spec]


def _alpha(spec):
    return data_results("vrdiana-alpha", {"rows": _alpha_rows(spec), "record_every": 10})


def test_vrdiana_alpha_held():
    claims = alpha.check(_alpha([("lsvrg", 1 / 32, 1e-8, 900), ("lsvrg", 1 / 4, 1e-9, 500), ("lsvrg", 1.0, 1e-12, 300),
                                 ("lsvrg", 4.0, math.inf, None), ("saga", 1 / 4, 1e-9, 400), ("saga", 1.0, 1e-9, 405)]))
    assert held(claims) == [True, True, True] and all(measured(claims))  # 405 vs 400: within the recording step


def test_vrdiana_alpha_not_held():
    claims = alpha.check(_alpha([("lsvrg", 1 / 32, 1e-3, None), ("lsvrg", 1 / 4, 1e-9, 300), ("lsvrg", 1.0, 1e-9, 500),
                                 ("lsvrg", 4.0, 1e-9, 200)]))  # slower at α*; 4α* still converges
    assert held(claims) == [False, False, False] and all(measured(claims)) and _reasons(claims)


def test_vrdiana_alpha_unmeasurable():
    # nothing reaches the level: the order of the α is not measured (was: held, inf <= inf), and a failure at
    # 4α* says nothing when α <= α* failed too (was: held)
    claims = alpha.check(_alpha([("lsvrg", 1 / 4, 1e-3, None), ("lsvrg", 1.0, 1e-3, None), ("lsvrg", 4.0, 1e-2, None)]))
    assert held(claims) == [False, False, False] and measured(claims) == [True, False, False]
    assert "not measured" in claims[1].unmeasurable and "converged" in claims[2].unmeasurable
    # one α per variant (was: held with nothing compared), no large α, no α <= α*
    claims = alpha.check(_alpha([("lsvrg", 1.0, 1e-9, 300), ("saga", 1.0, 1e-9, 300)]))
    assert held(claims) == [True, False, False] and measured(claims) == [True, False, False]
    assert "two or more" in claims[1].unmeasurable and "no α beyond" in claims[2].unmeasurable
    claims = alpha.check(_alpha([("lsvrg", 4.0, math.inf, None)]))
    assert not claims[0].held and "no α ≤ 1/(ω+1)" in claims[0].unmeasurable


def test_undecided_pairs():
    assert alpha.undecided_pairs([0.1, 0.01, 0.2], [None, None, 30.0]) == [(0.01, 0.1)]
    assert alpha.undecided_pairs([0.1, 0.2], [None, 30.0]) == []


# ----------------------------------------------------------------------------- neolithic-synthetic
def _synthetic(acc, at_bits, eps, lb=(1.0, 0.5, 0.25)):
    """acc / at_bits: NEOLITHIC's and the others' (P-SGD / each baseline) numbers; eps: NEOLITHIC's ε(T)."""
    rows = {m: {"acc": acc[1], "acc_at_bits": at_bits[1], "edge": False, "multiplier": 1.0} for m in synthetic.METHODS}
    rows[synthetic.NEO].update(acc=acc[0], acc_at_bits=at_bits[0])
    rows[synthetic.PSGD]["acc_at_bits"] = math.nan
    budgets = [100.0 * 2 ** k for k in range(len(eps))]
    one = {"rows": rows, "constants": {"d": 10, "transient": 5000.0, "delta": 0.1, "R": 4}, "bits_equal": 1e4,
           "budgets": budgets, "lower_bound": list(lb)[:len(eps)],
           "eps": {m: list(eps) if m == synthetic.NEO else [2 * e for e in eps] for m in synthetic.METHODS}}
    return data_results("neolithic-synthetic", {"ls": one, "logreg": one})


def test_neolithic_synthetic_held():
    claims = synthetic.check(_synthetic((1.5e-3, 1e-3), (1.0, 2.0), (2.0, 1.0, 0.5)))
    assert held(claims) == [True, True, True] * 2 and all(measured(claims))


def test_neolithic_synthetic_not_held():
    claims = synthetic.check(_synthetic((2.5e-3, 1e-3), (1.0, 0.5), (2.0, 1.5, 1.2)))
    assert held(claims) == [False, False, False] * 2 and all(measured(claims)) and _reasons(claims)


def test_neolithic_synthetic_unmeasurable():
    inf = math.inf
    claims = synthetic.check(_synthetic((1e-3, inf), (inf, inf), (2.0,)))  # P-SGD diverged; one budget only
    assert held(claims) == [False] * 6 and measured(claims) == [False] * 6
    assert "no reference" in claims[0].unmeasurable and "not measured" in claims[1].unmeasurable
    assert "two or more" in claims[2].unmeasurable


def test_synthetic_unmeasurable_helpers():
    assert synthetic.match_unmeasurable(1.0, 0.0) and synthetic.match_unmeasurable(math.nan, 1.0)
    assert not synthetic.match_unmeasurable(math.inf, 1.0)  # NEOLITHIC diverged: measured, not held
    assert synthetic.lower_bound_unmeasurable([1.0, 2.0], [1.0, math.nan], [1.0, 0.5])
    assert not synthetic.lower_bound_unmeasurable([1.0, 2.0], [1.0, 0.5], [1.0, 0.5])


# ----------------------------------------------------------------------------- neolithic-images
def _images(**acc):
    """Accuracies (fractions, per seed) per method, the same in every setting unless given as 'NEO@top-k 1%'."""
    base = {images.PSGD: [0.95, 0.96, 0.94], images.MEM: [0.94, 0.945, 0.935], images.DS: [0.93, 0.935, 0.925],
            images.EF21: [0.80, 0.82, 0.78], images.QSGD: [0.85, 0.86, 0.84], images.NEO: [0.95, 0.955, 0.945]}
    table = {}
    for setting, row in images.PAPER.items():
        table[setting] = {m: images._stats(acc.get(m, base[m])) for m in row}
    return data_results("neolithic-images", {"table": table})


def test_neolithic_images_held():
    claims = images.check(_images(**{images.NEO: [0.95, 0.955, 0.20]}))  # one broken seed: the median decides
    assert len(claims) == 8 and all(held(claims)) and all(measured(claims))


def test_neolithic_images_not_held():
    claims = images.check(_images(**{images.NEO: [0.90, 0.90, 0.90], images.EF21: [0.99, 0.99, 0.99],
                                     images.QSGD: [0.99, 0.99, 0.99]}))
    assert not any(held(claims)) and all(measured(claims)) and _reasons(claims)


def test_neolithic_images_unmeasurable():
    claims = images.check(_images(**{m: [0.9] for m in (images.PSGD, images.MEM, images.DS, images.EF21,
                                                       images.QSGD)}, **{images.NEO: [0.91]}))
    within = [c for c in claims if "within one std" in c.claim]
    assert within and all(not c.held and "two or more" in c.unmeasurable for c in within)  # one seed: no std
    claims = images.check(_images(**{images.NEO: [math.nan, 0.9, 0.9]}))
    assert not any(held(claims)) and not any(measured(claims))


# ----------------------------------------------------------------------------- kashin (cases in test_kashin_claims.py)
def test_kashin_held():
    from tests.reproductions.test_kashin_claims import test_all_held_on_good_numbers

    test_all_held_on_good_numbers()


def test_kashin_not_held():
    from tests.reproductions.test_kashin_claims import _bad, _claims

    claims = _claims(_bad(("kashin", "1024", "levels"), [3.0, 5.5]))
    assert held(claims) == [True, False, True, True, True] and all(measured(claims))


def test_kashin_unmeasurable():
    from tests.reproductions.test_kashin_claims import GOOD, _claims

    claims = _claims({**GOOD, "spherical": {}, "topk": {}})
    assert held(claims)[3:] == [False, False] and not any(measured(claims)[3:])
