"""The results store: one folder per run, written atomically, trusted only when verified.

Layout of a sweep's output folder::

    OUT/config.toml, config.json    the resolved sweep config
    OUT/summary.json, summary.txt   per method: the best stepsize multiplier and its numbers
    OUT/*.png                       the plots
    OUT/runs/<run_id>/config.json   the run's resolved spec (RunSpec.as_dict())
    OUT/runs/<run_id>/metrics.csv   iteration, bits_up, bits_down, grad_norm_sq, loss, wall_time[, dist_sq]
    OUT/runs/<run_id>/summary.json  the run's numbers (final ||grad f||^2, bits to target, stepsize, ...)
    OUT/runs/<run_id>/done.json     sha256 of the three files above, written last

Every file is written to a temporary name and moved into place with ``os.replace`` (atomic on
POSIX), so a reader sees either nothing or the whole file; a run folder is assembled under a
staging name and renamed into place once ``done.json`` (written last) holds the checksums of its
files. On resume a run folder without ``done.json``, or whose files do not match its checksums (a
truncated CSV, an edited summary), is not trusted: it is redone (:func:`check_run` says why).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from commpress.errors import DataFileError
from commpress.network._watchdog import pid_alive

RUN_FILES = ("config.json", "metrics.csv", "summary.json")
DONE = "done.json"
#: The columns every metrics file has, in order (``dist_sq`` follows when known).
COLUMNS = ("iteration", "bits_up", "bits_down", "grad_norm_sq", "loss", "wall_time")
_TMP_TAG = ".tmp-"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{_TMP_TAG}{os.getpid()}")
    raw = data.encode() if isinstance(data, str) else data
    with open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def dump_json(data: Any) -> str:
    """JSON with non-finite floats kept as strings ("inf", "nan"): valid JSON for any reader."""
    return json.dumps(_finite(data), indent=2, sort_keys=False) + "\n"


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def as_float(v: Any) -> float | None:
    """Read back a number written by :func:`dump_json` (None stays None)."""
    if v is None:
        return None
    return float(v)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def metrics_csv(columns: dict[str, list]) -> str:
    """The metrics table as CSV text; floats written with ``repr`` (exact round trip)."""
    names = [c for c in COLUMNS if c in columns] + [c for c in columns if c not in COLUMNS]
    length = {len(columns[c]) for c in names}
    if len(length) > 1:
        raise ValueError(f"metrics columns have different lengths: { {c: len(columns[c]) for c in names} }")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in zip(*(columns[c] for c in names)):
        writer.writerow([str(int(v)) if c == "iteration" else repr(float(v)) for c, v in zip(names, row)])
    return buf.getvalue()


def read_metrics(path: Path) -> dict[str, list[float]]:
    """A metrics CSV as columns (``iteration`` as ints, the rest as floats)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DataFileError(f"{path}: empty metrics file; delete its run folder and run the sweep again.")
    head, body = rows[0], rows[1:]
    out: dict[str, list[float]] = {c: [] for c in head}
    for i, row in enumerate(body, start=2):
        if len(row) != len(head):
            raise DataFileError(f"{path}: line {i} has {len(row)} fields, expected {len(head)}; the file is damaged.")
        for c, v in zip(head, row):
            out[c].append(int(v) if c == "iteration" else float(v))
    return out


def write_run(run_dir: Path, spec: dict[str, Any], columns: dict[str, list], summary: dict[str, Any]) -> None:
    """Store one finished run, all or nothing.

    The files are written (each atomically) into a staging folder ``.<run_id>.tmp-<pid>`` next to
    the run folder, ``done.json`` with their checksums last, and the staging folder is then renamed
    to the run folder: a reader sees no run folder or a complete one. If another process stored the
    same run meanwhile (a worker orphaned by a killed sweep), its verified folder is kept.
    """
    run_dir = Path(run_dir)
    stage = run_dir.with_name(f".{run_dir.name}{_TMP_TAG}{os.getpid()}")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    contents = {"config.json": dump_json(spec), "metrics.csv": metrics_csv(columns), "summary.json": dump_json(summary)}
    for name in RUN_FILES:
        atomic_write(stage / name, contents[name])
    checksums = {name: sha256_file(stage / name) for name in RUN_FILES}
    atomic_write(stage / DONE, dump_json({"run_id": spec.get("run_id"), "sha256": checksums}))
    for _ in range(3):
        if run_dir.exists():
            if check_run(run_dir, str(spec.get("run_id"))) is None:
                shutil.rmtree(stage)  # stored meanwhile by another process: same run, keep theirs
                return
            clear_run(run_dir)
        try:
            os.rename(stage, run_dir)
            return
        except OSError:  # the run folder appeared between the check and the rename
            continue
    raise DataFileError(f"{run_dir}: could not store the run (the folder keeps changing); is another sweep "
                        "writing to the same output folder?")


def clean_stale(runs_dir: Path) -> None:
    """Remove staging folders left by processes that no longer exist (a SIGKILL mid-write)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return
    for path in runs_dir.glob(f".*{_TMP_TAG}*"):
        try:
            pid = int(path.name.rsplit(_TMP_TAG, 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and pid_alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def clear_run(run_dir: Path) -> None:
    """Remove an incomplete run folder (the done marker first, so it is never trusted half-deleted)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return
    done = run_dir / DONE
    if done.exists():
        done.unlink()
    shutil.rmtree(run_dir, ignore_errors=True)


def check_run(run_dir: Path, run_id: str) -> str | None:
    """None when the run folder is complete and verified; else the reason it is not."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "not run yet"
    done = run_dir / DONE
    if not done.is_file():
        return "no done.json (interrupted)"
    try:
        marker = json.loads(done.read_text())
        sums = marker["sha256"]
    except (ValueError, KeyError, TypeError):
        return "done.json is damaged"
    if marker.get("run_id") != run_id:
        return f"done.json belongs to run {marker.get('run_id')!r}"
    for name in RUN_FILES:
        path = run_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if sums.get(name) != sha256_file(path):
            return f"{name} does not match its checksum (truncated or edited)"
    return None


def load_run(run_dir: Path) -> dict[str, Any]:
    """A verified run: ``{"spec": ..., "summary": ..., "metrics": {column: values}}``."""
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / "config.json").read_text())
    reason = check_run(run_dir, spec.get("run_id", ""))
    if reason is not None:
        raise DataFileError(f"{run_dir}: the run is not complete ({reason}); run its sweep again to redo it.")
    return {"spec": spec, "summary": json.loads((run_dir / "summary.json").read_text()),
            "metrics": read_metrics(run_dir / "metrics.csv"), "dir": run_dir}
