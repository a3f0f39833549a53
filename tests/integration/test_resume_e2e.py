"""Kill `sgi run` for real (SIGKILL, SIGTERM, SIGINT, a dead Ray actor), resume, and compare the
final store row for row with a run that was never interrupted.

Kill points are chosen from the run's own progress stream (`--progress json`: one line per
committed batch and per stage start/end), not by sleeping. Each run is a real subprocess
with a real local Ray, the real SmolLM2 student, the rules teacher and a real DuckDB file.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import duckdb
import psutil
import pytest
from support.runs import SGI, TINY_RUN, Predicate, Run, as_sets, assert_same, batch, snapshot, stage, wait_released

from sgi.workers.trainer import saved_step

pytestmark = pytest.mark.slow

# Two rounds of STAT-Syn on a tiny task: every stage kind (labelling, inference, diagnosis,
# synthesis, training, evaluation) runs in several committed batches.
TINY = [
    *TINY_RUN,
    "teacher.batch_size=16",
    "loop.rounds=2",
    "loop.strategy=stat-syn",
    # The paper's rule: with warm-up off every skill sits at its floor, so learnability
    # weighting would train on replay alone and the run would have no synthesis to kill.
    "loop.weighting=paper",
    "loop.syn_per_pair=1",
    "train.state_every=1",
    "compose.enabled=false",  # composing is tested in test_run_e2e; here it would only add kill points
    "ray.num_cpus=2",
]


def command(tmp: Path, name: str, *extra: str, resume: bool = False) -> list[str]:
    if resume:
        return [*SGI, "resume", str(tmp / "runs" / name), "--progress", "json", *extra]
    return [*SGI, "run", "--progress", "json", *as_sets([f"name={name}", f"runs_dir={tmp / 'runs'}", *TINY]), *extra]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The uninterrupted run everything is compared with (its directory: copy it before changing it)."""
    tmp = tmp_path_factory.mktemp("reference")
    run = Run(command(tmp, "ref"), tmp)
    assert run.finish() == 0, "".join(run.other)[-3000:]
    db = duckdb.connect(str(tmp / "runs" / "ref" / "sgi.duckdb"), read_only=True)
    synthesized = db.execute("SELECT count(*) FROM synthesized").fetchone()[0]
    db.close()
    assert synthesized > 0, "the tiny run synthesized nothing: the synthesis kill point would be skipped"
    return tmp / "runs" / "ref"


@pytest.fixture(scope="module")
def reference(reference_run) -> dict[str, list[tuple]]:
    return snapshot(reference_run / "sgi.duckdb")


KILL_POINTS: list[tuple[str, Predicate]] = [
    ("labelling", batch("labelling")),
    ("warm-up evaluation", batch("warm-up student", at_least=4)),
    ("round 0 inference", batch("student answers", at_least=4)),
    ("round 0 diagnosis", stage(0, "diagnose")),
    ("round 0 synthesis", batch("synthesizing", at_least=1)),
    ("round 0 training", batch("training steps", at_least=2)),
    ("between rounds", stage(0, "evaluate", "done")),
    ("round 1 training", batch("training steps", at_least=1)),
]


def test_sigkill_at_every_stage_then_resume_matches_the_uninterrupted_run(reference, tmp_path):
    store = tmp_path / "runs" / "killed" / "sgi.duckdb"
    hit, resumed = [], False
    for label, predicate in KILL_POINTS:
        run = Run(command(tmp_path, "killed", resume=resumed), tmp_path)
        if run.wait_for(predicate) is None:  # the run got past this point before we could kill it
            assert run.finish() == 0, "".join(run.other)[-3000:]
            break
        run.kill_all()
        wait_released(store)
        hit.append(label)
        resumed = True
    else:
        run = Run(command(tmp_path, "killed", resume=True), tmp_path)
        assert run.finish() == 0, "".join(run.other)[-3000:]
    print(f"killed at: {', '.join(hit)}; {len(hit) + 1} processes; store identical to the uninterrupted run")
    # The last resume found the lock file of a killed run and said so.
    assert any(e.get("event") == "warning" and "which is gone" in e["message"] for e in run.events)
    assert {"round 0 inference", "round 0 synthesis", "round 0 training", "between rounds"} <= set(hit), hit
    assert_same(store, reference)


