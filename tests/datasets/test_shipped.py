"""The small LibSVM sets shipped inside the package: found with no configuration, checked against
their checksums, searched last, and no lookup of a ``shared`` folder next to the checkout."""

from __future__ import annotations

import gzip
import importlib.util
import shutil

import numpy as np
import pytest

import commpress as cp
import commpress.datasets as ds
from commpress.datasets import _locate
from commpress.datasets._catalog import KNOWN
from commpress.datasets._svmlight import sha256_of

SHIPPED = ["a9a", "a9a.t", "a5a", "mushrooms", "splice", "splice.t", "w8a", "phishing"]
NOT_SHIPPED = ["madelon", "madelon.t"]  # user-provided: COMMPRESS_DATA, a path, or fetch


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A user's machine: no COMMPRESS_DATA, an empty user cache."""
    monkeypatch.delenv("COMMPRESS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_the_shipped_folder_holds_exactly_the_small_known_sets():
    folder = _locate._package_data_dir()
    assert sorted(p.name for p in folder.iterdir() if p.name != "README.md") == sorted(f"{n}.gz" for n in SHIPPED)
    assert sorted(SHIPPED + NOT_SHIPPED) == ds.known()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 2_000_000  # keep the wheel small
    readme = (folder / "README.md").read_text()
    for name in SHIPPED:  # provenance note: every file with its sha256
        assert f"`{name}.gz`" in readme and KNOWN[name].sha256_gz in readme


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_sets_are_found_without_configuration_and_match_their_checksums(bare, name):
    assert ds.search_dirs() == [_locate._package_data_dir()]
    path = ds.locate(name)
    assert path == _locate._package_data_dir() / f"{name}.gz"
    assert sha256_of(path) == KNOWN[name].sha256_gz  # byte-for-byte the checked copy
    X, y = ds.load(name)  # verify=True: load checks the same sum
    info = ds.info(name)
    assert X.shape == (info.rows, info.n_features)
    values, counts = np.unique(y, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == info.labels


@pytest.mark.parametrize("name", NOT_SHIPPED)
def test_larger_sets_stay_user_provided_with_a_clear_error(bare, name):
    with pytest.raises(cp.DataFileError, match=rf"{name!r} is known but no copy.*fetch\({name!r}\).*COMMPRESS_DATA"):
        ds.load(name)


def test_mnist_is_not_shipped_and_falls_back_to_digits(bare):
    with pytest.warns(UserWarning, match="digits"):
        images, labels = ds.load_mnist()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    with pytest.raises(cp.DataFileError, match="not found"):
        ds.load_mnist(fallback=None)


def _corrupt(gz: bytes) -> bytes:
    """A well-formed gzip copy with one label flipped: parses fine, fails the checksum."""
    lines = gzip.decompress(gz).decode().splitlines(keepends=True)
    label, rest = lines[0].split(" ", 1)
    lines[0] = ("2" if label == "1" else "1") + " " + rest
    return gzip.compress("".join(lines).encode())


def test_a_corrupted_copy_first_in_commpress_data_is_refused(bare, monkeypatch):
    shipped = ds.locate("mushrooms")
    override = bare / "override"
    override.mkdir()
    (override / "mushrooms.gz").write_bytes(_corrupt(shipped.read_bytes()))
    monkeypatch.setenv("COMMPRESS_DATA", str(override))
    assert ds.locate("mushrooms") == override / "mushrooms.gz"  # COMMPRESS_DATA comes before the package
    with pytest.raises(cp.DataFileError, match=r"mushrooms\.gz.*'mushrooms' has sha256 .*modified or damaged.*verify=False"):
        ds.load("mushrooms")
    X, _ = ds.load("mushrooms", verify=False)  # used anyway when asked
    assert X.shape == (8124, 112)
    # a damaged archive (a byte of the compressed stream changed) is refused by its checksum too
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (override / "mushrooms.gz").write_bytes(bytes(data))
    with pytest.raises(cp.DataFileError, match="sha256"):
        ds.load("mushrooms")
    monkeypatch.delenv("COMMPRESS_DATA")
    assert ds.locate("mushrooms") == shipped
    assert ds.load("mushrooms")[0].shape == (8124, 112)


def test_search_order_env_then_cache_then_package(bare, monkeypatch):
    shipped = ds.locate("splice")
    cache = bare / "cache" / "commpress"
    cache.mkdir(parents=True)
    (cache / "splice").write_bytes(gzip.decompress(shipped.read_bytes()))  # what fetch writes
    assert ds.search_dirs() == [cache, _locate._package_data_dir()]
    assert ds.locate("splice") == cache / "splice"
    assert ds.load("splice")[0].shape == (1000, 60)  # the plain copy passes the text checksum
    env = bare / "env"
    env.mkdir()
    shutil.copy(shipped, env / "splice.gz")
    monkeypatch.setenv("COMMPRESS_DATA", str(env))
    assert ds.search_dirs() == [env, cache, _locate._package_data_dir()]
    assert ds.locate("splice") == env / "splice.gz"


def test_locate_never_looks_at_a_shared_folder(bare, monkeypatch):
    assert not any("shared" in d.parts for d in ds.search_dirs())
    assert not hasattr(_locate, "_shared_candidates")
    # the module placed in a checkout with shared/datasets beside it and inside it (the old
    # lookup's two places), each holding madelon: neither is searched
    repo = bare / "repo"
    (repo / "commpress" / "datasets").mkdir(parents=True)
    shutil.copy(_locate.__file__, repo / "commpress" / "datasets" / "_locate.py")
    for shared in (bare / "shared" / "datasets", repo / "shared" / "datasets"):
        shared.mkdir(parents=True)
        (shared / "madelon").write_text("1 1:1\n-1 2:1\n")
    spec = importlib.util.spec_from_file_location("_locate_in_a_checkout", repo / "commpress" / "datasets" / "_locate.py")
    moved = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(moved)
    assert moved.find("madelon") is None
    assert not any("shared" in d.parts for d in moved.search_dirs())
    with pytest.raises(cp.DataFileError, match="'madelon' is known but no copy"):
        moved.resolve("madelon")
