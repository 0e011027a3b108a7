"""Progress reporting for long jobs: a rich progress bar on a terminal, plain lines when output is redirected.

Off a terminal (a log file, CI, ``make demo | tee``) a line goes to stderr at every tenth of the work and at least
every minute, with the elapsed time and an estimate of the time left, so a long search never looks hung.
``enabled=False`` is silent (tests, library calls that report otherwise).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

#: Off a terminal, the longest pause between two progress lines (seconds).
LINE_INTERVAL_S = 60.0


def _clock_text(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _fields_text(fields: dict[str, float | str]) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())


class Progress:
    """``with Progress("search", total=n) as p: p.advance(loss=..., acc=...)``: a bar on a terminal, lines off it
    (``enabled=None``, the default), nothing with ``enabled=False``, a bar with ``enabled=True``."""

    def __init__(
        self,
        description: str,
        total: int,
        enabled: bool | None = None,
        completed: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.total = total
        self.completed = completed
        self.stream = stream
        tty = sys.stderr.isatty()
        self.mode = "off" if enabled is False else ("bar" if enabled or (enabled is None and tty) else "lines")
        self._clock = clock
        self._bar: Any = None
        self._task: Any = None
        self._start_time = 0.0
        self._start_step = completed
        self._last_line = 0.0
        self._last_decile = -1
        self._fields: dict[str, float | str] = {}

    def __enter__(self) -> Progress:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
            )  # fmt: skip
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.completed, info="")
        elif self.mode == "lines":
            self._start_time = self._last_line = self._clock()
            self._last_decile = self._decile()
            resumed = f", resuming at {self.completed}" if self.completed else ""
            self._write(f"{self.description}: {self.total} steps{resumed}")
        return self

    def _decile(self) -> int:
        return self.completed * 10 // self.total if self.total > 0 else 10

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def _line(self, now: float) -> str:
        elapsed = now - self._start_time
        done = self.completed - self._start_step
        share = f" ({self.completed / self.total:.0%})" if self.total > 0 else ""
        text = f"{self.description}: {self.completed}/{self.total}{share}, {_clock_text(elapsed)} elapsed"
        if 0 < done and self.completed < self.total:
            text += f", about {_clock_text(elapsed / done * (self.total - self.completed))} left"
        info = _fields_text(self._fields)
        return text + (f"  {info}" if info else "")

    def advance(self, steps: int = 1, **fields: float | str) -> None:
        """Move forward and show ``fields`` (floats with 4 significant digits)."""
        self.completed += steps
        self._fields = dict(fields)
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, info=_fields_text(fields))
        elif self.mode == "lines":
            now = self._clock()
            decile = self._decile()
            if decile > self._last_decile or now - self._last_line >= LINE_INTERVAL_S:
                self._last_decile, self._last_line = decile, now
                self._write(self._line(now))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
        elif self.mode == "lines" and exc_type is None:
            elapsed = self._clock() - self._start_time
            self._write(
                f"{self.description}: done, {self.completed - self._start_step} steps in {_clock_text(elapsed)}"
            )
