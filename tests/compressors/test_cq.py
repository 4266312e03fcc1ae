"""CQ against its closed forms (spec compressors.md §8.4) and against IQ."""

import pytest
import torch

import commpress as cp
from commpress._rng import private_rand, shared_generator
from commpress.compressors.base import f32_up
from commpress.compressors.cq import CQ, stratified_thresholds_
from commpress.errors import PayloadError

from . import _range_cases as RC
from ._stats import assert_mean, zscore


def _phi(t):
    f = t - t.floor()
    return f * (1 - f)


def _mean_errors(C, X, T):
    """||mean_i X_hat_i - mean_i X_i||^2 over T seeds."""
    xbar = X.mean(0)
    return torch.stack([(C.apply(X, s)[0].mean(0) - xbar).pow(2).sum() for s in range(T)])


def _c_n(a, b, n):
    """Cov(1{U_i<a}, 1{U_k<b}) for i != k under CQ's stratified thresholds (spec §8.4)."""
    G = torch.zeros_like(a)
    for p in range(n):
        G = G + (n * a - p).clamp(0, 1) * (n * b - p).clamp(0, 1)
    return (n * a * b - G) / (n * (n - 1))


def exact_cq_mse(X):
    """Exact one-bit CQ mean-squared error for arbitrary inputs (spec §8.4)."""
    n, d = X.shape
    rho = f32_up(X.norm(dim=1, keepdim=True)).double()
    w = 2 * rho  # (n, 1)
    u = torch.where(w > 0, (X + rho) / torch.where(w > 0, w, 1), torch.zeros_like(X))
    total = (w**2 * u * (1 - u)).sum()
    for i in range(n):
        for k in range(n):
            if i != k:
                total = total + (w[i] * w[k] * _c_n(u[i], u[k], n)).sum()
    return (total / n**2).item()


def test_cq_rows_are_individually_unbiased():
    n, d, T = 5, 8, 6000
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    C = cp.compressors.make("cq")
    samples = torch.stack([C.apply(X, s)[0] for s in range(T)])  # (T, n, d)
    assert_mean(samples.reshape(T, -1), X.reshape(-1))


def test_cq_homogeneous_mse_matches_theorem_1_closed_form():
    n, d, T = 6, 10, 6000
    x = torch.linspace(-0.3, 1.0, d, dtype=torch.float64)
    X = x.expand(n, d).contiguous()
    rho = f32_up(x.norm().reshape(1)).double().item()
    exact = (4 * rho**2 / n**2) * _phi(n * (x + rho) / (2 * rho)).sum().item()
    errs = _mean_errors(cp.compressors.make("cq"), X, T)
    assert abs(zscore(errs, exact).item()) <= 5
    assert exact <= d * x.pow(2).sum().item() / n**2


def test_cq_worked_example_from_the_spec():
    # n = 2, d = 4, x_i = (1/2, 1/2, 1/2, 1/2): CQ MSE = 1, IQ MSE = 1.5 (spec §18)
    X = torch.full((2, 4), 0.5, dtype=torch.float64)
    assert exact_cq_mse(X) == pytest.approx(1.0)
    T = 8000
    assert abs(zscore(_mean_errors(cp.compressors.make("cq"), X, T), 1.0).item()) <= 5
    assert abs(zscore(_mean_errors(cp.compressors.make("iq"), X, T), 1.5).item()) <= 5


def test_cq_heterogeneous_mse_matches_pairwise_covariance_formula():
    n, d, T = 4, 6, 8000
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    X[2] *= 3.0
    errs = _mean_errors(cp.compressors.make("cq"), X, T)
    assert abs(zscore(errs, exact_cq_mse(X)).item()) <= 5


