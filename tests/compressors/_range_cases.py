"""IQ and CQ with ``range="minmax"`` and ``range="fixed"`` (spec compressors.md §7, §8.2).

Shared by ``test_iq.py`` and ``test_cq.py``: the two differ only in their thresholds, so the
decoder (levels -> lo + (hi - lo) * level / s), the clipping and the marginal law of one client
are the same, and one set of checks pins both.

Monte-Carlo layout (:func:`tiled_batch`): row i is a pattern p_i of K values repeated R times.
For a fixed client, the thresholds of different coordinates are i.i.d. U[0, 1) for IQ (private
uniforms) and for CQ (``frac((gamma_ij + sigma_i + h_j) / n)`` with i.i.d. shifts h_j and private
gamma_ij), and the range depends only on the row's values, which are the same in every repeat.
So the R repeats of a pattern value are i.i.d. samples of that client's output, from one call.
"""

from __future__ import annotations

import struct

import torch

import commpress as cp
from commpress.compressors.base import f32_up

RANGES = ("minmax", "fixed")


def fixed_bounds(levels: int) -> tuple[float, float]:
    """A fixed range whose grid step 0.5 and scale s / (r - l) = 2 are exact in binary."""
    return -0.5, -0.5 + 0.5 * levels


def make(name: str, range: str, levels: int):
    kw: dict = {"levels": levels, "range": range}
    if range == "fixed":
        kw["low"], kw["high"] = fixed_bounds(levels)
    return cp.compressors.make(name, **kw)


def row_bounds(C, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (lo, hi) the decoder must use for each row of X, as (rows, 1) tensors (spec §7)."""
    rows = X.shape[0]
    if C.range == "minmax":  # float32 headers, rounded outward so that they contain the row
        return -f32_up(-X.amin(1, keepdim=True)).to(X.dtype), f32_up(X.amax(1, keepdim=True)).to(X.dtype)
    return torch.full((rows, 1), C.low, dtype=X.dtype), torch.full((rows, 1), C.high, dtype=X.dtype)


# ---------------------------------------------------------------------- exactness on the grid
def grid_batch(C, rows: int = 6, d: int = 14, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, expected): every value on a grid point of its row's range, so the output is exactly X.

    minmax: row i spans [lo_i, lo_i + 0.25 s] (lo_i = -0.5 + 0.125 i), step 0.25, the row's min
    and max present. fixed: the grid of :func:`fixed_bounds`, plus one value below ``low`` and
    one above ``high``, which are clipped to ``low`` and ``high`` exactly.
    """
    s = C.levels
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, s + 1, (rows, d), generator=g)
    k[:, 0], k[:, 1] = 0, s  # the ends of the range in every row
    if C.range == "minmax":
        lo = -0.5 + 0.125 * torch.arange(rows, dtype=torch.float64).unsqueeze(1)
        X = lo + 0.25 * k.double()
        return X, X.clone()
    X = C.low + 0.5 * k.double()
    expected = X.clone()
    X[:, 2], expected[:, 2] = C.low - 0.75, C.low  # clipped (spec §7: clipping biases, by design)
    X[:, 3], expected[:, 3] = C.high + 2.0, C.high
    return X, expected


