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


def leftover_log(run_dir: Path, locked_by_us: bool = False) -> str | None:
    """A warning when no other process holds `run_dir` but its store's write-ahead log is
    there: the last writer was killed before closing. DuckDB replays the entries it can read
    (a committed write is whole) and drops the rest without a word, so sgi says it."""
    wal = Path(run_dir) / (STORE_FILE + ".wal")
    if not wal.is_file() or (not locked_by_us and holder(run_dir) is not None):
        return None
    return (f"{wal} ({wal.stat().st_size:,} bytes) was left by a process that did not close the store; DuckDB "
            "replays the writes it can read from it and drops the rest (a write cut by a kill)")


def damaged(err: Exception, path: Path | str | None = None) -> StoreError | None:
    """A DuckDB error that says the file itself is broken (bad checksum, not a database), as
    one line naming the file and what to do; None for any other error."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if not any(sign in text for sign in ("Corrupt database", "checksum", "not a valid DuckDB database")):
        return None
    where = f"{path}: " if path else ""
    return StoreError(f"{where}the run store is damaged ({text}); nothing was changed. Restore the file from a "
                      "backup, or start the run again under another name")


def _sql(name: str) -> str:
    return resources.files("sgi.skills").joinpath("sql", name).read_text()


BASE_VERSION = 3  # sql/base.sql: the tables a store had at version 3, the oldest upgraded
# sql/migrations/NNN_name.sql takes a store from version NNN - 1 to NNN; applied in order
MIGRATIONS: dict[int, str] = {
    int(f.name[:3]): f.read_text()
    for f in sorted(resources.files("sgi.skills").joinpath("sql", "migrations").iterdir(), key=lambda f: f.name)
    if f.name.endswith(".sql")
}
SCHEMA_VERSION = max(MIGRATIONS)


def upgrade_sql(found: int | None) -> str:
    """The SQL that makes a new store (found None) or brings one at version `found` to
    SCHEMA_VERSION: base.sql, every migration after `found`, then the views (recreated)."""
    later = [MIGRATIONS[v] for v in sorted(MIGRATIONS) if v > (found or BASE_VERSION)]
    version = f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
    return "\n".join([_sql("base.sql"), *later, _sql("views.sql"), version])


def stand_in_sql(found: int) -> str | None:
    """For reading a store at an older version without writing it: what later versions added,
    as empty temporary tables, and the views over them; None where a later version changed
    an existing table (that store must be opened for writing once, to upgrade it)."""
    later = [MIGRATIONS[v] for v in sorted(MIGRATIONS) if v > found]
    if found < BASE_VERSION or not all(map(_additive, later)):
        return None
    tables = [sql.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS") for sql in later]
    return "\n".join([*tables, _sql("views.sql").replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW")])


def _additive(sql: str) -> bool:
    """Whether a migration only creates tables."""
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", sql).split(";") if s.strip()]
    return all(s.startswith("CREATE TABLE IF NOT EXISTS") for s in statements)


def schema_version(db: duckdb.DuckDBPyConnection, catalog: str | None = None) -> int | None:
    """The schema version of the store `db` has open (or attached as `catalog`); None for an empty one."""
    where = f"table_catalog = '{catalog}' AND " if catalog else ""
    tables = {t for (t,) in db.execute(
        f"SELECT table_name FROM information_schema.tables WHERE {where}table_schema = 'main'").fetchall()}
    if "meta" not in tables:
        return None
    meta = f'"{catalog}".meta' if catalog else "meta"
    row = db.execute(f"SELECT value FROM {meta} WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


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
