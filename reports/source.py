"""Where the report reads a run from, without ever taking the run's store from it.

DuckDB lets no second process open a file another process holds read-write, read-only
included. So the report never opens a live run's `sgi.duckdb`: the run itself publishes
`report.duckdb`, a whole copy written beside the store after every finished stage and at
most every SNAPSHOT_EVERY_S seconds while a stage commits batches (write, then rename).
When no process holds the run, the report makes its own copy from the store, in the user
cache (a run directory may be read-only), and reads that. Either way every page reads a
consistent copy and shows how old it is.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sgi.skills.runs import (SNAPSHOT_FILE, STORE_FILE, StoreError, copy_database, damaged, holder, schema_version,
                             upgrade_sql)


@dataclass(frozen=True)
class Snapshot:
    """A copy of a run's store that this process may open, and how it came to be."""

    run_dir: Path
    path: Path
    live: str | None  # who holds the run now ("pid 12 ... (sgi run)"), None for a stopped run
    taken_at: datetime.datetime

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A cursor on this copy. A copy never changes once renamed into place, so one read-only
        connection per copy is kept, with the store's views computed once into temporary
        tables of the same names (each page would otherwise recompute them: ~0.1 s to open,
        and most of a page's time at 100k attempts)."""
        key = (str(self.path), self.path.stat().st_mtime_ns)
        with _LOCK:
            if key not in _OPEN:
                for old in [k for k in _OPEN if k[0] == key[0]]:  # a newer copy replaced this one
                    _OPEN.pop(old).close()
                db = duckdb.connect(key[0], read_only=True)
                for view in MATERIALIZED:
                    db.execute(f"CREATE TEMP TABLE {view} AS SELECT * FROM {view}")
                _OPEN[key] = db
            return _OPEN[key].cursor()


MATERIALIZED = ("profiles", "skill_evals", "round_summary", "compose_summary")  # the store's views
_OPEN: dict[tuple[str, int], duckdb.DuckDBPyConnection] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("SGI_CACHE", Path.home() / ".cache" / "sgi")) / "report-snapshots"


def snapshot(run_dir: Path) -> Snapshot:
    """The freshest readable copy of `run_dir`'s store (see the module docstring)."""
    run_dir = Path(run_dir)
    store = run_dir / STORE_FILE
    if not store.is_file():
        raise StoreError(f"{run_dir}: no run store here (is this a run directory?)")
    live = published(run_dir)
    if live:
        path, held_by = live
        return Snapshot(run_dir, path, held_by, _mtime(path))
    own = cache_dir() / (hashlib.sha256(str(store.resolve()).encode()).hexdigest()[:16] + ".duckdb")
    if not own.is_file() or _mtime(own) < max(_mtime(p) for p in (store, store.with_name(STORE_FILE + ".wal"))
                                               if p.exists()):
        _copy_store(store, own)
    return Snapshot(run_dir, own, None, _mtime(own))


def published(run_dir: Path) -> tuple[Path, str] | None:
    """For a run a process works on now: the copy it publishes and who holds it; None for a
    stopped run. A live run with no copy yet is an error saying so."""
    live = holder(run_dir)
    if live is None:
        return None
    path = Path(run_dir) / SNAPSHOT_FILE
    if not path.is_file():
        raise StoreError(f"{run_dir} is in use by {live} and has not published a snapshot yet "
                         "(it writes one when its first stage finishes); try again shortly")
    return path, live


def _copy_store(store: Path, target: Path) -> None:
    """Copy a store no process holds (read-only) to `target`, with the current schema's views."""
    target.parent.mkdir(parents=True, exist_ok=True)
    db = duckdb.connect()
    try:
        db.execute("ATTACH ? AS store (READ_ONLY)", [str(store)])
        # A store written by an older sgi lacks the newer tables and views: its copy is upgraded.
        copy_database(db, "store", target, then=upgrade_sql(schema_version(db, "store")))
    except duckdb.Error as err:
        problem = damaged(err, store)
        if problem is None and not isinstance(err, duckdb.IOException):
            raise
        raise problem or StoreError(f"{store}: cannot read the run store ({str(err).splitlines()[0]})") from None
    finally:
        db.close()


def _mtime(path: Path) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(path.stat().st_mtime)
