"""What every stage shares: the run's context and asking the teacher with bounded retries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sgi.orchestrator.config import RunConfig
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.store import Store
from sgi.skills import checks
from sgi.skills.interfaces import Task, Teacher, TeacherOutputError
from sgi.skills.records import Item, Label
from sgi.skills.runs import SETUP_ROUND


@dataclass
class Context:
    """What every stage may use: the config, the task, the engines and the store."""

    cfg: RunConfig
    task: Task
    store: Store  # or a Remote to the store actor, which answers the same methods
    teacher: Teacher  # or a Remote to the teacher actor
    reporter: Reporter


def ask_teacher(ctx: Context, round_: int, stage: str, items: Sequence[Item], method: str, *args: Any) -> Any:
    """`ctx.teacher.<method>(*args)`, retried while its output is unusable.

    After `teacher.max_retries` retries the batch is given up: an event names its items
    and the error, and None is returned so the stage goes on without them (they stay
    unlabelled or undiagnosed) instead of crashing the run.
    """
    for attempt in range(ctx.cfg.teacher.max_retries + 1):
        try:
            return getattr(ctx.teacher, method)(*args)
        except TeacherOutputError as err:
            problem = f"{err}"
    ids = ", ".join(i.item_id for i in items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
    ctx.store.log(round_, stage, f"teacher error after {attempt + 1} tries on {ids}: {problem}")
    return None


def valid_labels(ctx: Context, labels: Sequence[Label], names: set[str]) -> list[Label]:
    """The teacher's labels that checks.check_labels keeps; what it drops goes to the events."""
    checked = checks.check_labels(labels, names)
    for note in checked.notes:
        ctx.store.log(SETUP_ROUND, "label", note)
    return checked.kept


def batches(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]
