"""Run-directory guards: the lock (live holder named, dead holder detected) and config changes on resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from support.runs import SGI

from sgi.orchestrator import rundir
from sgi.orchestrator.config import RunConfig, dump_config, load_config
from sgi.orchestrator.rundir import ConfigChanged, RunLock, RunLocked
from sgi.orchestrator.store import Store
from sgi.skills.runs import SETUP_ROUND, SNAPSHOT_FILE, StoreError

HOLD = textwrap.dedent("""
    import sys, time
    from sgi.orchestrator.rundir import RunLock
    with RunLock(sys.argv[1], command="sgi run (test holder)"):
        print("locked", flush=True)
        time.sleep(600)
""")


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock on tmp_path/run."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_holder_is_named(holder, tmp_path):
    with pytest.raises(RunLocked, match=rf"is in use by pid {holder.pid} on .* \(sgi run \(test holder\)\)"):
        RunLock(tmp_path / "run").__enter__()


def test_a_dead_holder_is_detected_and_the_lock_taken_over(holder, tmp_path):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with RunLock(tmp_path / "run") as lock:
        assert lock.previous["pid"] == holder.pid  # the record a killed run left behind
        assert lock.previous["command"] == "sgi run (test holder)"
    with RunLock(tmp_path / "run") as lock:
        assert lock.previous is None  # a clean exit leaves no record


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            RunLock(tmp_path / "run").__enter__()


def config_yaml(*sets: str) -> str:
    return dump_config(load_config(None, list(sets)))


def test_changed_fields_are_dotted_keys_with_old_and_new():
    changes = rundir.changed_fields(config_yaml(), config_yaml("loop.k=3", "ray.num_cpus=2"))
    assert changes == {"loop.k": (5, 3), "ray.num_cpus": (None, 2)}


@pytest.mark.parametrize(
    ("field", "stage"),
    [("seed=1", (SETUP_ROUND, "task")), ("task.gym.probe_per_family=3", (SETUP_ROUND, "task")),
     ("teacher.kind=embed", (SETUP_ROUND, "label")), ("warmup.steps=7", (SETUP_ROUND, "warmup")),
     ("student.model=/x", (SETUP_ROUND, "warmup")), ("student.batch_size=3", (SETUP_ROUND, "halfway")),
     ("difficulty.consistency=true", (0, "infer")), ("loop.strategy=uniform", (0, "select")),
     ("train.steps=5", (0, "select")), ("loop.rounds=9", None), ("train.state_every=1", None),
     ("ray.enabled=false", None), ("name=other", None)],
)
def test_each_field_maps_to_the_first_stage_it_decides(field, stage):
    changes = rundir.changed_fields(config_yaml(), config_yaml(field))
    assert changes and {rundir.stage_of(key) for key in changes} == {stage}


def test_a_change_to_started_work_is_refused_naming_the_field(tmp_path):
    changes = rundir.changed_fields(config_yaml(), config_yaml("loop.strategy=uniform", "loop.rounds=4"))
    started = [(SETUP_ROUND, "task"), (SETUP_ROUND, "label"), (0, "infer"), (0, "select")]
    with pytest.raises(ConfigChanged) as err:
        rundir.check_config(tmp_path, changes, started)
    message = str(err.value)
    assert '"stat-sel" -> "uniform"' in message and "loop.strategy" in message
    assert "loop.rounds" not in message  # more rounds alter nothing done
    assert "--force-from 0:select" in message


def test_a_change_to_work_not_started_is_accepted(tmp_path):
    changes = rundir.changed_fields(config_yaml(), config_yaml("loop.strategy=uniform"))
    rundir.check_config(tmp_path, changes, [(SETUP_ROUND, "task"), (0, "infer"), (0, "diagnose")])


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("select", (0, "select")), ("1:train", (1, "train")), ("setup:label", (SETUP_ROUND, "label")),
     ("label", (SETUP_ROUND, "label")), ("evaluate", (0, "evaluate")), ("setup:evaluate", (SETUP_ROUND, "evaluate"))],
)
def test_force_from_syntax(text, parsed):
    assert rundir.parse_stage(text) == parsed


@pytest.mark.parametrize("text", ["nonsense", "x:train", "1:label"])
def test_force_from_rejects_unknown_stages(text):
    with pytest.raises(StoreError, match="--force-from"):
        rundir.parse_stage(text)


def test_the_default_config_round_trips_through_its_stored_yaml():
    cfg = RunConfig()
    assert load_config(None, [], stored=dump_config(cfg)) == cfg


def test_status_of_a_busy_run_reads_its_snapshot_and_names_the_holder(holder, tmp_path):
    status = [*SGI, "status", str(tmp_path / "run")]
    done = subprocess.run(status, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2  # a DuckDB lock error would say nothing of who holds it
    assert f"is in use by pid {holder.pid}" in done.stderr and "has not published a snapshot yet" in done.stderr

    store = Store(tmp_path / "elsewhere" / "sgi.duckdb")  # what the holder's run would publish
    store.record_run("run", "name: run\n")
    store.start_stage(SETUP_ROUND, "task")
    store.close()
    (tmp_path / "elsewhere" / "sgi.duckdb").rename(tmp_path / "run" / SNAPSHOT_FILE)
    done = subprocess.run(status, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "run in progress (pid" in done.stderr and "task" in done.stdout and "running" in done.stdout


def test_fields_added_since_a_run_was_made_are_not_changes():
    """A run stored by an older sgi lacks newer fields; reading them as null made every new
    default look like a change and refused to resume or compose the run."""
    import yaml

    from sgi.orchestrator.loop import _as_read_now

    current = dump_config(RunConfig())
    older = yaml.safe_load(current)
    del older["student"]["engine"]
    older["teacher"].pop("llm")
    assert rundir.changed_fields(yaml.safe_dump(older), current)  # what the check used to see
    assert rundir.changed_fields(_as_read_now(yaml.safe_dump(older)), current) == {}
    older["loop"]["k"] = 3  # a real difference still shows
    assert rundir.changed_fields(_as_read_now(yaml.safe_dump(older)), current) == {"loop.k": (3, 5)}
