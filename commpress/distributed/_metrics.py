"""The metrics CSV of a distributed run, written by rank 0 one line per recorded round.

Same columns and number format as the results store (``iteration`` as an integer, floats with
``repr`` for an exact round trip): ``iteration, bits_up, bits_down, grad_norm_sq, loss,
wall_time`` and ``dist_sq`` when the problem knows its optimum. Every line is flushed as it is
written, so the file stays readable (all complete lines) if the run dies; on resume it is
rewritten from the checkpoint's rows and appended to again.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

COLUMNS = ("iteration", "bits_up", "bits_down", "grad_norm_sq", "loss", "wall_time")


def _line(names: list[str], row: list[float]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [str(int(v)) if c == "iteration" else repr(float(v)) for c, v in zip(names, row)])
    return buf.getvalue()


class MetricsCSV:
    """Append-only metrics file; ``columns`` lists the column names in order."""

    def __init__(self, path: str | Path, columns: list[str]) -> None:
        self.path = Path(path)
        self.names = list(columns)
        self._fh = None

    def reset(self, rows: dict[str, list[float]] | None = None) -> None:
        """Rewrite the file with the header and ``rows`` (the columns so far), then append."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = ",".join(self.names) + "\n"
        if rows:
            for values in zip(*(rows[c] for c in self.names)):
                text += _line(self.names, list(values))
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh = open(self.path, "a")

    def append(self, values: dict[str, float]) -> None:
        if self._fh is None:
            self.reset()
        self._fh.write(_line(self.names, [values[c] for c in self.names]))
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
