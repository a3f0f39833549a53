"""`sgi submit` on a real two-node Ray cluster on this machine (two `ray start` processes):
the run goes through Ray's job server, its student actors spread over both nodes, it trains
with two data-parallel workers, its DuckDB store stays on the head beside the driver, and
killing the second node's raylet mid-inference loses nothing. And a run without ray.address
starts its own local Ray even where `ray start` left a cluster behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import duckdb
import pytest

from support.ray_cluster import LocalCluster
from support.runs import SGI, TABLES, TINY_RUN, snapshot

pytestmark = pytest.mark.slow

CLUSTER_RUN = [
    *TINY_RUN,
    "task.gym.probe_per_family=8",  # four batches for two actors: a raylet can die mid-inference
    "loop.rounds=1",
    "compose.enabled=false",
    "ray.student_actors=2",
    "ray.student_cpus=1",
    "ray.trainer_workers=2",  # data-parallel training through Ray Train, in the loop
]
COMPARED = [t for t in TABLES if t != "events"]  # restarts add notes; the results must not differ


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster().start()
    try:
        yield c
    finally:
        c.stop()


def sgi(cluster: LocalCluster, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*SGI, *args, "--address", cluster.address],
                          env=cluster.env, capture_output=True, text=True, timeout=timeout)


def submit(cluster: LocalCluster, runs: Path, name: str, *extra: str, wait: bool = True) -> subprocess.CompletedProcess:
    sets = [a for o in [f"name={name}", *CLUSTER_RUN, *extra] for a in ("--set", o)]
    return sgi(cluster, "submit", *sets, "--runs-dir", str(runs), *(["--wait"] if wait else []))


def job_id(submitted: subprocess.CompletedProcess) -> str:
    return next(w for w in submitted.stdout.split() if w.startswith("sgi-"))


def ledger(store: Path) -> list[tuple]:
    with duckdb.connect(str(store), read_only=True) as db:
        return db.execute("SELECT round, stage, status, detail FROM ledger ORDER BY round, stage").fetchall()


@pytest.fixture(scope="module")
def first_run(cluster, tmp_path_factory):
    runs = tmp_path_factory.mktemp("cluster") / "runs"
    done = submit(cluster, runs, "spread")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:] + cluster.logs()
    return runs / "spread" / "sgi.duckdb", job_id(done)


def test_a_submitted_run_spreads_its_students_over_both_nodes(cluster, first_run):
    store, job = first_run
    rows = ledger(store)
    assert rows and all(status == "done" for _, _, status, _ in rows)
    infer = next(detail for _, stage, _, detail in rows if stage == "infer")
    assert "by 2 student actors" in infer
    students = cluster.actors("StudentEngine")
    head, second = cluster.node_id("node:__internal_head__"), cluster.node_id("node2")
    assert {a["node_id"] for a in students} == {head, second}
    assert {a["node_id"] for a in cluster.actors("StoreEngine")} == {head}  # the one writer beside its file
    assert len(cluster.actors("RayTrainWorker")) == 2  # round 0 trained data-parallel
    listed = sgi(cluster, "jobs")
    assert job in listed.stdout and "SUCCEEDED" in listed.stdout
    log = sgi(cluster, "logs", job)
    assert log.returncode == 0 and '"event": "stage"' in log.stdout


def test_resubmitting_the_same_config_continues_the_run(cluster, first_run):
    store, _ = first_run
    before = ledger(store)
    again = submit(cluster, store.parent.parent, "spread")
    assert again.returncode == 0, again.stdout[-3000:]
    log = sgi(cluster, "logs", job_id(again)).stdout
    assert "per round" in log and '"status": "running"' not in log  # every stage skipped, none redone
    assert ledger(store) == before


def test_killing_the_second_nodes_raylet_mid_run_loses_nothing(cluster, first_run, tmp_path):
    reference = snapshot(first_run[0])
    runs = tmp_path / "runs"
    submitted = submit(cluster, runs, "killed", wait=False)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job = job_id(submitted)
    # One log stream, read as it comes, instead of a `sgi logs` process a second beside the run.
    follow = subprocess.Popen([*SGI, "logs", job, "--follow", "--address", cluster.address], env=cluster.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(900, follow.kill)  # a run that never gets there ends the stream, not the suite
    watchdog.start()
    try:
        assert any(_answered_a_batch(line) for line in follow.stdout), "the run never reached round 0's inference"
        cluster.raylet("node2").kill()
        follow.communicate(timeout=900)
    finally:
        watchdog.cancel()
        if follow.poll() is None:
            follow.kill()
    if follow.returncode != 0:  # the node's loss outlasted the actors' restarts: resume by submitting again
        again = submit(cluster, runs, "killed")
        assert again.returncode == 0, again.stdout[-3000:] + cluster.logs()
    store = runs / "killed" / "sgi.duckdb"
    got = snapshot(store)
    for table in COMPARED:
        assert got[table] == reference[table], table
    assert got["weights"] == reference["weights"]


def _answered_a_batch(log: str) -> bool:
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "progress" and "round 0: student answers" in event["bar"] \
                and 0 < event["done"] < event["total"]:
            return True
    return False


def test_a_config_asking_for_gpus_the_cluster_lacks_fails_with_the_shortfall(cluster, tmp_path):
    failed = submit(cluster, tmp_path / "runs", "gpus", "ray.student_gpus=1", "ray.resource_wait_s=2")
    assert failed.returncode == 1
    assert "needs 2 GPU (the cluster has 0)" in failed.stdout
    assert "FAILED" in failed.stderr


def test_a_local_run_starts_its_own_ray_where_ray_start_left_a_cluster(tmp_path):
    """`ray start` records its cluster in <Ray's temp dir>/ray_current_cluster, and a bare
    ray.init() joins it (refusing num_cpus there): a run without ray.address must start its own."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="sgi-rt-", dir="/tmp"))  # short: Ray's socket paths
    try:
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:9")  # a cluster that is gone
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(ray_tmp)}
        code = ("import ray; from sgi.workers.actors import start_ray; start_ray(None, 1); "
                "print(ray.cluster_resources()['CPU']); ray.shutdown()")
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split()[-1] == "1.0"  # its own one-CPU cluster
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