def test_cq_is_about_n_times_better_than_iq_on_identical_vectors():
    n, d, T = 8, 32, 3000
    x = torch.randn(d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    X = x.expand(n, d).contiguous()
    cq = _mean_errors(cp.compressors.make("cq"), X, T).mean().item()
    iq = _mean_errors(cp.compressors.make("iq"), X, T).mean().item()
    rho = f32_up(x.norm().reshape(1)).double().item()
    iq_exact = (d * rho**2 - x.pow(2).sum().item()) / n
    assert iq == pytest.approx(iq_exact, rel=0.1)
    assert iq / cq > n / 2  # Thm. 1 vs Prop. 3: a factor of about n
    # the correlation never hurts: CQ's MSE <= IQ's on every input (Chebyshev sum inequality)
    assert exact_cq_mse(X) <= iq_exact


# ---------------------------------------------------------------------- n = 1: CQ is IQ
class _CommonThresholdCQ(CQ):
    """Negative control: one threshold per client shared by all its coordinates. Each coordinate's
    marginal law is IQ's, the joint law across coordinates is not."""

    def _thresholds(self, ctx):
        return private_rand(ctx.seed, "control/u", ctx.n, (1,), None, dtype=ctx.dtype).expand(ctx.n, ctx.d)


class _SkewedCQ(CQ):
    """Negative control: thresholds U^2 instead of U (rounds up too often)."""

    def _thresholds(self, ctx):
        return super()._thresholds(ctx).square()


N1_PATTERN = torch.tensor([0.9, -0.25, 0.4, -0.8, 0.05, 0.6], dtype=torch.float64)


def _round_ups_of_one_client(C, S: int = 150, R: int = 32):
    """One client, x = N1_PATTERN repeated R times (K = 6 values), seeds 0..S-1.

    Returns (up, t): up = (S R, K) 0/1 round-up indicators (level - m), rows i.i.d.; t = (K,)
    the IQ probability of rounding up (spec §7). Also checks that every output is one of the two
    grid points next to x, which with P(up) = t is IQ's whole marginal law.
    """
    K, s = N1_PATTERN.numel(), C.levels
    x = N1_PATTERN.repeat(R)
    rho = f32_up(x.norm().reshape(1)).double()
    su = (N1_PATTERN + rho) / (2 * rho) * s
    m = su.floor().clamp(max=s - 1)
    ups = []
    for seed in range(S):
        X_hat, _ = C.apply(x[None], seed)
        level = (X_hat[0] + rho) / (2 * rho) * s
        assert (level - level.round()).abs().max() < 1e-9
        up = level.round().reshape(R, K) - m
        assert ((up == 0) | (up == 1)).all()
        ups.append(up)
    return torch.cat(ups), su - m


def _assert_iq_law(up, t):
    """IQ's law for one client: independent coordinates, P(up_j) = t_j. Checked on the marginals
    and on every pair of pattern positions, P(up_a up_b) = t_a t_b (z-tests, sample variance)."""
    assert_mean(up, t)
    a, b = torch.triu_indices(t.numel(), t.numel(), offset=1)
    assert_mean(up[:, a] * up[:, b], t[a] * t[b])


@pytest.mark.parametrize("levels", [1, 3])
def test_cq_with_one_client_has_the_iq_distribution(levels):
    # n = 1: the stratum is [0, 1), so U = gamma and CQ must be IQ in law (spec §8.4 Edge)
    up_cq, t = _round_ups_of_one_client(cp.compressors.make("cq", levels=levels))
    assert ((t > 0.05) & (t < 0.95)).all()  # every coordinate really random
    _assert_iq_law(up_cq, t)
    up_iq, _ = _round_ups_of_one_client(cp.compressors.make("iq", levels=levels))
    _assert_iq_law(up_iq, t)  # IQ itself, through the same check
    # and the two samples agree with each other (two-sample z on the round-up frequencies)
    diff = up_cq.mean(0) - up_iq.mean(0)
    se = (up_cq.var(0) / up_cq.shape[0] + up_iq.var(0) / up_iq.shape[0]).sqrt()
    assert (diff / se).abs().max() <= 5


def test_negative_control_the_n1_law_check_rejects_other_laws():
    # coordinates dependent, marginals right (checked on one repeat per seed, the i.i.d. unit
    # here): the law check fails
    S, R, K = 150, 32, N1_PATTERN.numel()
    up, t = _round_ups_of_one_client(_CommonThresholdCQ(levels=3), S, R)
    assert_mean(up.reshape(S, R, K)[:, 0], t)
    with pytest.raises(AssertionError):
        _assert_iq_law(up, t)
    # biased marginals: the marginal check fails
    up, t = _round_ups_of_one_client(_SkewedCQ(levels=3))
    with pytest.raises(AssertionError):
        _assert_iq_law(up, t)


def test_cq_d1_is_exact():
    X = torch.tensor([[0.3], [-1.7], [0.0], [2.5]], dtype=torch.float64)
    for n in (1, 4):
        for seed in range(3):
            X_hat, _ = cp.compressors.make("cq", levels=3).apply(X[:n], seed)
            assert torch.allclose(X_hat, X[:n], rtol=1e-6, atol=0)


# ---------------------------------------------------------------------- levels > 1: the error of the mean
class _IndependentShiftCQ(CQ):
    """Negative control: CQ with a private shift h_ij per client instead of the shared h_j, so the
    clients' thresholds of a coordinate no longer fall one per stratum (independent, as IQ)."""

    def _thresholds(self, ctx):
        n, d = ctx.n, ctx.d
        sigma = torch.randperm(n, generator=shared_generator(ctx.seed, "control/sigma")).to(ctx.dtype)
        shift = private_rand(ctx.seed, "control/shift", n, (d,), None, dtype=ctx.dtype).mul_(n).floor_()
        gamma = private_rand(ctx.seed, "control/gamma", n, (d,), None, dtype=ctx.dtype)
        return stratified_thresholds_(gamma, sigma, shift, n)


LEVEL_PATTERN = torch.tensor([2.0, -0.3, 0.45, -1.1, 0.8, 0.1, -0.7], dtype=torch.float64)


def _grid(C, x):
    """(lo, hi, s) of a row x: [-rho, rho] for the norm range, [low, high] for the fixed one."""
    if C.range == "norm":
        rho = f32_up(x.norm().reshape(1)).double().item()
        return -rho, rho, C.levels
    return C.low, C.high, C.levels


def _t(p, lo, hi, s):
    su = ((p.clamp(lo, hi) - lo) / (hi - lo) * s).clamp(0, s)
    return su - su.floor().clamp(max=s - 1)


def _homogeneous_mean_errors(C, n, S, R):
    """x = LEVEL_PATTERN repeated R times on all n clients; seeds 0..S-1.

    Returns (S R, K) squared errors of the mean per coordinate. With identical rows the error of
    coordinate j depends only on gamma of the client in stratum floor(n t_j), so the R repeats are
    i.i.d. (and the range is the same in every call): the rows are i.i.d. samples.
    """
    K = LEVEL_PATTERN.numel()
    x = LEVEL_PATTERN.repeat(R)
    X = x.expand(n, -1).contiguous()
    return torch.cat([(C.apply(X, seed)[0].mean(0) - x).pow(2).reshape(R, K) for seed in range(S)])


def _homogeneous_exact(C, n, R):
    """Per pattern value: CQ's exact E||mean - x||^2 (spec §8.4, Thm. 1 with s intervals),
    ((r-l)/s)^2 phi(n t)/n^2, and IQ's ((r-l)/s)^2 t(1-t)/n (Prop. 3)."""
    lo, hi, s = _grid(C, LEVEL_PATTERN.repeat(R))
    t = _t(LEVEL_PATTERN, lo, hi, s)
    w2 = ((hi - lo) / s) ** 2
    return w2 * _phi(n * t) / n**2, w2 * t * (1 - t) / n


@pytest.mark.parametrize("levels", [3, 7])
@pytest.mark.parametrize("range_", ["norm", "fixed"])
def test_cq_multilevel_homogeneous_mse_matches_the_closed_form(range_, levels):
    n, S, R = 5, 60, 8
    kw = {"low": -1.3, "high": 2.6} if range_ == "fixed" else {}
    C = cp.compressors.make("cq", levels=levels, range=range_, **kw)
    errs = _homogeneous_mean_errors(C, n, S, R)
    cq_exact, iq_exact = _homogeneous_exact(C, n, R)
    assert (cq_exact > 0.05 * cq_exact.max()).all()  # no coordinate (nearly) surely exact
    assert_mean(errs, cq_exact)
    assert (cq_exact <= iq_exact).all()  # correlation never hurts (spec §8.4)
    if range_ == "norm":  # the spec's bound: sum_j <= d ||x||^2 / (s^2 n^2)
        x = LEVEL_PATTERN.repeat(R)
        rho2 = f32_up(x.norm().reshape(1)).double().item() ** 2
        assert R * cq_exact.sum().item() <= x.numel() * rho2 / (levels**2 * n**2)


def test_negative_control_the_multilevel_cq_check_rejects_iq_and_independent_shifts():
    n, S, R, levels = 5, 60, 8, 3
    cq_exact, iq_exact = _homogeneous_exact(cp.compressors.make("cq", levels=levels), n, R)
    iq = _homogeneous_mean_errors(cp.compressors.make("iq", levels=levels), n, S, R)
    assert_mean(iq, iq_exact)  # IQ matches its own closed form ...
    with pytest.raises(AssertionError):
        assert_mean(iq, cq_exact)  # ... and fails CQ's
    independent = _homogeneous_mean_errors(_IndependentShiftCQ(levels=levels), n, S, R)
    with pytest.raises(AssertionError):
        assert_mean(independent, cq_exact)


def _heterogeneous_case(R):
    n = 3
    P = torch.tensor([[1.2, -0.4, 0.3, -0.9, 0.65, 0.1],
                      [-0.2, 0.8, 0.5, 0.35, -1.0, 0.7],
                      [2.0, 1.1, -1.3, 0.2, 0.45, -0.6]], dtype=torch.float64)
    return n, P, P.repeat(1, R)


def _heterogeneous_exact(P, X, s):
    """Exact CQ and IQ E(mean_i Q_i - mean_i x_i)^2 per pattern column (spec §8.4, multi-level:
    w_i -> w_i / s, u_ij -> t_ij; IQ keeps only the diagonal terms)."""
    n = P.shape[0]
    rho = f32_up(X.norm(dim=1, keepdim=True)).double()
    w = 2 * rho / s  # (n, 1)
    t = _t(P, -rho, rho, s)
    diag = (w**2 * t * (1 - t)).sum(0)
    cross = torch.zeros_like(diag)
    for i in range(n):
        for k in range(n):
            if i != k:
                cross = cross + w[i] * w[k] * _c_n(t[i], t[k], n)
    return (diag + cross) / n**2, diag / n**2


def _heterogeneous_mean_errors(C, X, K, S, R):
    """(S, K): per seed, the squared error of the mean averaged over the R repeats of each pattern
    column. Given the shared sigma the repeats are not distributed as one fresh draw (for n >= 3 the
    shifts (sigma + h_j) mod n reach only n of the n! orders), so the seed is the i.i.d. unit."""
    xbar = X.mean(0)
    return torch.stack([(C.apply(X, seed)[0].mean(0) - xbar).pow(2).reshape(R, K).mean(0) for seed in range(S)])


@pytest.mark.parametrize("levels", [3, 7])
def test_cq_multilevel_heterogeneous_mse_matches_the_pairwise_formula(levels):
    R, S = 8, 400
    n, P, X = _heterogeneous_case(R)
    cq_exact, iq_exact = _heterogeneous_exact(P, X, levels)
    errs = _heterogeneous_mean_errors(cp.compressors.make("cq", levels=levels), X, P.shape[1], S, R)
    assert_mean(errs, cq_exact)
    assert (cq_exact <= iq_exact + 1e-15).all()


def test_negative_control_the_heterogeneous_check_rejects_iq_and_independent_shifts():
    R, S, levels = 8, 400, 3
    n, P, X = _heterogeneous_case(R)
    cq_exact, iq_exact = _heterogeneous_exact(P, X, levels)
    iq = _heterogeneous_mean_errors(cp.compressors.make("iq", levels=levels), X, P.shape[1], S, R)
    assert_mean(iq, iq_exact)
    with pytest.raises(AssertionError):
        assert_mean(iq, cq_exact)
    independent = _heterogeneous_mean_errors(_IndependentShiftCQ(levels=levels), X, P.shape[1], S, R)
    with pytest.raises(AssertionError):
        assert_mean(independent, cq_exact)


# ---------------------------------------------------------------------- range="minmax" / "fixed"
@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("range_", RC.RANGES)
def test_cq_values_on_the_grid_of_the_range_are_sent_exactly(range_, levels):
    # a decoder that swaps lo and hi fails here
    RC.check_grid_values_sent_exactly(RC.make("cq", range_, levels))


@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("range_", RC.RANGES)
def test_cq_rows_are_unbiased_with_iq_variance_on_minmax_and_fixed_ranges(range_, levels):
    RC.check_unbiased_with_exact_variance(RC.make("cq", range_, levels), 4, assert_mean)


@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("range_", RC.RANGES)
def test_cq_output_lies_on_the_grid_of_its_range(range_, levels):
    RC.check_output_on_the_grid(RC.make("cq", range_, levels), levels)


@pytest.mark.parametrize("case", range(4), ids=["minmax-1bit", "minmax-s3", "fixed-1bit", "fixed-s3"])
def test_cq_decodes_a_hand_built_payload(case):
    RC.check_hand_built_payload("cq", case, PayloadError)


def test_cq_theory_constants():
    t = cp.compressors.make("cq").theory(10, 100)
    assert t.kind == "correlated" and t.omega == 99 and t.A == pytest.approx(9.9)
    assert t.extras["A_homogeneous"] == pytest.approx(1.0) and t.extras["A_paper"] == pytest.approx(0.25)
