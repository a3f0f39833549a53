"""The RL round (loop.rl) end to end: `sgi run` with real SmolLM2 on a real local Ray, TRL's
GRPOTrainer on the CPU, DuckDB; killed mid-RL and resumed."""

from __future__ import annotations

import json
import shutil
from html import unescape
from pathlib import Path

import duckdb
import pytest
from support.browser import open_browser, require_browser
from support.runs import INLINE, SGI, TINY_RUN, Run, as_sets, batch, sgi, wait_released

pytestmark = pytest.mark.slow

# One supervised round at a learning rate that leaves the student as it was (it answers in
# sentences, cut off at 8 tokens), then 10 GRPO steps of 2 prompts x 4 samples: the format
# term (the answer alone, as the supervised rounds train it) gives it room to improve in a
# few steps. (Round 0's 4 steps at the default rate already teach the bare answer.)
RL = [*TINY_RUN, "loop.rounds=1", "train.lr=1e-7", "compose.enabled=false", "ray.num_cpus=2", "train.state_every=2",
      "loop.rl.enabled=true", "loop.rl.steps=10", "loop.rl.prompts_per_step=2", "loop.rl.group_size=4",
      "loop.rl.max_new_tokens=8", "loop.rl.lr=3e-4", "loop.rl.format_weight=1.0"]
RL_ROUND = 1


def command(tmp: Path, name: str) -> list[str]:
    return [*SGI, "run", "--progress", "json", *as_sets([f"name={name}", f"runs_dir={tmp / 'runs'}", *RL])]


def rows(store: Path, sql: str) -> list[tuple]:
    db = duckdb.connect(str(store), read_only=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run (its directory)."""
    tmp = tmp_path_factory.mktemp("rl")
    run = Run(command(tmp, "ref"), tmp)
    assert run.finish() == 0, "".join(run.other)[-3000:]
    return tmp / "runs" / "ref"


def test_the_rl_round_raises_the_reward_and_is_evaluated_like_a_round(reference):
    store = reference / "sgi.duckdb"
    ledger = {(r, s): st for r, s, st in rows(store, "SELECT round, stage, status FROM ledger")}
    assert all(ledger[(RL_ROUND, s)] == "done" for s in ("infer", "diagnose", "profile", "rl", "evaluate"))
    assert (RL_ROUND, "train") not in ledger and (RL_ROUND, "select") not in ledger
    steps = rows(store, "SELECT step, reward, correct, format, kl FROM rl_steps WHERE round = 1 ORDER BY step")
    assert [s[0] for s in steps] == list(range(1, 11))
    assert all(reward == pytest.approx(correct + fmt) for _, reward, correct, fmt, _ in steps)  # format_weight 1
    first, last = [s[1] for s in steps[:3]], [s[1] for s in steps[-3:]]
    assert sum(last) / 3 >= sum(first) / 3 + 0.25, steps  # fixed seed: GRPO moved the student
    assert steps[-1][4] > 0  # KL from the supervised checkpoint it started from
    prompts = rows(store, "SELECT strategy, reason, count(*) FROM train_sets WHERE round = 1 GROUP BY ALL")
    assert sum(n for *_, n in prompts) == 20 and {s for s, *_ in prompts} == {"rl-targeted"}
    checkpoints = dict(rows(store, "SELECT round, base FROM checkpoints"))
    assert checkpoints[RL_ROUND] == str(reference / "checkpoints" / "round-0" / "merged")  # RL after STAT
    evals = rows(store, "SELECT count(*) FROM evals WHERE round = 1")[0][0]
    assert evals == rows(store, "SELECT count(*) FROM evals WHERE round = 0")[0][0] > 0
    status = sgi("status", str(reference), cwd=reference.parent)
    assert status.returncode == 0 and "GRPO (targeted prompts): 10 steps x 2 prompts x 4 samples" in status.stdout


def test_a_run_killed_mid_rl_resumes_to_the_same_weights(reference, tmp_path):
    """A copy of the reference run redoes its RL round (--force-from 1:rl), is killed mid-RL
    (after the step-4 checkpoint) and resumed: the same per-step rows and weights, byte for byte.
    The copy runs inline (GRPO in the driver, not in a Ray actor): the same numbers either way,
    without two more local Rays to start."""
    copy = tmp_path / "runs" / "ref"
    shutil.copytree(reference, copy, ignore=shutil.ignore_patterns("round-1*", "report", ".lock"))
    run = Run([*SGI, "resume", str(copy), "--force-from", "1:rl", "--progress", "json", *INLINE], tmp_path)
    assert run.wait_for(batch("GRPO steps", at_least=5)), "".join(run.other)[-3000:]
    run.kill_all()
    store = copy / "sgi.duckdb"
    wait_released(store)
    assert rows(store, "SELECT status FROM ledger WHERE round = 1 AND stage = 'rl'") == [("running",)]
    resumed = Run([*SGI, "resume", str(copy), "--progress", "json", *INLINE], tmp_path)
    assert resumed.finish() == 0, "".join(resumed.other)[-3000:]
    step_sql = "SELECT step, reward, correct, format, kl, completion_tokens FROM rl_steps ORDER BY step"
    assert rows(store, step_sql) == rows(reference / "sgi.duckdb", step_sql)  # the same samples after the resume
    weights = [run_dir / "checkpoints" / "round-1" / "merged" / "model.safetensors" for run_dir in (copy, reference)]
    assert weights[0].read_bytes() == weights[1].read_bytes()
    evals_sql = "SELECT item_id, output, correct FROM evals WHERE round = 1 ORDER BY item_id"
    assert rows(store, evals_sql) == rows(reference / "sgi.duckdb", evals_sql)


def test_the_report_draws_the_reward_curve(reference, tmp_path):
    """`sgi report` on the RL run: the overview's RL section and its reward figure, drawn by
    plotly.js in the real browser from the rows in DuckDB."""
    require_browser()
    out = tmp_path / "site"
    result = sgi("report", str(reference), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = rows(reference / "sgi.duckdb", "SELECT step, reward, correct FROM rl_steps ORDER BY step")
    first, last = (sum(s[1] for s in part) / 2 for part in (steps[:2], steps[-2:]))  # quarters of 10 steps
    playwright, browser = open_browser()
    try:
        page = browser.new_page()
        page.goto((out / "index.html").as_uri())
        page.wait_for_selector("#reward-plot .main-svg")
        assert (f"10 steps; mean reward {first:.2f} in the first quarter of them, {last:.2f} in the last"
                in page.locator("#rl-summary").inner_text())
        figure = json.loads(unescape(page.locator("#reward-plot").get_attribute("data-figure")))
        traces = {t["name"]: t for t in figure["data"]}
        # format_weight 1: the correct share differs from the reward and is drawn too
        assert set(traces) == {"reward", "reward, mean of 5 steps", "correct share", "KL"}
        assert traces["reward"]["x"] == [s[0] for s in steps]
        assert traces["reward"]["y"] == pytest.approx([s[1] for s in steps])
        assert traces["reward, mean of 5 steps"]["y"][-1] == pytest.approx(sum(s[1] for s in steps[-5:]) / 5)
        assert traces["correct share"]["y"] == pytest.approx([s[2] for s in steps])
        assert page.locator("#reward-plot .scatterlayer .trace").count() == 4  # drawn, not only embedded
    finally:
        browser.close()
        playwright.stop()
