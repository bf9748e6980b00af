"""Training logs: `metrics.csv` (one row per update) and TensorBoard events in `tb/`.

On resume from a checkpoint at step S, rows with step > S (work lost since that checkpoint) are
dropped from the CSV and purged from TensorBoard, so the resumed run appends without duplicates
or gaps.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from tensorboardX import SummaryWriter

BASE_COLUMNS = ("step", "wall_time", "episode_return_mean", "episode_length_mean", "episodes", "steps_per_second")


class MetricsLogger:
    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.csv"
        self.columns: list[str] | None = None
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                rows = [r for r in reader if int(float(r["step"])) <= resume_step]
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(rows)
        elif self.path.exists():
            self.path.unlink()
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=None if resume_step is None else resume_step + 1)

    def log(self, row: dict[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(BASE_COLUMNS) + sorted(k for k in row if k not in BASE_COLUMNS)
            with open(self.path, "w", newline="") as f:
                csv.DictWriter(f, self.columns).writeheader()
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow({k: _fmt(row.get(k)) for k in self.columns})
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.tb.close()


def _fmt(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
