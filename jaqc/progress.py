"""Progress reporting for long jobs: a rich progress bar on a terminal, nothing when output is redirected."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any


class Progress:
    """``with Progress("search", total=n) as p: p.advance(loss=..., acc=...)``; quiet off a terminal."""

    def __init__(self, description: str, total: int, enabled: bool | None = None, completed: int = 0) -> None:
        self.description = description
        self.total = total
        self.completed = completed
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
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
        return self

    def advance(self, steps: int = 1, **fields: float | str) -> None:
        """Move forward and show ``fields`` (floats with 4 significant digits)."""
        self.completed += steps
        if self._bar is not None:
            info = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
            self._bar.update(self._task, advance=steps, info=info)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