# ---------------------------------------------------------------------- Monte-Carlo batches
def tiled_batch(C, n: int, R: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(X, P, lo, hi): X = (n, K R), row i the pattern P[i] (K values, asymmetric in the range,
    none on a grid point unless it is an end) repeated R times; lo, hi the rows' (n, 1) bounds."""
    frac = torch.tensor([0.0, 1.0, 0.07, 0.31, 0.58, 0.83, 0.96], dtype=torch.float64)  # of the range
    if C.range == "minmax":  # dyadic ends: the row's min and max are lo and hi exactly
        lo = -1.0 + 0.25 * torch.arange(n, dtype=torch.float64).unsqueeze(1)
        hi = lo + 0.5 + 0.25 * torch.arange(n, dtype=torch.float64).unsqueeze(1)
        P = lo + (hi - lo) * frac
    else:
        lo = torch.full((n, 1), C.low, dtype=torch.float64)
        hi = torch.full((n, 1), C.high, dtype=torch.float64)
        P = lo + (hi - lo) * frac
        P[:, 0] = C.low - 0.3  # outside: clipped to low / high
        P[:, 1] = C.high + 0.4
    X = P.repeat(1, R)
    lo, hi = row_bounds(C, X)
    return X, P, lo, hi


def expected_moments(C, P: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E Q(x) and E (Q(x) - E Q(x))^2 per entry of P (spec §7): the clipped value and
    ((r - l) / s)^2 t (1 - t) with t = s u - min(floor(s u), s - 1)."""
    s = C.levels
    target = torch.minimum(torch.maximum(P, lo), hi)
    su = ((target - lo) / (hi - lo) * s).clamp(0, s)
    t = su - su.floor().clamp(max=s - 1)
    return target, ((hi - lo) / s) ** 2 * t * (1 - t)


def per_client_samples(C, n: int, R: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(out, mean, var): out = (R, n K) i.i.d. rows of each client's outputs, with their exact
    mean and variance (n K,)."""
    X, P, lo, hi = tiled_batch(C, n, R)
    X_hat, _ = C.apply(X, seed)
    K = P.shape[1]
    out = X_hat.reshape(n, R, K).transpose(0, 1).reshape(R, n * K)
    mean, var = expected_moments(C, P, lo, hi)
    return out, mean.reshape(-1), var.reshape(-1)


# ---------------------------------------------------------------------- hand-built payloads
def hand_built_cases(name: str) -> list:
    """(compressor, payloads, expected rows): payloads written byte by byte from the wire format
    of spec §7 (float32 little-endian headers lo then hi, then d levels of ceil(log2(s+1)) bits,
    most significant bit first, zero-padded to a byte)."""
    f = lambda *v: struct.pack("<" + "f" * len(v), *v)  # noqa: E731
    mm1, mm3 = make(name, "minmax", 1), make(name, "minmax", 3)
    fx1, fx3 = make(name, "fixed", 1), make(name, "fixed", 3)
    lo1, hi1 = fixed_bounds(1)  # (-0.5, 0.0)
    return [
        # minmax, 1 bit: two rows with their own headers; bit 1 -> hi, bit 0 -> lo
        (mm1, [f(-2.0, 3.0) + bytes([0b10110010]), f(0.25, 0.5) + bytes([0b01000001])],
         [[3.0, -2.0, 3.0, 3.0, -2.0, -2.0, 3.0, -2.0], [0.25, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.5]]),
        # minmax, s = 3 (2-bit levels 3 0 1 2 0), range [-1, 0.5], step 0.5
        (mm3, [f(-1.0, 0.5) + bytes([0b11000110, 0b00000000])], [[0.5, -1.0, -0.5, 0.0, -1.0]]),
        # fixed [-0.5, 0], 1 bit: no header at all
        (fx1, [bytes([0b01100001])], [[lo1, hi1, hi1, lo1, lo1, lo1, lo1, hi1]]),
        # fixed [-0.5, 1.0], s = 3 (levels 2 3 0 1 3)
        (fx3, [bytes([0b10110001, 0b11000000])], [[0.5, 1.0, -0.5, 0.0, 1.0]]),
    ]


# ---------------------------------------------------------------- checks shared by IQ and CQ
def check_grid_values_sent_exactly(C) -> None:
    """lo, hi and the grid points between come back exactly for every seed (a lo/hi swap fails)."""
    X, expected = grid_batch(C)
    for seed in range(4):
        X_hat, _ = C.apply(X, seed)
        assert torch.equal(X_hat, expected), f"seed {seed}: {X_hat} != {expected}"
        assert torch.equal(C.decode(C.encode(X, seed), seed, X.shape[1], dtype=X.dtype), expected)


def check_unbiased_with_exact_variance(C, n: int, assert_mean) -> None:
    """Each client: E Q(x) = x (clipped) and Var Q(x) = ((r-l)/s)^2 t(1-t), z-tests over R repeats."""
    out, mean, var = per_client_samples(C, n=n, R=20_000, seed=5)
    sure = var == 0  # the range's ends and the clipped values
    assert sure.any() and (~sure).sum() >= 4 * n
    assert torch.equal(out[:, sure], mean[sure].expand(out.shape[0], -1))
    assert_mean(out[:, ~sure], mean[~sure])
    assert_mean((out[:, ~sure] - mean[~sure]).pow(2), var[~sure])


def check_output_on_the_grid(C, levels: int) -> None:
    """The output lies in [lo, hi], on one of the s + 1 grid points, next to the (clipped) input."""
    X = 1.5 * torch.randn(5, 40, generator=torch.Generator().manual_seed(levels), dtype=torch.float64)
    lo, hi = row_bounds(C, X)
    for seed in range(3):
        X_hat, _ = C.apply(X, seed)
        assert (X_hat >= lo).all() and (X_hat <= hi).all()
        k = (X_hat - lo) / ((hi - lo) / levels)
        assert (k - k.round()).abs().max() < 1e-9
        pos = (torch.minimum(torch.maximum(X, lo), hi) - lo) / ((hi - lo) / levels)
        assert ((k.round() - pos).abs() < 1 + 1e-9).all()


def check_hand_built_payload(name: str, case: int, payload_error: type) -> None:
    """Bytes written by hand decode to the expected rows, the encoder writes exactly them, and a
    minmax header with lo > hi (the two floats swapped) is refused as corrupt."""
    C, payloads, rows = hand_built_cases(name)[case]
    expected = torch.tensor(rows, dtype=torch.float64)
    d = expected.shape[1]
    assert torch.equal(C.decode(payloads, 3, d, dtype=torch.float64), expected)
    assert C.encode(expected, 3) == payloads
    if C.range == "minmax":
        import pytest

        with pytest.raises(payload_error, match="lo > hi"):
            C.decode([p[4:8] + p[:4] + p[8:] for p in payloads], 3, d, dtype=torch.float64)
