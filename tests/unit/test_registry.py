"""The one stage registry: its order, what redoing each stage deletes, which fields decide it."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from sgi.orchestrator import registry
from sgi.orchestrator.rundir import parse_stage
from sgi.skills.runs import MIGRATIONS, SETUP_ROUND

SCHEMA = "\n".join([resources.files("sgi.skills").joinpath("sql", "base.sql").read_text(), *MIGRATIONS.values()])
# written by the runner itself (ledger, events), kept across redos on purpose (teacher_calls: a cache;
# solutions: System 2's answers do not depend on the student), or the run's own record (meta, runs)
NOT_RESET = {"meta", "runs", "ledger", "events", "teacher_calls"}


def test_the_order_is_the_loops():
    assert [s.name for s in registry.SETUP_STAGES] == ["task", "label", "warmup", "halfway", "evaluate",
                                                           "compose"]
    assert [s.name for s in registry.ROUND_STAGES] == [
        "infer", "difficulty", "diagnose", "profile", "select", "train", "rl", "evaluate", "compose"]
    assert registry.position(SETUP_ROUND, "compose") < registry.position(0, "infer") < registry.position(1, "infer")
    assert registry.position(0, "train") < registry.position(0, "evaluate")


def test_every_table_a_stage_writes_is_deleted_by_some_stage_redo():
    tables = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)) - NOT_RESET
    deleted = {re.match(r"DELETE FROM (\w+)", sql).group(1)
               for round_ in (SETUP_ROUND, 0) for s in registry.stages_of(round_) for sql in s.resets}
    assert deleted == tables


def test_round_resets_bind_the_round_and_setup_task_resets_everything():
    for s in registry.ROUND_STAGES:
        assert all("?" in sql for sql in s.resets), s.name  # a round's redo never touches another round
    task = registry.stage(SETUP_ROUND, "task")
    assert not any("?" in sql for sql in task.resets)


def test_unknown_stages_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown stage 'warmup'; stages are infer, difficulty"):
        registry.stage(0, "warmup")
    assert parse_stage("warmup") == (SETUP_ROUND, "warmup")  # only a setup stage: setup
    assert parse_stage("evaluate") == (0, "evaluate")  # both: round 0


@pytest.mark.parametrize("field, stage", [
    ("seed", (SETUP_ROUND, "task")), ("teacher", (SETUP_ROUND, "label")), ("train.bf16", (SETUP_ROUND, "warmup")),
    ("student.model", (SETUP_ROUND, "warmup")), ("student", (SETUP_ROUND, "halfway")),
    ("loop.warmup_rates", (0, "select")),
    ("difficulty", (0, "infer")), ("loop.weighting", (0, "select")), ("train", (0, "select")),
    ("loop.rl", (0, "rl")),
])
def test_fields_name_the_first_stage_they_decide(field, stage):
    assert registry.field_stages()[field] == stage


def test_rl_settings_guard_the_rl_round_only():
    from sgi.orchestrator.rundir import ConfigChanged, check_config

    supervised = [(SETUP_ROUND, "task"), (0, "select"), (0, "train"), (0, "evaluate"), (1, "infer")]
    check_config(Path("runs/x"), {"loop.rl.steps": (20, 10)}, supervised)  # RL not started: free to change
    with pytest.raises(ConfigChanged, match=r"loop.rl.steps \(20 -> 10\).*--force-from 1:rl"):
        check_config(Path("runs/x"), {"loop.rl.steps": (20, 10)}, [*supervised, (1, "profile"), (1, "rl")])