def test_sigterm_and_ctrl_c_stop_after_the_current_batch(reference, tmp_path):
    store = tmp_path / "runs" / "stopped" / "sgi.duckdb"
    run = Run(command(tmp_path, "stopped"), tmp_path)
    assert run.wait_for(batch("student answers", at_least=4))
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM
    assert "stopped" in "".join(run.other) and "sgi resume" in "".join(run.other)
    db = duckdb.connect(str(store), read_only=True)
    ledger = dict(((r, s), st) for r, s, st in db.execute("SELECT round, stage, status FROM ledger").fetchall())
    answered = db.execute("SELECT count(*) FROM attempts WHERE round = 0").fetchone()[0]
    db.close()
    assert ledger[(0, "infer")] == "running" and 4 <= answered < 12 and answered % 4 == 0  # whole batches only

    run = Run(command(tmp_path, "stopped", resume=True), tmp_path)
    assert run.wait_for(batch("training steps", at_least=1))
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 128 + signal.SIGINT
    assert saved_step(tmp_path / "runs" / "stopped" / "checkpoints" / "round-0") is not None

    run = Run(command(tmp_path, "stopped", resume=True), tmp_path)
    assert run.finish() == 0, "".join(run.other)[-3000:]
    assert_same(store, reference)


def engine_process(role: str) -> psutil.Process | None:
    """The Ray worker process of an engine: its actor class is named after the role (ray::StudentEngine)."""
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith(f"ray::{role.capitalize()}Engine"):
            return proc
    return None


def test_a_killed_actor_is_restarted_and_its_batch_retried(reference, tmp_path):
    run = Run(command(tmp_path, "actors"), tmp_path)
    killed = []
    for role, predicate in (("student", batch("student answers", at_least=4)),
                            ("trainer", batch("training steps", at_least=2))):
        assert run.wait_for(predicate)
        proc = engine_process(role)
        assert proc is not None, f"no ray::{role.capitalize()}Engine process"
        proc.kill()  # SIGKILL by PID, mid-stage
        killed.append(role)
    assert run.finish() == 0, "".join(run.other)[-3000:]
    assert killed == ["student", "trainer"]
    assert_same(tmp_path / "runs" / "actors" / "sgi.duckdb", reference)


def test_a_second_run_on_a_busy_directory_names_the_holder(tmp_path):
    first = Run(command(tmp_path, "busy"), tmp_path)
    assert first.wait_for(stage(-1, "label"))
    second = subprocess.run(command(tmp_path, "busy"), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    first.kill_all()
    assert second.returncode == 2
    assert f"is in use by pid {first.proc.pid}" in second.stderr and "sgi run" in second.stderr


def test_a_changed_config_is_refused_and_force_from_redoes_on_purpose(reference, reference_run, tmp_path):
    name = "changed"
    shutil.copytree(reference_run, tmp_path / "runs" / name)  # a finished run (round 0's weights stay in the original)
    refused = subprocess.run(command(tmp_path, name, "--set", "loop.k=3", "--set", "loop.rounds=3"), cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2
    assert "loop.k (5 -> 3)" in refused.stderr and "--force-from 0:select" in refused.stderr
    assert "loop.rounds" not in refused.stderr
    assert_same(tmp_path / "runs" / name / "sgi.duckdb", reference)  # nothing was touched

    redo = Run(command(tmp_path, name, "--set", "train.steps=2", "--force-from", "1:select"), tmp_path)
    assert redo.finish() == 0, "".join(redo.other)[-3000:]
    got = snapshot(tmp_path / "runs" / name / "sgi.duckdb")
    assert [r for r in got["checkpoints"] if r[0] == 0] == [r for r in reference["checkpoints"] if r[0] == 0]
    assert [r for r in got["checkpoints"] if r[0] == 1][0][1] == 2  # round 1 retrained with 2 steps
    assert [r for r in got["evals"] if r[0] <= 0] == [r for r in reference["evals"] if r[0] <= 0]


def test_an_actor_that_stays_dead_stops_the_run_resumably(reference, tmp_path):
    """With no restarts allowed, a killed student ends the run with one clear line (exit 3);
    the finished batches are kept and `sgi resume` completes it identically."""
    run = Run(command(tmp_path, "dead", "--set", "ray.max_restarts=0"), tmp_path)
    assert run.wait_for(batch("student answers", at_least=4))
    engine_process("student").kill()
    assert run.finish() == 3
    message = "".join(run.other)
    assert "round 0 infer: the student engine died" in message and "sgi resume" in message
    assert "Traceback" not in message
    resumed = Run(command(tmp_path, "dead", resume=True), tmp_path)
    assert resumed.finish() == 0, "".join(resumed.other)[-3000:]
    assert_same(tmp_path / "runs" / "dead" / "sgi.duckdb", reference)
