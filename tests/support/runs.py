"""`sgi` as a real subprocess: its JSON progress lines to wait on, killing it like a lost
machine, and the store compared row for row with another run's.

TINY_RUN is the small run the end-to-end tests start from (two families, a few items, a
few training steps, no warm-up); each test adds what it is about.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psutil

TINY_RUN = [
    "task.gym.families={add_sub: 30, gcd: 20}",
    "task.gym.probe_per_family=6",
    "task.gym.test_per_family=4",
    "task.gym.general={spell_backward: 2}",
    "student.batch_size=4",
    "warmup.enabled=false",
    "train.steps=4",
    "train.batch_size=4",
]
SGI = [sys.executable, "-m", "sgi.orchestrator"]
INLINE = ("--set", "ray.enabled=false")  # every engine in the sgi process: the same store and weights as on Ray


def sgi(*args: str, cwd: Path, timeout: float = 1800, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`sgi ARGS` to completion, output captured (`env`: the whole environment, when given)."""
    return subprocess.run([*SGI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def as_sets(overrides: list[str]) -> list[str]:
    """Config overrides as `--set` arguments."""
    return [a for o in overrides for a in ("--set", o)]


# Content tables compared row for row; columns that hold wall time or paths are left out.
TABLES = {
    "items": "*", "skills": "*", "item_skills": "*", "attempts": "*", "difficulty": "*", "diagnoses": "*",
    "train_sets": "*", "synthesized": "*", "evals": "*",
    "checkpoints": "round, steps, examples, final_loss",
    "events": "round, stage, message",
    "ledger": "round, stage, status",
}
Event = dict
Predicate = Callable[[Event], bool]


class Run:
    """`sgi` as a subprocess whose JSON progress lines can be waited on."""

    def __init__(self, cmd: list[str], cwd: Path):
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.events: list[Event] = []
        self.other: list[str] = []

    def wait_for(self, predicate: Predicate) -> Event | None:
        """Read events until one matches (returned) or the process ends (None)."""
        for line in self.proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                self.other.append(line)
                continue
            self.events.append(event)
            if predicate(event):
                return event
        return None

    def finish(self) -> int:
        self.wait_for(lambda e: False)
        self.stdout = self.proc.stdout.read()
        return self.proc.wait(timeout=600)

    def kill_if_running(self) -> None:
        """After a failed check: a run left going would compete with the next test for the CPUs."""
        if self.proc.poll() is None:
            self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL the run and every process it started (Ray's too), like a machine losing the job."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc.stderr.close()
        self.proc.stdout.close()


def stage(round_: int, name: str, status: str = "running") -> Predicate:
    return lambda e: e.get("event") == "stage" and (e["round"], e["stage"], e["status"]) == (round_, name, status)


def batch(bar: str, at_least: int = 1) -> Predicate:
    """A committed batch of a bar whose title contains `bar`, with work still left."""
    return lambda e: e.get("event") == "progress" and bar in e["bar"] and at_least <= e["done"] < e["total"]


def wait_released(store: Path, timeout: float = 60) -> None:
    """Until no process holds the DuckDB file (Ray's workers die a moment after their driver)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        holders = [p for p in psutil.process_iter(["pid"]) if _holds(p, store)]
        if not holders:
            return
        time.sleep(0.5)
    raise AssertionError(f"{store} still held by {holders}")


def _holds(proc: psutil.Process, path: Path) -> bool:
    try:
        return any(f.path == str(path) for f in proc.open_files())
    except (psutil.Error, OSError):
        return False


def snapshot(store: Path) -> dict[str, list[tuple]]:
    """Every content table, sorted, plus a digest of each round's trained weights."""
    db = duckdb.connect(str(store), read_only=True)
    try:
        tables = {t: sorted(db.execute(f"SELECT {cols} FROM {t}").fetchall(), key=repr) for t, cols in TABLES.items()}
        paths = db.execute("SELECT round, path FROM checkpoints ORDER BY round").fetchall()
    finally:
        db.close()
    tables["weights"] = [(r, _digest(Path(p) / "model.safetensors")) for r, p in paths]
    return tables


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same(store: Path, reference: dict[str, list[tuple]]) -> None:
    got = snapshot(store)
    for table, rows in reference.items():
        assert len(got[table]) == len(rows), f"{table}: {len(got[table])} rows, uninterrupted run has {len(rows)}"
        assert got[table] == rows, f"{table} differs from the uninterrupted run"
    # Training resumed from its saved state gives the same weights, bit for bit (CPU, fixed seed):
    # "weights" above compares each round's merged model file.
