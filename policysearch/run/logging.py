"""Training logs: `metrics.csv` (one row per update) and TensorBoard events in `tb/`.

On resume from a checkpoint at step S, rows with step > S (work lost since that checkpoint) are
dropped from the CSV and purged from TensorBoard, so the resumed run appends without duplicates
or gaps. The CSV is rewritten through a temporary file and a rename (a kill leaves the old file or
the new one), and it is read by one checked reader (`read_metrics`) for resume and plots alike: a
garbled file is refused with the fix, a torn last row (a kill during its append) is dropped.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from tensorboardX import SummaryWriter
from tensorboardX.proto.summary_pb2 import Summary

from policysearch.errors import UserError

BASE_COLUMNS = ("step", "wall_time", "episode_return_mean", "episode_length_mean", "episodes", "steps_per_second")


class MetricsLogger:
    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.csv"
        self.columns: list[str] | None = None
        if resume_step is not None and self.path.exists():
            self.columns, rows = read_metrics(self.path)
            tmp = self.path.with_suffix(".csv.tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(r for r in rows if float(r["step"]) <= resume_step)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        elif self.path.exists():
            self.path.unlink()
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=None if resume_step is None else resume_step + 1)

    def log(self, row: dict[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(BASE_COLUMNS) + sorted(k for k in row if k not in BASE_COLUMNS)
            with open(self.path, "w", newline="") as f:
                csv.DictWriter(f, self.columns).writeheader()
        try:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, self.columns, extrasaction="ignore").writerow({k: _fmt(row.get(k)) for k in self.columns})
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        # one event per row, its finite numbers as the values of one Summary: what add_scalar writes
        # for each of them (a simple_value under its tag), at 16 us a row where a call per
        # metric took 0.9 ms for PPO's 15 (60 us each; 2026-12-04, a probe)
        values = [Summary.Value(tag=key, simple_value=float(value)) for key, value in row.items()
                  if key != "step" and isinstance(value, (int, float)) and math.isfinite(value)]
        self.tb._get_file_writer().add_summary(Summary(value=values), int(row["step"]))

    def close(self) -> None:
        self.tb.close()


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of a metrics.csv, every cell a number, empty or a boolean; a torn last
    row is left out. Anything else is a UserError that names the file and the fix."""
    fix = "move it out of the run folder (a resumed run then starts a new metrics.csv)"
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read '{path}' ({getattr(exc, 'strerror', None) or exc.__class__.__name__}): {fix}") from exc
    reader = csv.DictReader(io.StringIO(text))
    columns = list(reader.fieldnames or [])
    if "step" not in columns:
        raise UserError(f"'{path}' has no header with a 'step' column: {fix}")
    rows = list(reader)
    if rows and not text.endswith("\n"):  # the append a kill interrupted
        rows = rows[:-1]
    for i, row in enumerate(rows):
        if not all(_is_number(v) for v in row.values()) or row["step"] in ("", None) or None in row or None in row.values():
            if i == len(rows) - 1:  # the append a kill interrupted
                return columns, rows[:-1]
            raise UserError(f"'{path}' row {i + 2} is not a row of numbers: {fix}")
    return columns, rows


def _is_number(value: Any) -> bool:
    """A cell the loggers write: a number, empty (not measured) or a boolean (GPS's accepted)."""
    if value in ("", None, "True", "False"):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _fmt(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
