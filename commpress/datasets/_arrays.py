"""In-memory data ``(A, b)``: checking user arrays, and ``.npz`` files that hold them.

``A`` is the ``(m, d)`` matrix of features (one row per sample) and ``b`` the ``(m,)`` labels or
targets. :func:`check_arrays` accepts NumPy arrays (and array-likes), SciPy sparse matrices or
arrays of any format (CSR, CSC, COO, ...) and torch tensors (dense or sparse, any device), and
returns float64 NumPy data (``A`` dense or CSR) or raises one error naming what is wrong, the
value and the fix.

``.npz`` layout (:func:`save_npz` writes it; :func:`read_npz` reads it): ``b`` ``(m,)`` and either
``A`` ``(m, d)`` (dense) or the CSR parts ``A_data``, ``A_indices``, ``A_indptr`` and
``A_shape`` = ``(m, d)``. Nothing is unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from commpress.errors import DataFileError, InputError

_CSR_KEYS = ("A_data", "A_indices", "A_indptr", "A_shape")


def _numpy(value: Any, name: str, where: str, error: type[Exception]) -> np.ndarray | sp.csr_matrix:
    """``value`` as a NumPy array or a CSR matrix (torch tensors moved to the CPU, sparse kept sparse)."""
    if sp.issparse(value):
        return sp.csr_matrix(value)
    if type(value).__module__.split(".")[0] == "torch":
        import torch

        if isinstance(value, torch.Tensor):
            if value.is_complex():
                raise error(f"{where}: {name} must hold real numbers; got a torch tensor of dtype {value.dtype}. "
                            f"Use {name}.real or {name}.abs().")
            value = value.detach().cpu()
            if value.layout != torch.strided:
                value = value.to_dense()
            if value.is_floating_point():
                value = value.to(torch.float64)
            return value.numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: {name} must be a NumPy array, a SciPy sparse matrix or a torch tensor; got "
                    f"{type(value).__name__} ({exc}).") from None


def _real(X: np.ndarray | sp.csr_matrix, name: str, where: str, error: type[Exception]) -> np.ndarray | sp.csr_matrix:
    """``X`` as float64 (bool, integer and float dtypes); anything else is refused."""
    if X.dtype.kind not in "biuf":
        raise error(f"{where}: {name} must hold real numbers (bool, integer or float); got dtype {X.dtype}. "
                    f"Convert it, e.g. {name}.astype(np.float64).")
    return X.astype(np.float64, copy=False)


def check_arrays(
    A: Any, b: Any, where: str, error: type[Exception] = InputError
) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
    """``A`` ``(m, d)`` and ``b`` ``(m,)`` as float64 (``A`` a dense array or CSR), checked.

    ``where`` starts every message (``"logreg: data="``, ``"data file 'x.npz'"``); ``error`` is the
    class raised (:class:`InputError` for arrays, :class:`DataFileError` for files).
    """
    A = _numpy(A, "A", where, error)
    b = _numpy(b, "b", where, error)
    if A.ndim != 2:
        fix = "For one feature use A.reshape(-1, 1)." if A.ndim == 1 else "Flatten each sample: A.reshape(m, -1)."
        raise error(f"{where}: A must be a matrix of shape (m samples, d features); got shape {tuple(A.shape)}. {fix}")
    if sp.issparse(b):
        b = b.toarray()
    if b.ndim != 1:
        raise error(f"{where}: b must be a vector of shape (m,), one label or target per row of A; got shape "
                    f"{tuple(b.shape)}. Use b.reshape(-1).")
    m, d = A.shape
    if b.shape[0] != m:
        raise error(f"{where}: A has {m} rows (samples) but b has {b.shape[0]} entries; they must agree, one "
                    f"label or target per row of A.")
    if m == 0 or d == 0:
        raise error(f"{where}: A has shape {(m, d)}: no {'samples' if m == 0 else 'features'}. Pass at least one "
                    f"sample per client and one feature.")
    A = _real(A, "A", where, error)
    b = _real(b, "b", where, error)
    values = A.data if sp.issparse(A) else A
    bad = ~np.isfinite(values)
    if bad.any():
        if sp.issparse(A):
            coo = A.tocoo()
            i, j = int(coo.row[bad][0]), int(coo.col[bad][0])
        else:
            i, j = (int(k) for k in np.argwhere(bad)[0])
        raise error(f"{where}: A holds {int(bad.sum())} non-finite values (NaN or Inf), the first at row {i}, "
                    f"column {j} (A[{i}, {j}] = {A[i, j]}). Remove or impute those samples.")
    bad_b = ~np.isfinite(b)
    if bad_b.any():
        i = int(np.argmax(bad_b))
        raise error(f"{where}: b holds {int(bad_b.sum())} non-finite values (NaN or Inf), the first at b[{i}] = "
                    f"{b[i]}. Remove those samples.")
    return A, b


def save_npz(path: str | Path, A: Any, b: Any) -> Path:
    """Write ``(A, b)`` to ``path`` in the layout :func:`load` reads (dense ``A``, or the CSR
    parts of a sparse one); the arrays are checked first (:func:`check_arrays`). Returns the path."""
    A, b = check_arrays(A, b, "save_npz")
    path = Path(path).expanduser()
    if sp.issparse(A):
        np.savez_compressed(path, A_data=A.data, A_indices=A.indices, A_indptr=A.indptr,
                            A_shape=np.asarray(A.shape, dtype=np.int64), b=b)
    else:
        np.savez_compressed(path, A=A, b=b)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def read_npz(path: Path) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(A, b)`` of an ``.npz`` file: ``A`` float64 CSR ``(m, d)``, ``b`` float64 ``(m,)``.

    Raises :class:`DataFileError` naming the file for an unreadable file, missing or extra arrays,
    bad shapes or non-finite values.
    """
    where = f"data file {str(path)!r}"
    need = "arrays A (m, d) and b (m,), or the CSR parts A_data, A_indices, A_indptr, A_shape and b"
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except ValueError as exc:  # pickled objects, or not an npz archive
        raise DataFileError(f"cannot read {where} as .npz ({exc}); it must hold plain {need} "
                            f"(commpress.datasets.save_npz(path, A, b) writes one).") from None
    except (OSError, EOFError) as exc:
        raise DataFileError(f"cannot read {where} as .npz: {exc}. Write it with "
                            "commpress.datasets.save_npz(path, A, b).") from None
    keys = sorted(arrays)
    if "b" not in arrays or not ("A" in arrays or all(k in arrays for k in _CSR_KEYS)) or (
        "A" in arrays and any(k in arrays for k in _CSR_KEYS)
    ):
        raise DataFileError(f"{where} holds the arrays {keys}; it must hold {need} (commpress.datasets.save_npz "
                            "writes this layout).")
    if "A" in arrays:
        A: Any = arrays["A"]
    else:
        shape = arrays["A_shape"].reshape(-1)
        if shape.size != 2 or shape.dtype.kind not in "iu" or (shape < 0).any():
            raise DataFileError(f"{where}: A_shape must be two non-negative integers (m, d); got {shape.tolist()}.")
        try:
            A = sp.csr_matrix((arrays["A_data"], arrays["A_indices"], arrays["A_indptr"]),
                              shape=(int(shape[0]), int(shape[1])))
            A.check_format(full_check=True)
        except (ValueError, TypeError) as exc:
            raise DataFileError(f"{where}: its CSR parts A_data, A_indices, A_indptr, A_shape do not form a "
                                f"matrix ({exc}). Write the file with commpress.datasets.save_npz(path, A, b).") from None
    A, b = check_arrays(A, arrays["b"], where, DataFileError)
    return sp.csr_matrix(A), b
