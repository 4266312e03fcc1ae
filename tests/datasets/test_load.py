"""commpress.datasets: lookup, checksums, parsing, errors that name the file and the line."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

import commpress as cp
import commpress.datasets as ds
from commpress.datasets import _locate


def need(name):
    """The file of a dataset shipped with the package (always there: no skip)."""
    return ds.locate(name)


@pytest.mark.parametrize("name", ["mushrooms", "splice", "a5a", "splice.t"])
def test_known_datasets_match_the_manifest(name):
    need(name)
    info = ds.info(name)
    X, y = ds.load(name)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float64 and y.dtype == np.float64
    assert X.shape == (info.rows, info.n_features)
    values, counts = np.unique(y, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == info.labels


def test_mushrooms_facts():
    need("mushrooms")
    X, y = ds.load("mushrooms")
    assert X.shape == (8124, 112)
    assert (y == 1).sum() == 3916 and (y == 2).sum() == 4208
    assert set(np.unique(X.data)) == {1.0}  # one-hot features
    assert np.all(X.getnnz(axis=1) == 21)  # one-hot: one active feature per encoded attribute


def test_explicit_path_env_var_and_plain_text(tmp_path, monkeypatch):
    src = need("splice")
    X, y = ds.load("splice")
    plain = tmp_path / "copy.svm"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    X2, y2 = ds.load(plain, n_features=60)  # a PathLike
    assert (X2 != X).nnz == 0 and np.array_equal(y2, y)
    X3, _ = ds.load(str(plain))  # n_features inferred: the largest index present
    assert X3.shape == (1000, 60)
    # COMMPRESS_DATA is searched first, with or without .gz
    monkeypatch.setenv("COMMPRESS_DATA", str(tmp_path))
    (tmp_path / "mydata").write_bytes(plain.read_bytes())
    assert ds.locate("mydata") == tmp_path / "mydata"
    X4, _ = ds.load("mydata")
    assert X4.shape == (1000, 60)
    shutil.copy(src, tmp_path / "splice.gz")
    assert ds.locate("splice") == tmp_path / "splice.gz"


def test_results_are_copies():
    need("splice")
    X, y = ds.load("splice")
    X.data[:] = 0
    y[:] = 7
    X2, y2 = ds.load("splice")
    assert X2.data.any() and not (y2 == 7).any()


def test_unknown_and_missing(tmp_path, monkeypatch):
    with pytest.raises(cp.ConfigError, match="Did you mean 'madelon'"):
        ds.load("madelone")
    with pytest.raises(cp.DataFileError, match="does not exist"):
        ds.load(tmp_path / "nothing.gz")
    # a known name that is not shipped and has no copy: DataFileError that says how to get it
    monkeypatch.delenv("COMMPRESS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(cp.DataFileError, match=r"'madelon' is known but no copy.*fetch\('madelon'\).*COMMPRESS_DATA"):
        ds.load("madelon")
    with pytest.raises(cp.ConfigError, match="n_features"):
        ds.load(need_path(tmp_path), n_features=0)


def need_path(tmp_path):
    f = tmp_path / "tiny.svm"
    f.write_text("1 1:1\n-1 2:1\n")
    return f


def test_checksum_mismatch_for_a_known_name(tmp_path, monkeypatch):
    src = need("splice")
    lines = gzip.decompress(src.read_bytes()).decode().splitlines(keepends=True)
    (tmp_path / "splice").write_text("".join(lines[:-1]))  # modified copy: one row short
    monkeypatch.setenv("COMMPRESS_DATA", str(tmp_path))
    with pytest.raises(cp.DataFileError, match="sha256.*verify=False"):
        ds.load("splice")
    X, _ = ds.load("splice", verify=False)
    assert X.shape == (999, 60)


def test_broken_files_name_the_file_and_line(tmp_path):
    src = need("mushrooms")
    data = src.read_bytes()
    truncated = tmp_path / "mush.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(cp.DataFileError, match=r"mush\.gz.*truncated or corrupt after line \d+"):
        ds.load(truncated)
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(cp.DataFileError, match="garbage.gz"):
        ds.load(garbage)
    cases = {
        "label.svm": ("1 1:1\nabc 2:1\n", "line 2: the label 'abc'"),
        "index.svm": ("1 1:1\n1 x:1\n", "line 2: the index in 'x:1'"),
        "value.svm": ("1 1:1\n1 2:1\n-1 3:zz\n", "line 3: the value in '3:zz'"),
        "order.svm": ("1 2:1 1:1\n", "line 1: the indices are not strictly increasing"),
        "nan.svm": ("1 1:1\n1 1:nan\n", "line 2: the value in '1:nan' is not finite"),
        "colon.svm": ("1 1:1 2\n", "line 1: the entry '2' is not of the form index:value"),
    }
    for fname, (text, message) in cases.items():
        f = tmp_path / fname
        f.write_text(text)
        with pytest.raises(cp.DataFileError, match=f"{fname}.*{message}"):
            ds.load(f)
    wide = tmp_path / "wide.svm"
    wide.write_text("1 1:1 9:2\n")
    with pytest.raises(cp.DataFileError, match="more features than n_features=5"):
        ds.load(wide, n_features=5)
    empty = tmp_path / "empty.svm"
    empty.write_text("# only a comment\n")
    with pytest.raises(cp.DataFileError, match="no rows"):
        ds.load(empty)


def test_search_dirs_end_with_the_shipped_data():
    assert ds.search_dirs()[-1] == _locate._package_data_dir()
    assert ds.known() == sorted(["a9a", "a9a.t", "a5a", "mushrooms", "madelon", "madelon.t", "splice", "splice.t", "w8a", "phishing"])
    assert {ds.info(n).n_features for n in ("a9a", "a9a.t", "a5a")} == {123}
