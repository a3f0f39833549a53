"""`sgi profile` end to end: real SmolLM2 student, real DuckDB, rules teacher; inline (the
profile on Ray is test_llm_teacher's, the loop's stages on Ray test_run_e2e's and the resume chain's).

Runs the CLI as a user would (a subprocess), on a reduced default, then checks what the
store holds — not just the exit code — and that a repeated command adds nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.runs import as_sets, sgi

from sgi.orchestrator.store import Store
from sgi.workers.models import cache_root

pytestmark = pytest.mark.slow

REDUCED = [
    "name=e2e",
    "task.gym.families={add_sub: 24, gcd: 16, fraction_simplification: 8}",
    "task.gym.probe_per_family=8",
    "task.gym.test_per_family=4",
    "task.gym.general={spell_backward: 4}",
    "warmup.steps=6",
    "warmup.batch_size=4",
    "student.batch_size=8",
    "ray.enabled=false",
]


def overrides(tmp_path: Path, extra: list[str] = ()) -> list[str]:
    return as_sets([*REDUCED, f"runs_dir={tmp_path / 'runs'}", *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("profile")
    result = sgi("profile", "--quiet", *overrides(tmp), cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, result


def test_store_holds_every_stage(run):
    tmp, result = run
    store = Store(tmp / "runs" / "e2e" / "sgi.duckdb", read_only=True)
    try:
        splits = store.split_counts()
        assert splits == {"general": 4, "pool": 48, "probe": 24, "test": 12}
        catalogue = {s.name for s in store.catalogue()}
        assert len(catalogue) >= 4  # finer than one skill per family
        labels = store.labels()
        items = store.items()
        assert all(1 <= len(labels[i.item_id]) <= 5 for i in items)
        assert {s for ls in labels.values() for s in ls} <= catalogue

        attempts = store.attempts(0)
        probe_ids = {i.item_id for i in items if i.split == "probe"}
        assert {a[0] for a in attempts} == probe_ids  # the probe split, and only it
        for _id, sample, output, extracted, correct, n_tokens, mean_p, min_p in attempts:
            assert sample == 0 and 0 < min_p <= mean_p <= 1 and 1 <= n_tokens <= 16

        difficult = dict(store.difficult(0))
        wrong = {a[0] for a in attempts if not a[4]}
        assert set(difficult) == wrong and set(difficult.values()) <= {"wrong"}
        diagnosed = store.db.execute("SELECT item_id, count(*) FROM diagnoses WHERE round = 0 GROUP BY item_id").fetchall()
        assert {i for i, _ in diagnosed} == wrong and all(1 <= n <= 3 for _, n in diagnosed)
        named = {r[0] for r in store.db.execute("SELECT DISTINCT skill FROM diagnoses").fetchall()}
        assert named <= catalogue

        profile = store.profile(0)
        total_mentions = store.db.execute("SELECT count(*) FROM diagnoses WHERE round = 0").fetchone()[0]
        assert sum(r[3] for r in profile) == total_mentions
        for skill, n_attempts, correct, missing, rate, share, accuracy, floor in profile:
            labelled = sum(1 for i in probe_ids if skill in labels[i])
            assert n_attempts == labelled and rate == pytest.approx(missing / labelled)
            assert missing <= n_attempts  # diagnoses name the item's own labelled skills
        assert [r[4] for r in profile] == sorted((r[4] for r in profile), reverse=True)
        stages = {(r[0], r[1]): r[2] for r in store.ledger()}
        assert set(stages.values()) == {"done"}
        assert {s for _, s in stages} == {"task", "label", "warmup", "infer", "difficulty", "diagnose", "profile"}
    finally:
        store.close()
    assert "Missing-Skill-Profile" in result.stdout


def test_repeated_command_skips_finished_stages_and_adds_nothing(run):
    tmp, _ = run
    path = tmp / "runs" / "e2e" / "sgi.duckdb"
    store = Store(path, read_only=True)
    before = store.counts()
    store.close()
    again = sgi("profile", *overrides(tmp), cwd=tmp)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("done earlier, skipped") == 7
    assert "loading the student" not in again.stderr  # skipped stages never load a model
    store = Store(path, read_only=True)
    assert store.counts() == before
    store.close()


def test_another_run_from_the_same_warm_up_takes_its_answers_from_the_cache(run):
    """The cached warm-up student answered these probe items in the first run: a second run
    (another name, same task and warm-up) reads them back instead of loading the student."""
    tmp, _ = run
    again = sgi("profile", *overrides(tmp, ["name=e2e-again"]), cwd=tmp)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "loading the student" not in again.stderr
    first, second = (Store(tmp / "runs" / name / "sgi.duckdb", read_only=True) for name in ("e2e", "e2e-again"))
    try:
        assert second.attempts(0) == first.attempts(0)  # answers, confidences and scores alike
        infer = next(detail for r, stage, _, _, detail in second.ledger() if stage == "infer")
        assert "24 from the warm-up student's answer cache" in infer
    finally:
        first.close()
        second.close()


def test_warmup_rates_keep_the_half_way_student_and_its_probe_answers(run):
    """loop.warmup_rates on a warm-up cached without its half-way copy: the warm-up is trained
    again beside the cache for the copy alone (the cached student keeps its answer cache), the
    copy answers the probe, and a later run finds both in the cache."""
    tmp, _ = run
    for copy in (cache_root() / "warmup").glob("*/step-3"):  # as if cached before the option: only this test keeps one
        shutil.rmtree(copy)
    rates = sgi("profile", *overrides(tmp, ["name=e2e-rates", "loop.warmup_rates=true"]), cwd=tmp)
    assert rates.returncode == 0, rates.stderr[-3000:]
    assert "warm-up SFT" in rates.stderr  # trained again for the copy
    kept = list((cache_root() / "warmup").glob("*/step-3/merged/model.safetensors"))
    assert kept and not list((cache_root() / "warmup").glob("*-again"))
    store = Store(tmp / "runs" / "e2e-rates" / "sgi.duckdb", read_only=True)
    try:
        assert store.halfway_ids() == {i.item_id for i in store.items("probe")}
        assert store.halfway_skill_states().keys() == store.skill_states(0).keys()
        ledger = {stage: detail for r, stage, _, _, detail in store.ledger()}
        assert ledger["halfway"].startswith("24 probe items") and "after step 3" in ledger["halfway"]
        assert "24 from the warm-up student's answer cache" in ledger["infer"]
    finally:
        store.close()
    again = sgi("profile", *overrides(tmp, ["name=e2e-rates-again", "loop.warmup_rates=true"]), cwd=tmp)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "loading the student" not in again.stderr and "warm-up SFT" not in again.stderr
    first, second = (Store(tmp / "runs" / name / "sgi.duckdb", read_only=True)
                     for name in ("e2e-rates", "e2e-rates-again"))
    try:
        assert second.halfway_skill_states() == first.halfway_skill_states()
    finally:
        first.close()
        second.close()


def test_status_shows_ledger_and_profile(run):
    tmp, _ = run
    result = sgi("status", str(tmp / "runs" / "e2e"), cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert "diagnose" in result.stdout and "Missing-Skill-Profile, round 0" in result.stdout


def test_changing_nothing_but_a_bad_key_is_a_clear_error(run):
    tmp, _ = run
    result = sgi("profile", *overrides(tmp, ["student.temprature=1"]), cwd=tmp)
    assert result.returncode == 2
    assert "student.temprature: unknown key" in result.stderr and "Traceback" not in result.stderr


def _unlabelled_file(path: Path) -> Path:
    """Three kinds of question, no skill labels: the embed teacher must find the kinds."""
    rows = []
    for i in range(2, 14):
        rows.append({"q": f"What is {i} + {i + 3}?", "a": str(2 * i + 3)})
        rows.append({"q": f"Simplify the fraction {i}/{2 * i}.", "a": "1/2"})
        rows.append({"q": f"How many legs do {i} spiders have in total?", "a": str(8 * i)})
    with path.open("w") as f:
        for n, row in enumerate(rows):
            # the names datasets carry: read as probe and pool
            f.write(json.dumps({**row, "split": "validation" if n % 3 == n // 3 % 3 else "train"}) + "\n")
        f.write('{"q": "a row without its answer", "split": "pool"}\n')
    return path


def test_file_task_with_embed_teacher_inline(tmp_path):
    """The other path: a JSONL file, the embed teacher, no warm-up, the inline executor."""
    data = _unlabelled_file(tmp_path / "three_kinds.jsonl")
    config = tmp_path / "file.yaml"
    config.write_text(
        f"name: files\nruns_dir: {tmp_path / 'runs'}\n"
        f"task: {{kind: file, file: {{path: {data}, fields: {{question: q, answer: a, split: split}}, answer_kind: math, on_bad_row: skip}}}}\n"
        "teacher: {kind: embed}\nwarmup: {enabled: false}\nray: {enabled: false}\n"
        "student: {max_new_tokens: 12, kshot: 1}\n"
    )
    result = sgi("profile", "--quiet", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    store = Store(tmp_path / "runs" / "files" / "sgi.duckdb", read_only=True)
    try:
        catalogue = store.catalogue()
        assert len(catalogue) == 3
        labels = store.labels()
        kinds = {}
        for item in store.items():
            kind = item.question.split()[0] + item.question.split()[1]
            kinds.setdefault(kind, set()).add(labels[item.item_id][0])
        assert all(len(primary) == 1 for primary in kinds.values())  # one skill per kind of question
        assert len({next(iter(p)) for p in kinds.values()}) == 3
        probe = [i for i in store.items("probe")]
        assert len(store.attempts(0)) == len(probe)
        wrong = {a[0] for a in store.attempts(0) if not a[4]}
        assert store.diagnosed_ids(0) == wrong
        assert sum(r[3] for r in store.profile(0)) >= len(wrong)
        task = next(r.detail for r in store.ledger() if r.stage == "task")
        assert "split values read as train -> pool, validation -> probe" in task  # what `sgi status` shows
        events = [r[0] for r in store.db.execute("SELECT message FROM events WHERE stage = 'task'").fetchall()]
        assert len(events) == 1 and "skipped row 37" in events[0] and "answer" in events[0]
    finally:
        store.close()


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path):
    runs = tmp_path / "runs"
    result = sgi("profile", "--set", "student.model=/no/such/model", "--set", f"runs_dir={runs}",
                 "--set", "ray.enabled=false", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "student model '/no/such/model' does not exist" in result.stderr
    assert not (runs / "default").exists()  # failed before any work

    data = tmp_path / "rows.jsonl"
    data.write_text('{"q": "What is 1 + 1?", "a": "2"}\n{"q": "no answer here"}\n')
    result = sgi("profile", "--set", "task.kind=file", "--set", f"task.file={{path: {data}, fields: {{question: q, answer: a}}}}",
                 "--set", "teacher.kind=embed", "--set", f"runs_dir={runs}", "--set", "ray.enabled=false",
                 cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{data}, line 2: missing field 'answer'" in result.stderr
    assert not (runs / "default").exists()  # a fresh run that fails at its first stage leaves nothing
