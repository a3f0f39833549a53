"""A run directory's guards: one process at a time, and no silent change of a run's config.

    with RunLock(run_dir):          # a second `sgi run` on it says who holds it
        ...
    check_config(stored, new, started)   # which changed fields would alter finished work
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

import yaml

from sgi.orchestrator import registry
from sgi.orchestrator.registry import HARMLESS, field_stages, position, stages_of
from sgi.skills.runs import LOCK_FILE, SETUP_ROUND, StoreError, describe_holder, holder, read_holder

class RunLocked(StoreError):
    """Another live process works on this run directory."""


class ConfigChanged(StoreError):
    """A resume with a config that would alter finished work."""


def parse_stage(text: str) -> tuple[int, str]:
    """`--force-from` syntax: 'select' (round 0), '1:train' (round 1), 'setup:label'."""
    where, sep, stage = text.rpartition(":")
    setup_names, round_names = ({s.name for s in stages_of(r)} for r in (SETUP_ROUND, 0))
    if not sep:
        round_ = SETUP_ROUND if text in setup_names and text not in round_names else 0
        stage = text
    elif where == "setup":
        round_ = SETUP_ROUND
    else:
        try:
            round_ = int(where)
        except ValueError:
            raise StoreError(f"--force-from {text!r}: expected STAGE, ROUND:STAGE or setup:STAGE") from None
    try:
        position(round_, stage)
    except ValueError as err:
        raise StoreError(f"--force-from {text!r}: {err}") from None
    return round_, stage


def changed_fields(old_yaml: str, new_yaml: str) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two dumped configs: key -> (old, new)."""
    old, new = _flatten(yaml.safe_load(old_yaml) or {}), _flatten(yaml.safe_load(new_yaml) or {})
    return {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}


def check_config(run_dir: Path, changes: dict[str, tuple[Any, Any]], started: list[tuple[int, str]]) -> None:
    """Refuse changes that would alter a stage already started, naming the fields."""
    blocked = []
    for key, (old, new) in changes.items():
        stage = stage_of(key)
        if stage is None:
            continue
        if registry.stage(*stage).own_rounds:
            rounds = {r for r, name in started if name == stage[1]}
            hit = [s for s in started if s[0] in rounds and position(*s) >= position(s[0], stage[1])]
        else:
            hit = [s for s in started if position(*s) >= position(*stage)]
        if hit:
            blocked.append((key, old, new, min(hit, key=lambda s: position(*s))))
    if not blocked:
        return
    fields = "; ".join(f"{k} ({_short(o)} -> {_short(n)})" for k, o, n, _ in blocked)
    round_, stage = min((b[3] for b in blocked), key=lambda s: position(*s))
    where = f"setup:{stage}" if round_ == SETUP_ROUND else f"{round_}:{stage}"
    raise ConfigChanged(
        f"{run_dir}: the config changed since this run started: {fields}; that would alter finished work "
        f"from {where} on. Resume with the stored config (`sgi resume {run_dir}`), start a new run "
        f"(--set name=...), or redo on purpose with --force-from {where}"
    )


def stage_of(key: str) -> tuple[int, str] | None:
    """The first stage whose output config field `key` decides (None: it changes nothing computed)."""
    if any(key == h or key.startswith(h + ".") for h in HARMLESS):
        return None
    fields = field_stages()
    matches = [p for p in fields if key == p or key.startswith(p + ".")]
    return fields[max(matches, key=len)] if matches else (SETUP_ROUND, "task")  # unknown: assume all


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict) or not data:
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RunLock:
    """An exclusive `flock` on `<run_dir>/.lock`, holding who took it.

    The kernel drops a flock when its process dies, so a lock file left by a killed run is
    not a lock: the next run takes it and says whose it was. A live holder is named.
    """

    def __init__(self, run_dir: Path, command: str = "sgi run"):
        self.run_dir = Path(run_dir)
        self.command = command
        self.path = self.run_dir / LOCK_FILE
        self.previous: dict[str, Any] | None = None  # a dead holder's record, if one was left
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a .lock that is a link must not truncate the file it points to
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise StoreError(f"{self.path}: the run lock is a symbolic link; remove it (sgi only uses a "
                                 "regular file there)") from None
            raise StoreError(f"{self.run_dir}: cannot use the run directory ({err.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StoreError(f"{self.path}: the run lock is not a regular file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(fd)
            os.close(fd)
            raise RunLocked(f"{self.run_dir} is in use by {describe_holder(holder)}; wait for it, or stop that process") from None
        self.previous = read_holder(fd) or None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": self.command}
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except OSError as err:
            self.__exit__(None, None, None)
            raise StoreError(f"{self.run_dir}: cannot write the run directory ({err.strerror})") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty lock file means a clean exit
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def ensure_free(run_dir: Path, wanted: str) -> None:
    """Raise RunLocked naming the holder if a live process works on `run_dir` (DuckDB would only say 'lock')."""
    held_by = holder(run_dir)
    if held_by:
        raise RunLocked(f"{run_dir} is in use by {held_by}; {wanted} once it stops")
