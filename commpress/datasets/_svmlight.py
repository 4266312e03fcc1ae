"""Reading LibSVM (svmlight) text files, gzip/bz2 or plain, with errors that name the line.

Parsing is scikit-learn's ``load_svmlight_file`` (a C parser). When it fails, or the file is a
broken archive, the file is scanned once more line by line to say *which* line is wrong; the
result is a :class:`~commpress.errors.DataFileError` with the file name, the line number and
the offending text.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import math
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import scipy.sparse as sp

from commpress.errors import DataFileError

_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_ARCHIVE_ERRORS = (EOFError, OSError, zlib.error, gzip.BadGzipFile)


def _kind(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(3)
    if head[:2] == _GZIP_MAGIC:
        return "gzip"
    if head == _BZ2_MAGIC:
        return "bz2"
    return "plain"


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing gzip/bz2 (detected from the magic bytes)."""
    kind = _kind(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _bad_line(line: bytes) -> str | None:
    """Why one svmlight line is malformed, or None if it is fine (comments and blanks allowed)."""
    text = line.split(b"#", 1)[0].strip()
    if not text:
        return None
    tokens = text.split()
    try:
        label = float(tokens[0])
    except ValueError:
        return f"the label {tokens[0].decode(errors='replace')!r} is not a number"
    if not math.isfinite(label):
        return f"the label {tokens[0].decode(errors='replace')!r} is not finite"
    previous = -1
    for token in tokens[1:]:
        if token.startswith(b"qid:"):
            continue
        key, sep, value = token.partition(b":")
        shown = token.decode(errors="replace")
        if not sep:
            return f"the entry {shown!r} is not of the form index:value"
        try:
            index = int(key)
        except ValueError:
            return f"the index in {shown!r} is not an integer"
        try:
            number = float(value)
        except ValueError:
            return f"the value in {shown!r} is not a number"
        if index < 0:
            return f"the index in {shown!r} is negative"
        if index <= previous:
            return f"the indices are not strictly increasing at {shown!r}"
        if not math.isfinite(number):
            return f"the value in {shown!r} is not finite"
        previous = index
    return None


def diagnose(path: Path) -> str:
    """A sentence naming the first problem found in ``path`` (line number, text, reason)."""
    lineno = 0
    try:
        with open_binary(path) as f:
            for lineno, line in enumerate(f, start=1):
                reason = _bad_line(line)
                if reason is not None:
                    shown = line.decode(errors="replace").rstrip("\n")
                    if len(shown) > 80:
                        shown = shown[:77] + "..."
                    return f"line {lineno}: {reason} (line text: {shown!r})"
    except _ARCHIVE_ERRORS as exc:
        return (
            f"the compressed file is truncated or corrupt after line {lineno} ({exc}); "
            f"download it again"
        )
    return "no malformed line found"


def read_svmlight(path: Path, n_features: int | None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Parse ``path``; every failure becomes a :class:`DataFileError` naming the file and line."""
    try:
        with open_binary(path) as f:
            X, y = _load(f, n_features)
    except _ARCHIVE_ERRORS as exc:
        raise DataFileError(f"cannot read data file {str(path)!r}: {diagnose(path)}.") from exc
    except ValueError as exc:
        message = str(exc)
        if "n_features" in message:
            raise DataFileError(
                f"data file {str(path)!r} has more features than n_features={n_features} "
                f"({message}). Pass a larger n_features, or None to infer it."
            ) from exc
        raise DataFileError(
            f"malformed LibSVM data file {str(path)!r}: {diagnose(path)}. "
            f"(parser said: {message})"
        ) from exc
    if X.shape[0] == 0:
        raise DataFileError(f"data file {str(path)!r} holds no rows. Check that it is a LibSVM text file.")
    if not (np.isfinite(X.data).all() and np.isfinite(y).all()):
        raise DataFileError(f"data file {str(path)!r} holds non-finite numbers: {diagnose(path)}.")
    return X.tocsr(), y


def _load(f: IO[bytes], n_features: int | None) -> tuple[sp.csr_matrix, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    return load_svmlight_file(f, n_features=n_features, dtype=np.float64)
