"""Live progress of long work on the console: the training bar (steps/total, steps/s, ETA and the
recent return) and the phases around it (DDP solves, evaluation episodes, video frames: count/total,
ETA and what it is doing now), or, for one opaque call, what it does and how long it took.

On a terminal it is a rich live bar whose columns fit the console's width: at narrow widths the bar,
the elapsed time and the detail text go first, never a digit of the count, the rate or the ETA.
Elsewhere (a pipe, a log file) a phase prints plain lines instead (when it starts, at most every
`every` seconds while it advances, and when it ends), and the training bar its final state once.
The algorithm cores never print: the run layer passes callbacks down and drives these bars."""

from __future__ import annotations

import time
from types import TracebackType

from rich import get_console
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

RATE_WIDTH, ETA_WIDTH, RETURN_WIDTH, ELAPSED_WIDTH = 15, 11, 14, 7
"""The usual widths of columns ("  2,345 steps/s", "ETA 0:12:34", "return -1234.5", "0:00:00"); a wider
value is kept whole and the title or the detail gives way."""
MIN_BAR, MAX_BAR, MIN_DETAIL, MIN_TITLE = 10, 40, 16, 8


def clock(seconds: float) -> str:
    """H:MM:SS."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def eta(elapsed: float, done: float, start: float, total: float | None) -> str:
    """The time left at the mean rate so far, as H:MM:SS, or -:--:-- before the first step."""
    if total is None or done <= start or elapsed <= 0:
        return "-:--:--"
    return clock(elapsed * max(0.0, total - done) / (done - start))


class _EtaColumn(ProgressColumn):
    """ETA from the task's mean rate since its start (ticks live between updates)."""

    def render(self, task: Task) -> Text:
        return Text("ETA " + eta(task.elapsed or 0.0, task.completed, task.fields["origin"], task.total), style="progress.remaining")


def _fixed(fmt: str) -> TextColumn:
    """A column never cut (numbers)."""
    return TextColumn(fmt, table_column=Column(no_wrap=True))


class _Shrinking(ProgressColumn):
    """The task's description (field None) or a text field, as a column that gives way when the
    line is short: one line, cut with an ellipsis (taken as plain text, never as markup)."""

    def __init__(self, field: str | None = None, style: str = "") -> None:
        self.field, self.style = field, style
        super().__init__(table_column=Column(no_wrap=False))

    def render(self, task: Task) -> Text:
        text = task.description if self.field is None else str(task.fields[self.field])
        return Text(text, style=self.style, no_wrap=True, overflow="ellipsis")


