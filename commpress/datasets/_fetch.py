"""Download a known LibSVM file into the user cache, with a checksum check."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from commpress.datasets._catalog import KNOWN
from commpress.datasets._locate import ENV_VAR, cache_dir
from commpress.errors import ConfigError, DataFileError


def _decompress(data: bytes, url: str) -> bytes:
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)
        if data[:3] == b"BZh":
            return bz2.decompress(data)
    except (OSError, EOFError, ValueError) as exc:
        raise DataFileError(f"the download from {url} is a broken archive ({exc}); try again.") from exc
    return data


def fetch(
    name: str,
    *,
    url: str | None = None,
    cache: str | os.PathLike | None = None,
    opener: Callable | None = None,
    timeout: float = 60.0,
    verify: bool = True,
    force: bool = False,
) -> Path:
    """Download the known dataset ``name`` into the cache and return the file's path.

    The file is stored uncompressed as ``<cache>/<name>`` after its sha256 matches the one of
    ``MANIFEST.md`` (``verify=False`` skips the check; needed for ``madelon``, whose checked
    copy was rebuilt from the UCI files, so the LibSVM bytes may differ). An existing cached
    copy is returned as is unless ``force``.

    Args:
        name: a known dataset (``commpress.datasets.known()``).
        url: where to download from; default the LibSVM binary-classification folder.
        cache: target folder; default :func:`cache_dir`.
        opener: ``opener(url, timeout=...)`` returning a file-like response (default
            ``urllib.request.urlopen``; tests pass a fake).

    Raises:
        ConfigError: unknown name.
        DataFileError: offline / HTTP error / checksum mismatch, with what to do instead.
    """
    if name not in KNOWN:
        raise ConfigError(
            f"fetch knows only {', '.join(sorted(KNOWN))}; got {name!r}. For another file, "
            f"download it yourself and pass its path to commpress.datasets.load."
        )
    info = KNOWN[name]
    folder = Path(cache) if cache is not None else cache_dir()
    target = folder / name
    if target.is_file() and not force:
        return target
    url = url or info.url
    opener = opener or urllib.request.urlopen
    try:
        with opener(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataFileError(
            f"could not download {name!r} from {url} ({exc}). If this machine is offline, copy "
            f"{name}.gz from another machine into {folder} or into a folder named by the "
            f"environment variable {ENV_VAR}."
        ) from exc
    data = _decompress(data, url)
    digest = hashlib.sha256(data).hexdigest()
    if verify and digest != info.sha256_raw:
        extra = " (madelon's reference copy was rebuilt from UCI; pass verify=False)" if not info.verbatim else ""
        raise DataFileError(
            f"the download of {name!r} from {url} has sha256 {digest}, expected {info.sha256_raw}"
            f"{extra}. The file was not saved; retry, or pass verify=False to keep a different copy."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        raise DataFileError(f"cannot write {target} ({exc}). Pass cache= a writable folder.") from exc
    return target
