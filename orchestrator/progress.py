"""What a run shows while it works: rich bars, JSON lines for programs, or nothing.

Bars on a console that is not a terminal (a log file, `sgi logs`, CI) are plain lines
instead: one when a stage starts, one every ~10% of a bar, one when it ends.

It also carries the graceful-stop flag: after SIGINT/SIGTERM the next `advance` (called
once a batch is committed) raises `StopRequested`, so a stop never loses finished work.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sgi.orchestrator.terminal import as_markup

Mode = Literal["bars", "json", "quiet"]


class StopRequested(Exception):
    """A graceful stop: the batch in hand was committed; the run can be resumed."""


class Reporter:
    def __init__(self, console: Console | None = None, *, quiet: bool = False, mode: Mode | None = None):
        self.console = console or Console(stderr=True, emoji=False)  # notes quote data (stage details)
        self.mode: Mode = mode or ("quiet" if quiet else "bars")
        self.stop = threading.Event()
        self.signum: int | None = None  # the signal that asked for the stop
        self.catching = False
        # rich draws no live bar off a terminal: a log would show nothing until a bar ended
        self.lines = self.mode == "bars" and not self.console.is_terminal

    def catch_signals(self) -> None:
        """SIGINT/SIGTERM set the stop flag; a second one aborts (KeyboardInterrupt).

        Called again once Ray has started: its core worker installs its own SIGTERM handler
        in this process, which would end the run without finishing the batch.
        """
        if threading.current_thread() is threading.main_thread():
            self.catching = True
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.signum = signum
        self.stop.set()
        Console(stderr=True).print(f"{signal.Signals(signum).name}: stopping after the current batch "
                                   "(send it again to abort)", highlight=False)

    def note(self, message: str) -> None:
        if self.mode == "bars":
            self.console.print(message)

    def started(self, label: str, stage: str) -> None:
        """A stage began; said only in a log, where no live bar shows it."""
        if self.lines:
            self.console.print(f"{label} {stage}: started", highlight=False)

    def warn(self, message: str) -> None:
        """Something the user should know even without bars (a JSON event in json mode)."""
        if self.mode == "json":
            self.event(event="warning", message=message)
        else:
            self.console.print(f"[yellow]warning:[/yellow] {as_markup(message)}", highlight=False)  # quotes paths

    def event(self, **fields: object) -> None:
        """One JSON line on stderr (json mode only): stage starts and ends, bar progress."""
        if self.mode == "json":
            print(json.dumps(fields), file=sys.stderr, flush=True)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested(f"{signal.Signals(self.signum or signal.SIGINT).name} received, the batch in hand committed")

    @contextmanager
    def bar(self, description: str, total: int, *, stoppable: bool = True) -> Iterator[Callable[[int], None]]:
        """Yields `advance(n)`; call it after each committed batch. The bar ends as one summary line."""
        done = 0

        def tick(n: int = 1) -> None:
            nonlocal done
            done += n
            self.event(event="progress", bar=description, done=done, total=total)
            if stoppable:
                self.check_stop()

        if self.mode != "bars":
            yield tick
            return
        if self.lines:
            with self._lines(description, total, tick) as advance:
                yield advance
            return
        columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)

            def advance(n: int = 1) -> None:
                progress.advance(task, n)
                tick(n)

            yield advance

    @contextmanager
    def _lines(self, description: str, total: int, tick: Callable[[int], None]) -> Iterator[Callable[[int], None]]:
        """A bar as log lines: a line each time another tenth of the total is done, and one at the end."""
        done, shown, start = 0, 0, time.perf_counter()

        def line() -> None:
            percent = f" ({100 * done // total}%)" if total else ""
            self.console.print(f"  {description}: {done}/{total}{percent}, {time.perf_counter() - start:.0f} s",
                               highlight=False, markup=False)

        def advance(n: int = 1) -> None:
            nonlocal done, shown
            done += n
            if total and done < total and 10 * done // total > shown:
                shown = 10 * done // total
                line()
            tick(n)

        yield advance
        line()
