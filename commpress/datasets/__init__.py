"""LibSVM datasets and MNIST: find, verify, parse.

>>> import commpress as cp
>>> X, y = cp.datasets.load("mushrooms")        # scipy CSR (8124, 112), labels {1, 2}
>>> X, y = cp.datasets.load("/data/my.svm.gz")   # any LibSVM file
>>> images, labels = cp.datasets.load_mnist()    # t10k IDX files, or sklearn digits
>>> cp.datasets.save_npz("my.npz", A, b)          # your arrays, for configs: dataset = "my.npz"
>>> X, y = cp.datasets.load("my.npz")

A name is looked up in ``$COMMPRESS_DATA``, the user cache (``~/.cache/commpress``) and the
small sets shipped inside the package (a9a, a9a.t, a5a, mushrooms, splice, splice.t, w8a,
phishing; see :func:`search_dirs`). madelon and madelon.t are not shipped (``$COMMPRESS_DATA``,
a path, or :func:`fetch`), nor is MNIST (``$COMMPRESS_DATA``/mnist or a path; else the digits).
Known names carry their ``n_features`` (LibSVM files do not store it; a9a.t and a5a never use
their last column) and their sha256, checked on load (shipped copies included). Labels are returned as
published (mushrooms uses {1, 2}, phishing {0, 1}); the problems map them to {-1, +1}.

Your own arrays: a path ending in ``.npz`` is read as arrays ``A`` ``(m, d)`` (or its CSR parts)
and ``b`` ``(m,)`` (:func:`save_npz` writes the layout, see :mod:`commpress.datasets._arrays`); in
Python the problems also take the arrays themselves (``data=(A, b)``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from commpress.datasets._arrays import check_arrays, read_npz, save_npz
from commpress.datasets._catalog import KNOWN, DatasetInfo
from commpress.datasets._fetch import fetch
from commpress.datasets._locate import ENV_VAR, cache_dir, resolve, search_dirs
from commpress.datasets._mnist import load_mnist
from commpress.datasets._svmlight import read_svmlight, sha256_of
from commpress.errors import ConfigError, DataFileError

__all__ = [
    "DatasetInfo",
    "check_arrays",
    "ENV_VAR",
    "cache_dir",
    "fetch",
    "info",
    "known",
    "load",
    "load_mnist",
    "locate",
    "save_npz",
    "search_dirs",
]

_CACHE: OrderedDict[tuple, tuple[sp.csr_matrix, np.ndarray]] = OrderedDict()
_CACHE_SIZE = 8


def known() -> list[str]:
    """The dataset names known by name (with n_features and checksums), sorted."""
    return sorted(KNOWN)


def info(name: str) -> DatasetInfo:
    """Facts of a known dataset (rows, n_features, label counts, checksums)."""
    if name not in KNOWN:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(KNOWN))}.")
    return KNOWN[name]


def locate(name_or_path: str | os.PathLike) -> Path:
    """The file :func:`load` would read for ``name_or_path``."""
    return resolve(name_or_path)[0]


def _verify(path: Path, meta: DatasetInfo) -> None:
    digest = sha256_of(path)
    if digest not in (meta.sha256_gz, meta.sha256_raw):
        raise DataFileError(
            f"data file {str(path)!r} for dataset {meta.name!r} has sha256 {digest}, which is "
            f"neither the published .gz ({meta.sha256_gz}) nor the text ({meta.sha256_raw}) "
            f"checksum: the copy is modified or damaged. Fetch it again "
            f"(commpress.datasets.fetch({meta.name!r}, force=True)), or pass verify=False to use it anyway."
        )


def load(
    name_or_path: str | os.PathLike, n_features: int | None = None, *, verify: bool = True
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Load a LibSVM dataset: ``(X, y)`` with ``X`` a float64 CSR matrix and ``y`` float64 labels.

    Args:
        name_or_path: a known name (``known()``), the name of a file in the search folders,
            or a path (plain, ``.gz`` or ``.bz2``; compression is detected from the bytes). A path
            ending in ``.npz`` holds arrays ``A`` and ``b`` (:func:`save_npz`); labels as stored.
        n_features: number of columns; default the known value for a known name, else
            inferred from the largest index in the file. Not for ``.npz`` files (``A`` fixes it).
        verify: for known names, check the file's sha256 against MANIFEST.md.

    Raises:
        ConfigError: unknown name (with close matches) or bad ``n_features``.
        DataFileError: missing, truncated or malformed file (naming the file and the line).
    """
    path, name = resolve(name_or_path)
    meta = KNOWN.get(name) if name is not None else None
    if n_features is None and meta is not None:
        n_features = meta.n_features
    if n_features is not None and (
        isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)) or n_features < 1
    ):
        raise ConfigError(f"n_features must be a positive integer or None; got {n_features!r}.")
    npz = path.suffix.lower() == ".npz"
    if npz and n_features is not None:
        raise ConfigError(f"n_features applies to LibSVM files; the .npz file {str(path)!r} fixes the columns by its "
                          f"matrix A. Drop n_features={n_features!r}.")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, n_features, bool(verify and meta))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        X, y = _CACHE[key]
        return X.copy(), y.copy()
    if verify and meta is not None:
        _verify(path, meta)
    if npz:
        X, y = read_npz(path)
    else:
        X, y = read_svmlight(path, None if n_features is None else int(n_features))
    _CACHE[key] = (X, y)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return X.copy(), y.copy()
