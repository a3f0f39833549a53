"""What every package knows about a run: the files in its directory, its setup round, who
holds it, and how its store is read from outside the process that writes it.

The orchestrator writes runs and the report reads them; both take these names from here, so
the report never imports the orchestrator.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

STORE_FILE = "sgi.duckdb"  # in each run directory
# A consistent copy of the store that other processes may open while the run holds the
# real one (DuckDB lets no second process in): the report server reads it.
SNAPSHOT_FILE = "report.duckdb"
LOCK_FILE = ".lock"
SETUP_ROUND = -1  # stages that happen once per run (task, labels, warm-up)


def round_label(round_: int, setup: str = "warm-up") -> str:
    """A round as text: "round 2", or for SETUP_ROUND what it stands for where it is shown
    ("warm-up": the warm-up student's results; "setup": the run's once-only stages)."""
    return setup if round_ == SETUP_ROUND else f"round {round_}"


def round_cell(round_: int, setup: str = "warm-up") -> str:
    """A round in a table's round column: "2", or `setup` for SETUP_ROUND."""
    return setup if round_ == SETUP_ROUND else str(round_)


class StoreError(RuntimeError):
    """The run's store cannot be used as asked; the message says why and what to do."""


def named_queries(package: str, filename: str) -> dict[str, str]:
    """The queries of a packaged SQL file, each started by a `-- name: X` line."""
    text = resources.files(package).joinpath(filename).read_text()
    parts = re.split(r"^-- name: (\w+)\s*$", text, flags=re.MULTILINE)
    return {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2])}


def copy_database(db: duckdb.DuckDBPyConnection, catalog: str, target: Path, then: str = "") -> None:
    """Write a whole copy of `catalog` (attached to `db`) to `target`: a temporary file beside
    it, renamed into place, so a reader only ever opens a complete copy. `then` is SQL run
    inside the copy before it is closed."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    try:
        db.execute("ATTACH ? AS copy", [str(partial)])
        try:
            db.execute(f'COPY FROM DATABASE "{catalog}" TO copy')
            if then:
                db.execute("USE copy")
                db.execute(then)
                db.execute(f'USE "{catalog}"')
        finally:
            db.execute("DETACH copy")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def holder(run_dir: Path) -> str | None:
    """Who works on `run_dir` now ("pid 12 on host since ... (sgi run)"), or None."""
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return describe_holder(read_holder(fd))
    finally:
        os.close(fd)


def read_holder(fd: int) -> dict[str, Any]:
    """The lock file's record of its holder (pid, host, since, command); {} if unreadable."""
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}


def describe_holder(holder: dict[str, Any]) -> str:
    """A holder record as a user reads it: "pid 12 on host since ... (sgi run)"."""
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} ({holder.get('command')})"
