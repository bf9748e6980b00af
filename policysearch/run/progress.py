"""A live progress bar for long work: steps, steps/s, ETA and the recent return."""

from __future__ import annotations

from types import TracebackType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, title: str, total: int, start: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self._start = start
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>7} steps/s"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("return {task.fields[ret]}"),
                transient=False,
            )
            self._task = self._progress.add_task(title, total=total, completed=start, rate="-", ret="-")

    def __enter__(self) -> "TrainProgress":
        if self.enabled:
            self._progress.start()
        return self

    def advance(self, step: int, recent_return: float | None) -> None:
        if not self.enabled:
            return
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{(step - self._start) / elapsed:,.0f}" if elapsed > 0 else "-"
        ret = f"{recent_return:.1f}" if recent_return is not None else "-"
        self._progress.update(self._task, completed=step, rate=rate, ret=ret)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.enabled:
            self._progress.stop()
