"""Kill `sgi run` for real (SIGKILL, SIGTERM, SIGINT, a dead or a restarted Ray actor), resume, and
compare the final store row for row with a run that was never interrupted.

Kill points are chosen from the run's own progress stream (`--progress json`: one line per
committed batch and per stage start/end), not by sleeping. Each run is a real subprocess
with the real SmolLM2 student, the rules teacher and a real DuckDB file; the processes whose
stops kill a Ray actor run on a real local Ray, the others inline (a resume may switch: both
build the same store, row for row and weight for weight, and a local Ray costs ~15 s a process).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import NamedTuple

import duckdb
import psutil
import pytest
from support.runs import INLINE, SGI, TINY_RUN, Predicate, Run, as_sets, assert_same, batch, snapshot, stage, wait_released

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
    "train.steps=8",  # margin for the graceful stop mid-training (see INTERRUPTIONS)
    "train.state_every=1",
    "compose.enabled=false",  # composing is tested in test_run_e2e; here it would only add kill points
    "ray.enabled=false",  # the chain's processes that kill an actor turn Ray on (engines_for)
    "ray.num_cpus=2",
]
# A resume keeps what the last process was given with --set, so each process says which it is.
ON_RAY = ("--set", "ray.enabled=true")


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


class Interruption(NamedTuple):
    """Where a run is stopped (a progress predicate) and how: SIGKILL to the whole process
    group, SIGTERM or SIGINT to sgi alone, or the student engine killed with no restart allowed;
    or where an engine's actor is killed and Ray restarts it, the run going on."""

    label: str
    when: Predicate
    how: str  # "sigkill", "sigterm", "sigint", "dead student", or "restart student" / "restart trainer"


# One run, stopped every way in turn and each time resumed from where it stopped, with two
# engine actors killed and restarted on the way; the final store must match the uninterrupted
# run's. One chain costs a process start per interruption where a test per way of stopping
# ran the tiny run from scratch each time.
INTERRUPTIONS = [
    Interruption("labelling", batch("labelling"), "sigkill"),
    Interruption("warm-up evaluation", batch("warm-up student", at_least=4), "sigkill"),
    Interruption("round 0 inference", batch("student answers", at_least=4), "sigterm"),
    Interruption("round 0 diagnosis", stage(0, "diagnose"), "sigkill"),
    Interruption("round 0 synthesis", batch("synthesizing", at_least=1), "sigkill"),
    # At the first step: a stop reaches the trainer within a poll (0.5 s), and the tiny round's
    # later steps can all finish inside one on a fast machine (CI once saw training end first).
    Interruption("round 0 training", batch("training steps", at_least=1), "sigint"),
    Interruption("round 0 training, resumed", batch("training steps", at_least=1), "restart trainer"),
    Interruption("round 0 evaluation", batch("held-out eval", at_least=4), "restart student"),
    Interruption("between rounds", stage(0, "evaluate", "done"), "sigkill"),
    # Last but one: the run keeps ray.max_restarts=0 from here on, so no actor would come back after it.
    Interruption("round 1 inference", batch("student answers", at_least=4), "dead student"),
    Interruption("round 1 training", batch("training steps", at_least=1), "sigkill"),
]
RESTARTS = {"restart student", "restart trainer"}


def engines_for(how: str) -> tuple[str, ...]:
    """A process that starts at a stop which kills an actor runs on Ray ("dead student" with
    restarts turned off); the others run inline."""
    if how == "dead student":
        return (*ON_RAY, "--set", "ray.max_restarts=0")
    return ON_RAY if how in RESTARTS else INLINE


def interrupt(run: Run, how: str, store: Path) -> None:
    """Stop the run the given way and check what that way promises."""
    if how in RESTARTS:  # restarts allowed: Ray brings the actor back and its batch is retried
        kill_engine(run, how.removeprefix("restart "))
        return
    if how == "sigkill":
        run.kill_all()
        wait_released(store)
        return
    if how == "dead student":  # restarts disallowed: one clear line, exit 3, finished batches kept
        kill_engine(run, "student")
        assert run.finish() == 3
        message = "".join(run.other)
        assert "round 1 infer: the student engine died" in message and "sgi resume" in message
        assert "Traceback" not in message
        return
    signum = signal.SIGTERM if how == "sigterm" else signal.SIGINT
    run.proc.send_signal(signum)  # to sgi alone: it stops after the current batch
    assert run.finish() == 128 + signum
    assert "stopped" in "".join(run.other) and "sgi resume" in "".join(run.other)
    if how == "sigterm":  # stopped mid-inference: the stage is open and holds whole batches only
        db = duckdb.connect(str(store), read_only=True)
        ledger = dict(((r, s), st) for r, s, st in db.execute("SELECT round, stage, status FROM ledger").fetchall())
        answered = db.execute("SELECT count(*) FROM attempts WHERE round = 0").fetchone()[0]
        db.close()
        assert ledger[(0, "infer")] == "running" and 4 <= answered < 12 and answered % 4 == 0
    else:  # stopped mid-training: the trainer's state was saved for the resume
        assert saved_step(store.parent / "checkpoints" / "round-0") is not None


def test_a_run_stopped_every_way_at_every_stage_resumes_to_the_uninterrupted_run(reference, tmp_path):
    store = tmp_path / "runs" / "killed" / "sgi.duckdb"
    hit, processes, run = [], 0, None
    try:
        for point in INTERRUPTIONS:
            if run is None:
                run = Run(command(tmp_path, "killed", *engines_for(point.how), resume=processes > 0), tmp_path)
                processes += 1
            if run.wait_for(point.when) is None:  # the run got past this point before we could stop it
                assert run.finish() == 0, "".join(run.other)[-3000:]
                break
            interrupt(run, point.how, store)
            hit.append(point.label)
            if point.how not in RESTARTS:
                run = None
        else:
            if run is None:
                run = Run(command(tmp_path, "killed", *INLINE, resume=True), tmp_path)
                processes += 1
            assert run.finish() == 0, "".join(run.other)[-3000:]
    finally:  # a check that failed leaves no run going
        if run is not None:
            run.kill_if_running()
    print(f"interrupted at: {', '.join(hit)}; {processes} processes; store identical to the uninterrupted run")
    # The last resume found the lock file of a killed run and said so.
    assert any(e.get("event") == "warning" and "which is gone" in e["message"] for e in run.events)
    assert {"round 0 inference", "round 0 synthesis", "round 0 training", "round 0 training, resumed",
            "round 0 evaluation", "between rounds", "round 1 inference"} <= set(hit), hit
    assert_same(store, reference)


def kill_engine(run: Run, role: str) -> None:
    """SIGKILL an engine's Ray worker by PID, mid-stage, as a machine losing that process would."""
    proc = engine_process(run, role)
    assert proc is not None, f"no ray::{role.capitalize()}Engine process under the run's"
    proc.kill()


def engine_process(run: Run, role: str) -> psutil.Process | None:
    """The run's Ray worker of an engine: its actor class is named after the role (ray::StudentEngine).
    Looked up among the run's descendants (its local Ray's raylet starts the workers), not
    machine-wide: another run on the machine has engines of the same name."""
    for proc in psutil.Process(run.proc.pid).children(recursive=True):
        try:
            if " ".join(proc.cmdline()).startswith(f"ray::{role.capitalize()}Engine"):
                return proc
        except psutil.NoSuchProcess:
            continue
    return None


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
