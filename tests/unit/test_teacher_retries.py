"""Unusable teacher output (what an LLM teacher returns on a bad day) is retried, then recorded, never fatal.

The teacher here is the real rules teacher behind a wrapper that answers with a parse
error for its first calls, the way a flaky endpoint would; the stages, store and task are real.
"""

from __future__ import annotations

import pytest

from sgi.orchestrator import build, stages
from sgi.orchestrator.config import load_config
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.store import Store
from sgi.skills.interfaces import TeacherOutputError
from sgi.skills.rules import RulesTeacher
from sgi.skills.runs import SETUP_ROUND


class Flaky:
    """Fails the first `failures` calls of `method` with TeacherOutputError, then answers like `inner`."""

    def __init__(self, inner, method: str, failures: int):
        self.inner, self.method, self.failures, self.calls = inner, method, failures, 0

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if name != self.method:
            return target

        def call(*args):
            self.calls += 1
            if self.calls <= self.failures:
                raise TeacherOutputError("expected a JSON object with 'skills', got: 'Sure! Here are the skills'")
            return target(*args)

        return call


@pytest.fixture
def context(tmp_path):
    def make(teacher):
        cfg = load_config(None, ["task.gym.families={add_sub: 20, gcd: 10}", "task.gym.probe_per_family=4",
                                 "task.gym.test_per_family=2", "task.gym.general={}", "teacher.batch_size=8",
                                 "teacher.max_retries=2"])
        store = Store(tmp_path / "sgi.duckdb")
        ctx = stages.Context(cfg=cfg, task=build.build_task(cfg), store=store, teacher=teacher,
                             reporter=Reporter(quiet=True))
        stages.load_task(ctx)
        return ctx

    return make


def test_a_failure_within_the_retries_loses_nothing(context):
    teacher = Flaky(RulesTeacher(), "label", failures=2)
    ctx = context(teacher)
    stages.label_items(ctx)
    assert len(ctx.store.labels()) == len(ctx.store.items())  # every item labelled after the retries
    assert not [e for e in ctx.store.db.execute("SELECT message FROM events").fetchall() if "teacher error" in e[0]]


def test_a_batch_that_keeps_failing_is_recorded_and_skipped(context):
    teacher = Flaky(RulesTeacher(), "label", failures=3)  # the first batch fails 1 + 2 retries
    ctx = context(teacher)
    detail = stages.label_items(ctx)
    items = ctx.store.items()
    labelled = ctx.store.labels()
    assert len(labelled) == len(items) - 8 and "8 items unlabelled" in detail
    (message,) = [m for (m,) in ctx.store.db.execute(
        "SELECT message FROM events WHERE round = ? AND stage = 'label'", [SETUP_ROUND]).fetchall()]
    assert message.startswith("teacher error after 3 tries on ") and "and 3 more" in message
    assert "Sure! Here are the skills" in message


def test_a_catalogue_the_teacher_cannot_build_stops_the_stage_with_a_clear_error(context):
    teacher = Flaky(RulesTeacher(), "build_catalogue", failures=3)  # 1 + 2 retries, all unusable
    ctx = context(teacher)
    with pytest.raises(TeacherOutputError, match="could not build a skill catalogue.*sgi resume"):
        stages.label_items(ctx)
    assert teacher.calls == 3 and ctx.store.catalogue() == [] and ctx.store.labels() == {}
    (message,) = [m for (m,) in ctx.store.db.execute("SELECT message FROM events WHERE stage = 'label'").fetchall()]
    assert message.startswith("teacher error after 3 tries")
    ctx.teacher = RulesTeacher()  # the teacher is back: the same stage now succeeds
    assert "skills" in stages.label_items(ctx) and ctx.store.catalogue()
