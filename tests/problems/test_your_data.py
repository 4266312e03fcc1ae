"""Your data: ``data=(A, b)`` (NumPy, SciPy sparse, torch) and ``.npz`` files, for every data-driven problem."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import commpress as cp
import commpress.datasets  # noqa: F401  (cp.datasets)
import commpress.problems  # noqa: F401  (cp.problems)
from commpress.experiments.config import check, load_config
from tests.problems._shared import need

make = cp.problems.make
LINEAR = ("logreg", "nonconvex_logreg", "least_squares")


def _arrays(m: int = 40, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, d))
    A[A < -1.0] = 0.0  # some zeros, so the sparse formats differ from the dense one
    return A, (A[:, 0] + 0.3 * rng.normal(size=m) > 0).astype(np.int64)  # labels {0, 1}


def _same(p, q) -> None:
    assert (p.n, p.d) == (q.n, q.d)
    for a, b in ((p.features, q.features), (p.targets, q.targets), (p.mask, q.mask), (p.data.rows, q.data.rows)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("split", ["contiguous", "label_skew"])
def test_arrays_give_the_problem_of_the_named_dataset(name, split):
    """The rows of splice passed as arrays: same split, same constants, same optimum as dataset="splice"."""
    need("splice")
    X, y = cp.datasets.load("splice")  # CSR (1000, 60), labels {-1, +1}
    named = make(name, dataset="splice", n_clients=7, split=split)
    mine = make(name, data=(X, y), n_clients=7, split=split)
    _same(named, mine)
    assert mine.describe()["dataset"] == "arrays" and mine.describe()["samples"] == 1000
    s, t = named.smoothness(), mine.smoothness()
    assert torch.equal(s.L_i, t.L_i) and (s.L_minus, s.L_plus, s.L_pm, s.mu) == (t.L_minus, t.L_plus, t.L_pm, t.mu)
    if name != "nonconvex_logreg":
        (f1, x1), (f2, x2) = named.optimum(), mine.optimum()
        assert f1 == f2 and torch.equal(x1, x2)
    x = torch.linspace(-0.1, 0.1, named.d, dtype=torch.float64)
    assert torch.equal(named.client_grads(x), mine.client_grads(x))


def test_every_input_format_gives_the_same_problem():
    A, b = _arrays()
    ref = make("logreg", data=(A, b), n_clients=4, split="shuffled")
    forms = [
        (sp.csr_matrix(A), b), (sp.csc_matrix(A), b), (sp.coo_matrix(A), b), (sp.csr_array(A), b),
        (torch.from_numpy(A), torch.from_numpy(b)),
        (torch.from_numpy(A).to_sparse(), torch.from_numpy(b)),
        (torch.from_numpy(A).requires_grad_(True), b.astype(bool)),         # a tensor that needs grad; bool labels
        (A, b.astype(np.float32)),                                        # float labels
        (A.tolist(), b.tolist()),                                          # array-likes
        (A, 2 * b - 1), (A, b + 1),                                        # labels ±1 and {1, 2}
    ]
    for data in forms:
        p = make("logreg", data=data, n_clients=4, split="shuffled")
        _same(ref, p)
        assert set(p.targets[p.mask].tolist()) == {-1.0, 1.0}
    ints = make("least_squares", data=(A.round().astype(np.int32), b), n_clients=4)
    assert torch.equal(ints.features[0, :10], torch.from_numpy(A[:10].round()))


def test_labels_smaller_is_minus_one_and_describe_says_which():
    A, b = _arrays()
    labels = np.where(b == 1, 7.0, 3.0)  # 3 -> -1, 7 -> +1
    p = make("logreg", data=(A, labels), n_clients=1)
    assert p.describe()["labels"] == {"-1": 3.0, "+1": 7.0}
    assert torch.equal(p.targets[0], torch.from_numpy(np.where(b == 1, 1.0, -1.0)))
    # least squares: your targets as given (even when there are two values)
    q = make("least_squares", data=(A, labels), n_clients=1)
    assert torch.equal(q.targets[0], torch.from_numpy(labels)) and "labels" not in q.describe()


def test_float32_and_a_run():
    A, b = _arrays()
    p = make("nonconvex_logreg", data=(torch.from_numpy(A).float(), b), n_clients=4, dtype="float32")
    assert p.features.dtype == torch.float32 and p.targets.dtype == torch.float32
    q = make("logreg", data=(A, b), n_clients=4, l2=0.01)
    h = cp.simulate(q, "marina", compressor="cq", iterations=30, seed=0)
    assert h.status == "max_iterations" and h.dist_sq is not None and h.grad_norm_sq[-1] < h.grad_norm_sq[0]


A0, B0 = _arrays()
NAN_A = A0.copy()
NAN_A[3, 1] = np.nan
INF_B = B0.astype(np.float64)
INF_B[5] = np.inf

BAD = [
    # (problem, params, error, message)
    ("logreg", dict(data=(A0[:, 0], B0)), cp.InputError, r"A must be a matrix of shape \(m samples, d features\); got shape \(40,\). For one feature use A.reshape\(-1, 1\)"),
    ("logreg", dict(data=(A0[:, :, None], B0)), cp.InputError, r"got shape \(40, 5, 1\)"),
    ("logreg", dict(data=(A0, B0[:, None])), cp.InputError, r"b must be a vector of shape \(m,\).*got shape \(40, 1\). Use b.reshape\(-1\)"),
    ("logreg", dict(data=(A0, B0[:-1])), cp.InputError, r"A has 40 rows \(samples\) but b has 39 entries"),
    ("logreg", dict(data=(A0[:0], B0[:0])), cp.InputError, r"A has shape \(0, 5\): no samples"),
    ("least_squares", dict(data=(A0[:, :0], B0)), cp.InputError, r"A has shape \(40, 0\): no features"),
    ("logreg", dict(data=(NAN_A, B0)), cp.InputError, r"A holds 1 non-finite values \(NaN or Inf\), the first at row 3, column 1"),
    ("logreg", dict(data=(sp.csr_matrix(NAN_A), B0)), cp.InputError, r"the first at row 3, column 1"),
    ("least_squares", dict(data=(A0, INF_B)), cp.InputError, r"b holds 1 non-finite values.*b\[5\] = inf"),
    ("logreg", dict(data=(A0 + 1j, B0)), cp.InputError, r"A must hold real numbers.*complex128"),
    ("logreg", dict(data=(torch.from_numpy(A0 + 1j), B0)), cp.InputError, r"A must hold real numbers.*torch.complex128"),
    ("logreg", dict(data=(A0, B0.astype(str))), cp.InputError, r"b must hold real numbers.*<U"),
    ("logreg", dict(data=A0), cp.InputTypeError, r"logreg needs data=\(A, b\).*got a ndarray"),
    ("logreg", dict(data=(A0,)), cp.InputTypeError, r"got a tuple of length 1"),
    ("logreg", dict(data="my.svm"), cp.InputTypeError, r"For a file pass dataset='path' instead"),
    ("logreg", dict(data=(A0, np.ones(40))), cp.ConfigError, r"logreg needs a binary dataset \(two label values\); b in data=\(A, b\) has 1 \(\[1.0\]\)\. Pass b with two distinct values"),
    ("nonconvex_logreg", dict(data=(A0, np.arange(40) % 3)), cp.ConfigError, r"has 3 \(\[0.0, 1.0, 2.0\]\)"),
    ("logreg", dict(data=(A0, B0), n_clients=41), cp.ConfigError, r"n_clients=41 exceeds the number of samples N=40.*Use n_clients <= 40"),
    ("logreg", dict(data=(A0, B0), dataset="splice"), cp.ConfigError, r"takes dataset= \(a name or a path\) or data=\(A, b\) \(arrays\), not both"),
    ("least_squares", dict(data=(A0, B0), dim=5), cp.ConfigError, r"dim= applies to synthetic data only, but data=\(A, b\) was given"),
    ("logreg", dict(data=(A0, B0), n_features=5), cp.ConfigError, r"n_features applies to a LibSVM dataset"),
    ("logreg", dict(data=(A0 * 1e39, B0), dtype="float32"), cp.InputError, r"holds values up to .*e\+39, beyond the range of torch.float32. Use dtype='float64'"),
    ("mlp", dict(data=(A0, np.zeros(40))), cp.ConfigError, r"mlp: b in data=\(A, b\) has a single label"),
    ("mlp", dict(data=(A0, B0), dataset="mnist"), cp.ConfigError, r"mlp takes dataset= .* not both"),
    ("cnn", dict(data=(A0, B0)), cp.ConfigError, r"cnn needs square images; data=\(A, b\) rows have 5 pixels"),
]


@pytest.mark.parametrize("name,params,error,message", BAD, ids=[b[3][:40] for b in BAD])
def test_bad_data_gets_one_clear_line(name, params, error, message):
    with pytest.raises(error, match=message) as info:
        make(name, **params)
    assert "\n" not in str(info.value)


def test_mlp_and_cnn_take_arrays():
    from sklearn.datasets import load_digits

    digits = load_digits()
    mine = make("mlp", data=(digits.data / 16.0, digits.target + 10), n_clients=4, hidden=(4,))
    ref = make("mlp", n_clients=4, hidden=(4,))  # dataset="digits"
    assert torch.equal(mine.data.features, ref.data.features) and torch.equal(mine.data.targets, ref.data.targets)
    assert mine.describe()["labels"] == list(range(10, 20)) and mine.classes == 10
    cnn = make("cnn", data=(digits.data / 16.0, digits.target), n_clients=3, samples=90)
    ref = make("cnn", dataset="digits", n_clients=3, samples=90)
    assert torch.equal(cnn.data.features, ref.data.features) and cnn.describe()["dataset"] == "arrays"


# ----------------------------------------------------------------------------- .npz files (configs)
@pytest.mark.parametrize("sparse", [False, True])
def test_npz_file_is_read_like_the_arrays(tmp_path, sparse):
    A, b = _arrays()
    path = cp.datasets.save_npz(tmp_path / "mine.npz", sp.csr_matrix(A) if sparse else A, b + 1)
    with np.load(path) as f:
        assert sorted(f.files) == (["A_data", "A_indices", "A_indptr", "A_shape", "b"] if sparse else ["A", "b"])
    X, y = cp.datasets.load(str(path))
    assert sp.issparse(X) and np.array_equal(X.toarray(), A) and np.array_equal(y, b + 1)
    for name in LINEAR:
        from_file = make(name, dataset=str(path), n_clients=3)
        _same(from_file, make(name, data=(A, b + 1), n_clients=3))
        assert from_file.describe()["dataset"] == str(path)
    assert make("logreg", dataset=str(path)).describe()["labels"] == {"-1": 1.0, "+1": 2.0}
    mlp = make("mlp", dataset=str(path), n_clients=2, hidden=())
    assert mlp.classes == 2


def test_a_config_names_an_npz_file_and_refuses_arrays(tmp_path):
    A, b = _arrays()
    path = cp.datasets.save_npz(tmp_path / "mine.npz", A, b)
    run = {"algorithm": "marina", "compressor": "cq", "iterations": 5}
    cfg = load_config({"problem": {"name": "logreg", "dataset": str(path), "n_clients": 4}, "run": run})
    check(cfg)
    assert "data" not in cfg.problem.params  # arrays are not a config value, nor part of the run id
    with pytest.raises(cp.ConfigError, match=r"problem.data: a config cannot hold arrays.*dataset = \"path/to/file\""):
        load_config({"problem": {"name": "logreg", "data": [[1.0], [2.0]], "n_clients": 1}, "run": run})


def test_bad_npz_files(tmp_path):
    A, b = _arrays()
    cases = {
        "no_b.npz": dict(A=A),
        "both.npz": dict(A=A, A_data=A.ravel(), A_indices=np.arange(5), A_indptr=np.arange(41), A_shape=np.array([40, 5]), b=b),
        "short.npz": dict(A=A, b=b[:-1]),
        "nan.npz": dict(A=np.where(A > 1.5, np.nan, A), b=b),
        "csr.npz": dict(A_data=np.ones(3), A_indices=np.array([0, 1, 9]), A_indptr=np.array([0, 3]), A_shape=np.array([1, 5]), b=b[:1]),
        "shape.npz": dict(A_data=np.ones(1), A_indices=np.array([0]), A_indptr=np.array([0, 1]), A_shape=np.array([1.5, 2.0]), b=b[:1]),
    }
    messages = {
        "no_b.npz": r"holds the arrays \['A'\]; it must hold arrays A \(m, d\) and b \(m,\)",
        "both.npz": r"holds the arrays \['A', 'A_data'",
        "short.npz": r"A has 40 rows \(samples\) but b has 39",
        "nan.npz": r"nan.npz.*A holds .* non-finite values",
        "csr.npz": r"csr.npz.*CSR parts .* do not form a matrix",
        "shape.npz": r"A_shape must be two non-negative integers",
    }
    for file, arrays in cases.items():
        np.savez(tmp_path / file, **arrays)
        with pytest.raises(cp.DataFileError, match=messages[file]) as info:
            make("least_squares", dataset=str(tmp_path / file))
        assert "\n" not in str(info.value) and file in str(info.value)
    np.savez(tmp_path / "pickled.npz", A=np.array([object()], dtype=object), b=b)
    with pytest.raises(cp.DataFileError, match=r"pickled.npz.*save_npz"):
        make("logreg", dataset=str(tmp_path / "pickled.npz"))
    (tmp_path / "text.npz").write_text("1 1:0.5\n")
    with pytest.raises(cp.DataFileError, match=r"cannot read data file .*text.npz"):
        make("logreg", dataset=str(tmp_path / "text.npz"))
    np.savez(tmp_path / "ok.npz", A=A, b=b)
    with pytest.raises(cp.ConfigError, match=r"n_features applies to LibSVM files.*Drop n_features=5"):
        make("logreg", dataset=str(tmp_path / "ok.npz"), n_features=5)