class TrainProgress:
    """Progress of `total` counted steps from `start`: training steps (training=True: steps/s and
    the recent return) or a phase's conditions, episodes or frames in `unit` (training=False: a
    detail text of what it is doing now); total=None: one opaque call (elapsed time only). A
    context manager; disabled, it does nothing. `console` defaults to rich's (stdout). transient:
    the bar leaves no trace when it ends (a terminal erases it; elsewhere it prints nothing).
    Off a terminal a line is printed at most every `every` seconds, and (milestones) at each step."""

    def __init__(self, title: str, total: int | None, start: int = 0, enabled: bool = True, *, unit: str = "steps",
                 training: bool = True, console: Console | None = None, every: float = 5.0, transient: bool = False,
                 milestones: bool = False) -> None:
        self.console = console or get_console()
        enabled = enabled and (self.console.is_terminal or not transient)
        self.enabled, self.title, self.total, self.unit = enabled, title, total, unit
        self._start, self._done, self._detail, self._training, self._every = start, start, "", training, every
        self._milestones = milestones
        self._t0 = self._last_line = time.perf_counter()
        self._running = False
        if not enabled:
            return
        self._live = self.console.is_terminal or training  # a training bar elsewhere: rich prints its final state once
        if self._live:
            self._progress = Progress(*self._columns(self.console.width), console=self.console, transient=transient)
            self._task = self._progress.add_task(self.title, total=total, completed=start, origin=start, count=self._count(),
                                                 rate="      -", ret="-", detail="")

    def _count(self) -> str:
        if self.total is None:
            return ""
        width = len(f"{self.total:,}")
        return f"{self._done:>{width},}/{self.total:,}" + (f" {self.unit}" if self.unit and not self._training else "")

    def _columns(self, width: int) -> list[ProgressColumn]:
        """The columns that fit `width`: title, count, rate, ETA and return (training) or title,
        count, ETA and detail (a phase), then as room allows the elapsed time and a bar. The title
        and the detail are the columns that shrink (cut with an ellipsis) when room is short; below
        about 70 columns the training bar leaves out the return, then the rate."""
        counted = self.total is not None
        required = [len(self._count())] if counted else []
        if self._training:
            required += [RATE_WIDTH, ETA_WIDTH, RETURN_WIDTH]
        elif counted:
            required += [ETA_WIDTH]
        else:
            required += [ELAPSED_WIDTH]  # an opaque call: its elapsed time is its progress
        wanted_detail = 0 if self._training else MIN_DETAIL + 1
        show_return = show_rate = self._training
        if self._training and width - 1 - MIN_TITLE - sum(w + 1 for w in required) < 0:  # too narrow: the return goes, then the rate
            show_return = False
            required.pop()
            if width - 1 - MIN_TITLE - sum(w + 1 for w in required) < 0:
                show_rate = False
                required.pop(1)
        room = width - 1 - len(self.title) - sum(w + 1 for w in required) - wanted_detail
        elapsed = counted and room >= ELAPSED_WIDTH + 1
        room -= ELAPSED_WIDTH + 1 if elapsed else 0
        bar_width = min(MAX_BAR, room - 1)
        columns: list[ProgressColumn] = [_Shrinking(style="bold")]
        if counted and bar_width >= MIN_BAR:
            columns.append(BarColumn(bar_width=bar_width))
        if counted:
            columns.append(_fixed("{task.fields[count]}"))
        if show_rate:
            columns.append(_fixed("{task.fields[rate]} steps/s"))
        if elapsed or not counted:
            columns.append(TimeElapsedColumn(table_column=Column(no_wrap=True)))
        if counted:
            columns.append(_EtaColumn(table_column=Column(no_wrap=True)))
        if show_return:
            columns.append(_fixed("return {task.fields[ret]}"))
        elif not self._training:
            columns.append(_Shrinking("detail"))
        return columns

    def __enter__(self) -> "TrainProgress":
        if self.enabled:
            self._t0 = self._last_line = time.perf_counter()
            self._running = True
            if self._live:
                self._progress.start()
            else:
                what = "" if self.total is None else f" ({self.total:,}{' ' + self.unit if self.unit else ''})"
                self._line(f"{self.title}{what} ...")
        return self

    def _line(self, text: str) -> None:
        print(text, file=self.console.file, flush=True)
        self._last_line = time.perf_counter()

    def advance(self, step: int | None = None, recent_return: float | None = None, detail: str | None = None) -> None:
        """Set the count to `step` (None: keep it), the recent return (training) or what the
        phase is doing now (`detail`)."""
        if not self.enabled or not self._running:
            return
        stepped = step is not None and step != self._done
        self._done = self._done if step is None else step
        self._detail = self._detail if detail is None else detail
        elapsed = time.perf_counter() - self._t0
        if not self._live:
            if (stepped and self._milestones and self._done != self.total) or time.perf_counter() - self._last_line >= self._every:
                self._line(self._status(elapsed))
            return
        fields: dict = {"count": self._count()}
        if self._training:
            task = self._progress.tasks[0]
            task_elapsed = task.elapsed or 0.0
            fields["rate"] = f"{(self._done - self._start) / task_elapsed:>7,.0f}" if task_elapsed > 0 else "      -"
            fields["ret"] = f"{recent_return:.1f}" if recent_return is not None else "-"
        else:
            fields["detail"] = self._detail
        self._progress.update(self._task, completed=self._done, **fields)

    def _status(self, elapsed: float) -> str:
        """One plain line of where the phase stands."""
        parts = [f"{self.title}:"]
        if self.total is not None:
            parts.append(f"{self._count()},")
        parts.append(f"{clock(elapsed)} elapsed")
        if self.total is not None:
            parts[-1] += ","
            parts.append(f"ETA {eta(elapsed, self._done, self._start, self.total)}")
        return " ".join(parts) + (f"  ({self._detail})" if self._detail else "")

    def stop(self, failed: bool = False) -> None:
        """End the display (its final state stays on the console); later calls do nothing.
        `failed`: the phase ended by an exception, so an opaque call's line says so, not "done"."""
        if not self.enabled or not self._running:
            return
        self._running = False
        elapsed = time.perf_counter() - self._t0
        if self._live:
            self._progress.stop()
        elif self.total is None:
            self._line(f"{self.title}: {'stopped after' if failed else 'done in'} {elapsed:.1f} s")
        else:
            self._line(f"{self.title}: {self._count()} in {elapsed:.1f} s" + (f"  ({self._detail})" if self._detail else ""))

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop(failed=exc_type is not None)


def phase(title: str, total: int | None = None, enabled: bool = True, unit: str = "", console: Console | None = None,
          every: float = 5.0, transient: bool = False, milestones: bool = False) -> TrainProgress:
    """A bar for one phase of a run: `total` steps in `unit` (None: one opaque call, shown with
    its elapsed time and, off a terminal, as a line before it and one with its duration after)."""
    return TrainProgress(title, total, 0, enabled, unit=unit, training=False, console=console, every=every, transient=transient,
                         milestones=milestones)


class Phases:
    """Shows a core's progress reports, on_progress(phase, done, total, detail) (`algos.gps.loop.
    InitProgress`), as one `phase` bar per phase: a report of another phase ends the bar before.
    Its steps are few and slow (a DDP solve per condition), so off a terminal each gets a line.
    A context manager (its end ends the last bar); disabled, it does nothing; transient as `phase`'s."""

    def __init__(self, enabled: bool = True, console: Console | None = None, every: float = 5.0, transient: bool = False) -> None:
        self.enabled, self.console, self.every, self.transient = enabled, console, every, transient
        self._name: str | None = None
        self._bar: TrainProgress | None = None

    def __call__(self, name: str, done: int, total: int | None, detail: str = "") -> None:
        if not self.enabled:
            return
        if name != self._name:
            self.close()
            self._name, self._bar = name, phase(name, total, console=self.console, every=self.every, transient=self.transient,
                                                milestones=True).__enter__()
        assert self._bar is not None
        if total is None and done >= 1:  # the opaque call returned
            self.close()
        else:
            self._bar.advance(done, detail=detail)

    def close(self, failed: bool = False) -> None:
        if self._bar is not None:
            self._bar.stop(failed)
        self._name, self._bar = None, None

    def __enter__(self) -> "Phases":
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close(failed=exc_type is not None)
