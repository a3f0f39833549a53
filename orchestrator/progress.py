"""Progress bars that count items against a known total (rich), or silence for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Reporter:
    def __init__(self, console: Console | None = None, *, quiet: bool = False):
        self.console = console or Console(stderr=True)
        self.quiet = quiet

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """Yields `advance(n)`; the bar disappears into one summary line when done."""
        if self.quiet:
            yield lambda n=1: None
            return
        columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task, n)
