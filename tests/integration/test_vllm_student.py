"""The vLLM student engine, run as a user would: `sgi run --set student.engine=vllm` under the
vLLM virtualenv's Python, on Ray, then checked against the transformers engine.

The run answers the probe split with vLLM, trains one short round, and evaluates the
trained checkpoint with a new vLLM engine. Its answers must land in DuckDB like the
transformers engine's, and after training they must be the trained weights' answers
(checked by answering the same items with the transformers engine on that checkpoint).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.vllm_server import require_vllm

from sgi.orchestrator.store import Store
from sgi.skills.runs import SETUP_ROUND

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

RUN = [
    "task.gym.families={add_sub: 40, products: 24}", "task.gym.probe_per_family=12", "task.gym.test_per_family=12",
    "task.gym.general={}", "warmup.enabled=false", "loop.rounds=1", "loop.strategy=uniform", "train.steps=12",
    "train.batch_size=8", "train.lr=2e-3", "student.batch_size=16", "student.dtype=float32", "ray.num_cpus=2",
    "compose.enabled=false",
]


def sgi(python: Path | str, run_dir: Path, *sets: str) -> subprocess.CompletedProcess:
    args = [f"runs_dir={run_dir.parent}", f"name={run_dir.name}", *RUN, *sets]
    cmd = [str(python), "-m", "sgi.orchestrator", "run", "--quiet", *[a for s in args for a in ("--set", s)]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"})


@pytest.fixture(scope="module")
def vllm_run(tmp_path_factory):
    python = require_vllm()
    check = subprocess.run([str(python), "-c", "import sgi.workers.vllm_student"], capture_output=True, text=True)
    if check.returncode:
        pytest.fail(f"sgi is not installed in {python} (bash .ci/vllm-venv installs it): {check.stderr[-500:]}")
    run_dir = tmp_path_factory.mktemp("vllm-run") / "runs" / "vllm"
    result = sgi(python, run_dir, "student.engine=vllm")
    assert result.returncode == 0, result.stderr[-4000:]
    return run_dir


def test_vllm_answers_land_in_duckdb_like_the_transformers_engines(vllm_run):
    store = Store(vllm_run / "sgi.duckdb", read_only=True)
    try:
        attempts = store.attempts(0)
        probe = {i.item_id for i in store.items("probe")}
        assert {a.item_id for a in attempts} == probe and all(a.sample == 0 for a in attempts)
        assert all(0 < a.n_tokens <= 16 and 0 < a.min_prob <= a.mean_prob <= 1 for a in attempts)
        assert store.stage_done(0, "evaluate") and store.evaluated_ids(0) == store.evaluated_ids(SETUP_ROUND)
    finally:
        store.close()


def test_after_training_vllm_serves_the_new_weights(vllm_run):
    from sgi.orchestrator.build import student_args
    from sgi.orchestrator.config import load_config
    from sgi.workers.student import TransformersStudent

    store = Store(vllm_run / "sgi.duckdb", read_only=True)
    try:
        checkpoint = store.checkpoint(0)
        items = {i.item_id: i for i in store.items("test")}
        before = {r[0]: r[1] for r in store.db.execute(
            "SELECT item_id, output FROM evals WHERE round = ?", [SETUP_ROUND]).fetchall() if r[0] in items}
        after = {r[0]: r[1] for r in store.db.execute(
            "SELECT item_id, output FROM evals WHERE round = 0").fetchall() if r[0] in items}
    finally:
        store.close()
    ids = sorted(after)
    changed = sum(before[i] != after[i] for i in ids)
    assert changed >= len(ids) // 4, "training barely changed the answers: the check below would prove nothing"

    cfg = load_config(None, RUN)
    reference = TransformersStudent(**student_args(cfg, checkpoint))
    prompts = [items[i].question for i in ids]
    theirs = {g.item_id: g.text for g in reference.generate(ids, prompts)}
    agree = sum(theirs[i] == after[i] for i in ids)
    assert agree >= 0.8 * len(ids), f"vLLM agrees with transformers on the trained checkpoint for {agree}/{len(ids)}"
    assert agree > sum(theirs[i] == before[i] for i in ids)  # and it is the trained model, not the base one
