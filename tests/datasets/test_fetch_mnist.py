"""fetch (offline and with a fake opener; never the network) and the MNIST IDX reader."""

from __future__ import annotations

import gzip
import io
import struct
import urllib.error

import numpy as np
import pytest

import commpress as cp
import commpress.datasets as ds


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _opener(data: bytes, calls: list):
    def opener(url, timeout=None):
        calls.append(url)
        return _Response(data)

    return opener


def _splice_bytes():
    return ds.locate("splice").read_bytes()  # shipped with the package


def test_fetch_offline_gives_a_clear_error(tmp_path):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(cp.DataFileError, match="could not download 'a9a'.*offline.*COMMPRESS_DATA"):
        ds.fetch("a9a", cache=tmp_path, opener=offline)
    # a real unreachable address (connection refused on the discard port of localhost)
    with pytest.raises(cp.DataFileError, match="could not download"):
        ds.fetch("a5a", cache=tmp_path, url="http://127.0.0.1:9/a5a", timeout=2)
    assert not any(tmp_path.iterdir())


def test_fetch_checks_the_checksum_and_writes_the_cache(tmp_path, monkeypatch):
    gz = _splice_bytes()
    calls: list = []
    path = ds.fetch("splice", cache=tmp_path, opener=_opener(gz, calls))  # gzip body: decompressed
    assert path == tmp_path / "splice" and calls == [ds.info("splice").url]
    assert path.read_bytes() == gzip.decompress(gz)
    assert ds.fetch("splice", cache=tmp_path, opener=_opener(b"", calls)) == path and len(calls) == 1  # cached
    monkeypatch.setenv("COMMPRESS_DATA", str(tmp_path))
    X, y = ds.load("splice")  # the plain copy passes the text checksum
    assert X.shape == (1000, 60)
    # corrupted download: refused, nothing written
    bad = gzip.decompress(gz)[:-10]
    with pytest.raises(cp.DataFileError, match="sha256.*not saved"):
        ds.fetch("splice", cache=tmp_path / "other", opener=_opener(bad, []))
    assert not (tmp_path / "other" / "splice").exists()
    ok = ds.fetch("splice", cache=tmp_path / "other", opener=_opener(bad, []), verify=False)
    assert ok.read_bytes() == bad
    with pytest.raises(cp.DataFileError, match="broken archive"):
        ds.fetch("splice", cache=tmp_path / "x", opener=_opener(gz[:100], []))
    with pytest.raises(cp.ConfigError, match="fetch knows only"):
        ds.fetch("cifar10", cache=tmp_path)


def _idx(magic, dims, payload):
    return struct.pack(f">{1 + len(dims)}I", magic, *dims) + payload


def write_mnist(folder, n=30):
    """Fabricated t10k IDX files (gzip) of ``n`` random 28x28 images, labels 0..9 cycling."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    lab = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(2051, (n, 28, 28), img.tobytes())))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(2049, (n,), lab.tobytes())))
    return img, lab


def test_load_mnist_from_the_mnist_subfolder_of_commpress_data(tmp_path, monkeypatch):
    img, lab = write_mnist(tmp_path / "mnist")
    monkeypatch.setenv("COMMPRESS_DATA", str(tmp_path))
    images, labels = ds.load_mnist(fallback=None)  # default lookup: <COMMPRESS_DATA>/mnist/
    assert images.shape == (30, 28, 28) and images.dtype == np.uint8 and np.array_equal(images, img)
    assert labels.shape == (30,) and labels.dtype == np.uint8 and np.array_equal(labels, lab)


def test_load_mnist_from_a_folder_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    lab = np.array([1, 2, 3], dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(2051, (3, 28, 28), img.tobytes())))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(2049, (3,), lab.tobytes()))
    images, labels = ds.load_mnist(tmp_path)
    assert np.array_equal(images, img) and np.array_equal(labels, lab)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(2049, (3,), lab.tobytes())[:-1])
    with pytest.raises(cp.DataFileError, match="truncated or padded"):
        ds.load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(2051, (3,), lab.tobytes()))
    with pytest.raises(cp.DataFileError, match="magic number 2051, expected 2049"):
        ds.load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(2049, (2,), lab[:2].tobytes()))
    with pytest.raises(cp.DataFileError, match="disagree"):
        ds.load_mnist(tmp_path)


def test_load_mnist_falls_back_to_digits(tmp_path):
    with pytest.warns(UserWarning, match="digits"):
        images, labels = ds.load_mnist(tmp_path / "empty")
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    assert set(labels.tolist()) == set(range(10))
    with pytest.raises(cp.DataFileError, match="not found"):
        ds.load_mnist(tmp_path / "empty", fallback=None)
