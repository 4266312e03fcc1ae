"""MNIST in its original IDX form (the official 10k test split; user-provided: COMMPRESS_DATA, a path, or fetch)."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np

from commpress.datasets._locate import find
from commpress.datasets._svmlight import _ARCHIVE_ERRORS, open_binary
from commpress.errors import ConfigError, DataFileError

IMAGES = "t10k-images-idx3-ubyte"
LABELS = "t10k-labels-idx1-ubyte"


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        with open_binary(path) as f:
            data = f.read()
    except _ARCHIVE_ERRORS as exc:
        raise DataFileError(f"cannot read IDX file {str(path)!r}: truncated or corrupt archive ({exc}).") from exc
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(f"IDX file {str(path)!r} is too short ({len(data)} bytes) to hold its header.")
    found, *dims = struct.unpack(f">{1 + ndim}I", data[:header])
    if found != magic:
        raise DataFileError(
            f"IDX file {str(path)!r} has magic number {found}, expected {magic} "
            f"({'images' if ndim == 3 else 'labels'} file). Is it the right file?"
        )
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataFileError(
            f"IDX file {str(path)!r} holds {len(data)} bytes, its header {dims} says {expected}: "
            f"the file is truncated or padded. Download it again."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _locate(path: str | os.PathLike | None, stem: str) -> Path | None:
    if path is not None:
        folder = Path(path).expanduser()
        for suffix in (".gz", ""):
            if (folder / (stem + suffix)).is_file():
                return folder / (stem + suffix)
        return None
    return find(stem, subdir="mnist") or find(stem)


def load_mnist(path: str | os.PathLike | None = None, *, fallback: str | None = "digits") -> tuple[np.ndarray, np.ndarray]:
    """MNIST test images ``(10000, 28, 28)`` uint8 and labels ``(10000,)`` uint8 (0-9).

    ``path``: a folder holding ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``;
    default: the ``mnist/`` subfolder of the search folders (see
    :func:`commpress.datasets.search_dirs`). When the files are absent and ``fallback="digits"``,
    returns scikit-learn's bundled 8x8 digits instead (``(1797, 8, 8)`` uint8, values rescaled from
    0..16 to 0..255) with a warning; ``fallback=None`` raises :class:`DataFileError`.
    """
    if fallback not in (None, "digits"):
        raise ConfigError(f"load_mnist fallback must be 'digits' or None; got {fallback!r}.")
    images_path, labels_path = _locate(path, IMAGES), _locate(path, LABELS)
    if images_path is None or labels_path is None:
        where = str(path) if path is not None else "the mnist/ subfolder of the data folders"
        if fallback is None:
            raise DataFileError(
                f"MNIST IDX files {IMAGES}.gz / {LABELS}.gz not found in {where}. Put them there, "
                f"or use fallback='digits'."
            )
        warnings.warn(f"MNIST not found in {where}; using scikit-learn's 8x8 digits instead.", stacklevel=2)
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
        return images, digits.target.astype(np.uint8)
    images = _read_idx(images_path, 2051, 3)
    labels = _read_idx(labels_path, 2049, 1)
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(
            f"MNIST files disagree: {images.shape[0]} images in {images_path} but {labels.shape[0]} "
            f"labels in {labels_path}."
        )
    return images, labels
