"""The fast Walsh-Hadamard transform and the random rotations of DRIVE/EDEN (spec §11.1)."""

import math

import pytest
import torch

from commpress.compressors._hadamard import _fwht_butterfly, _plan, fwht, hadamard_matrix
from commpress.compressors._rotation import draw_rotation, haar, padded_dim, rademacher

from ._stats import zscore


@pytest.mark.parametrize("bits", list(range(0, 11)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_fwht_is_the_dense_sylvester_transform(bits, dtype):
    X = torch.randn(3, 1 << bits, generator=torch.Generator().manual_seed(bits), dtype=torch.float64)
    H = hadamard_matrix(bits)
    ref = X @ H
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    scale = max(1.0, float(ref.abs().max()))
    assert (fwht(X.to(dtype)).double() - ref).abs().max() <= tol * scale * (bits + 1)
    assert (_fwht_butterfly(X.to(dtype)).double() - ref).abs().max() <= tol * scale * (bits + 1)
    assert sum(_plan(bits)) == bits


@pytest.mark.parametrize("bits", [11, 13, 16])
def test_fwht_matches_the_butterfly_at_larger_sizes(bits):
    X = torch.randn(2, 1 << bits, generator=torch.Generator().manual_seed(bits), dtype=torch.float64)
    torch.testing.assert_close(fwht(X), _fwht_butterfly(X), rtol=1e-12, atol=1e-9)


def test_sylvester_matrix_recursion_and_orthogonality():
    H1 = hadamard_matrix(1)
    assert torch.equal(H1, torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64))
    H3 = hadamard_matrix(3)
    H2 = hadamard_matrix(2)
    assert torch.equal(H3, torch.cat([torch.cat([H2, H2], 1), torch.cat([H2, -H2], 1)], 0))
    assert torch.equal(H3 @ H3, 8 * torch.eye(8, dtype=torch.float64))


def test_normalized_fwht_is_orthogonal_and_self_inverse():
    X = torch.randn(4, 1024, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    Y = fwht(X, normalized=True)
    torch.testing.assert_close(Y.norm(dim=1), X.norm(dim=1), rtol=1e-12, atol=0)
    torch.testing.assert_close(fwht(Y, normalized=True), X, rtol=1e-12, atol=1e-12)


def test_fwht_leaves_input_alone_or_ping_pongs_in_place():
    X = torch.randn(2, 256, dtype=torch.float64)
    keep = X.clone()
    ref = X @ hadamard_matrix(8)
    out = fwht(X)
    assert torch.equal(X, keep) and out.data_ptr() != X.data_ptr()
    scratch = torch.empty_like(X)
    out = fwht(X, inplace=True, scratch=scratch)
    assert out.data_ptr() in (X.data_ptr(), scratch.data_ptr())
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.zeros(2, 12))


@pytest.mark.parametrize("d", [1, 2, 3, 5, 37, 64, 100])
@pytest.mark.parametrize("kind", ["hadamard", "haar"])
@pytest.mark.parametrize("shared", [False, True])
def test_rotation_is_orthogonal_and_inverted_exactly(d, kind, shared):
    n = 5
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    rot = draw_rotation(kind, 7, "test/rot", n, d, None, shared=shared, dtype=torch.float64, device=torch.device("cpu"))
    assert rot.dim == (d if kind == "haar" else padded_dim(d))
    Y, spare = rot.forward_raw(X)
    assert Y.shape == (n, rot.dim)
    torch.testing.assert_close(Y.norm(dim=1) / rot.gain, X.norm(dim=1), rtol=1e-12, atol=1e-12)
    back = rot.inverse_raw(Y.clone() / rot.gain**2)
    torch.testing.assert_close(back, X, rtol=1e-10, atol=1e-12)
    if shared and d > 1:  # one rotation: identical rows rotate identically
        Y2, _ = rot.forward_raw(X[:1].expand(n, d).contiguous())
        assert torch.equal(Y2, Y2[:1].expand_as(Y2))


def test_hadamard_rotation_matches_the_dense_formula():
    n, d = 3, 11
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rot = draw_rotation("hadamard", 3, "test/rot", n, d, None, shared=False, dtype=torch.float64,
                        device=torch.device("cpu"))
    eps = rademacher(3, "test/rot", n, 16, None, shared=False, dtype=torch.float64)
    Xp = torch.nn.functional.pad(X, (0, 16 - d))
    expected = (Xp * eps) @ hadamard_matrix(4) / 4.0  # R(x') = H D x' / sqrt(d')
    Y, _ = rot.forward_raw(X)
    torch.testing.assert_close(Y / rot.gain, expected, rtol=1e-12, atol=1e-12)


def test_private_rotations_are_keyed_by_client_not_row():
    n, d = 6, 40
    full = rademacher(9, "t", n, 64, None, shared=False, dtype=torch.float32)
    rows = torch.tensor([4, 1])
    assert torch.equal(rademacher(9, "t", n, 64, rows, shared=False, dtype=torch.float32), full[rows])
    Qfull = haar(9, "t", n, 4, None, shared=False)
    assert torch.equal(haar(9, "t", n, 4, rows, shared=False), Qfull[rows])
    assert not torch.equal(full[0], full[1])


def test_rademacher_signs_are_fair_and_independent_of_position():
    signs = rademacher(1, "t", 64, 4096, None, shared=False, dtype=torch.float64)
    assert set(signs.unique().tolist()) == {-1.0, 1.0}
    # mean of each client's block of 64 coordinates (one random word), z-tested over the clients
    per_coord = signs.reshape(64, 64, 64).mean(dim=2)
    assert zscore(per_coord, 0.0).abs().max() <= 5
    lag = (signs[:, 1:] * signs[:, :-1]).mean()  # neighbouring bits uncorrelated
    assert abs(lag.item()) <= 5 / math.sqrt(64 * 4095)


def test_haar_matrices_are_orthogonal_and_haar_distributed():
    T, d = 20_000, 3
    Q = haar(2, "t", T, d, None, shared=False)
    eye = torch.eye(d, dtype=torch.float64).expand(T, d, d)
    torch.testing.assert_close(Q.transpose(-1, -2) @ Q, eye, rtol=0, atol=1e-12)
    # Haar: every entry has mean 0 and E Q_ij^2 = 1/d; plain QR (no sign fix) fails the mean test
    entries = Q.reshape(T, d * d)
    assert zscore(entries, 0.0).abs().max() <= 5
    assert zscore(entries**2, 1.0 / d).abs().max() <= 5
    G = torch.randn(T, d, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    plain = torch.linalg.qr(G).Q.reshape(T, d * d)
    assert zscore(plain, 0.0).abs().max() > 5  # negative control: the sign fix matters
