"""Where data files are looked for, and how a name or a path becomes one file.

Search order for a name (first hit wins):

1. the folders named by the environment variable ``COMMPRESS_DATA`` (``os.pathsep``-separated);
2. the user cache, ``$XDG_CACHE_HOME/commpress`` or ``~/.cache/commpress`` (where
   :func:`commpress.datasets.fetch` writes);
3. the small LibSVM sets shipped inside the package, ``commpress/datasets/data/`` (a9a, a9a.t,
   a5a, mushrooms, splice, splice.t, w8a, phishing; see the README.md there), as scikit-learn
   ships its small datasets: a fresh install loads them with no download and no configuration.

The larger sets (madelon, madelon.t, MNIST) are not shipped: put them in a ``COMMPRESS_DATA``
folder, pass their path, or download them with :func:`commpress.datasets.fetch`.

In each folder the file may be called ``name``, ``name.gz``, ``name.bz2`` or ``name.txt``.
Known names are checked against their sha256 on load wherever they were found, the shipped
copies included (:func:`commpress.datasets.load`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from commpress.datasets._catalog import KNOWN
from commpress.errors import ConfigError, DataFileError

#: The environment variable naming a folder of data files, searched first.
ENV_VAR = "COMMPRESS_DATA"
_SUFFIXES = ("", ".gz", ".bz2", ".txt", ".txt.gz")


def cache_dir() -> Path:
    """The user cache folder (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "commpress"


def _package_data_dir() -> Path:
    """The folder of the LibSVM files shipped inside the package (``commpress/datasets/data``)."""
    return Path(__file__).resolve().parent / "data"


def search_dirs() -> list[Path]:
    """The folders searched for a dataset name, in order (existing ones only)."""
    dirs: list[Path] = []
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    dirs.append(cache_dir())
    dirs.append(_package_data_dir())
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def _looks_like_path(text: str) -> bool:
    return os.sep in text or (os.altsep is not None and os.altsep in text) or text.startswith("~")


def find(name: str, subdir: str = "") -> Path | None:
    """The first file called ``name`` (with an allowed suffix) in the search folders, or None."""
    for folder in search_dirs():
        base = folder / subdir if subdir else folder
        for suffix in _SUFFIXES:
            candidate = base / (name + suffix)
            if candidate.is_file():
                return candidate
    return None


def resolve(name_or_path: str | os.PathLike) -> tuple[Path, str | None]:
    """The file to read and the known-dataset name it stands for (None for an explicit path).

    Raises :class:`DataFileError` for a missing explicit path or a known name without a local
    copy, :class:`ConfigError` for an unknown name.
    """
    if isinstance(name_or_path, os.PathLike) or (
        isinstance(name_or_path, str) and _looks_like_path(name_or_path)
    ):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise DataFileError(
                f"data file {str(path)!r} does not exist. Check the path, or pass a known dataset "
                f"name ({', '.join(sorted(KNOWN))})."
            )
        return path, None
    if not isinstance(name_or_path, str):
        raise ConfigError(
            f"a dataset is a name or a path; got {name_or_path!r} ({type(name_or_path).__name__})."
        )
    name = name_or_path.strip()
    if Path(name).is_file():  # a bare file name in the working directory
        return Path(name), None
    found = find(name)
    if found is not None:
        return found, name if name in KNOWN else None
    where = ", ".join(str(d) for d in search_dirs()) or "(no existing folder)"
    if name in KNOWN:
        raise DataFileError(
            f"dataset {name!r} is known but no copy was found (searched {where}). "
            f"Download it with commpress.datasets.fetch({name!r}), or put {name}.gz in a folder "
            f"named by the environment variable {ENV_VAR}."
        )
    close = difflib.get_close_matches(name, list(KNOWN), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"unknown dataset {name!r} and no file of that name in {where}.{hint} Known datasets: "
        f"{', '.join(sorted(KNOWN))}; or pass a path to a LibSVM file."
    )
