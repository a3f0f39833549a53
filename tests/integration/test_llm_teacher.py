"""The `llm` teacher's four jobs against a real `vllm serve`, faults injected between.

The vLLM tests start SmolLM2-135M-Instruct under vLLM (CPU build, own virtualenv) on
127.0.0.1 as the teacher endpoint. A 135M teacher labels poorly; what is checked is the
plumbing and the constraints: schema-valid rows, only catalogue skills, bounded retries,
nothing lost under injected faults, and no request sent twice.
"""

from __future__ import annotations

import json
import os

import pytest
from support.runs import SGI, as_sets
from support.vllm_server import SERVED_NAME, FaultProxy, VLLMServer, require_vllm

from sgi.orchestrator import build, stages
from sgi.orchestrator.config import load_config
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.store import Store
from sgi.skills import synthesis
from sgi.skills.llm_teacher import _parse_reply, load_templates
from sgi.skills.records import Case, Skill
from sgi.skills.runs import SETUP_ROUND
from sgi.workers.teachers import make_teacher

ITEMS_CONFIG = ["task.gym.families={add_sub: 6, gcd: 6, lcm: 4, products: 4}", "task.gym.probe_per_family=1",
                "task.gym.test_per_family=1", "task.gym.general={}", "teacher.batch_size=8"]


@pytest.fixture(scope="module")
def vllm_url(tmp_path_factory):
    python = require_vllm()
    from sgi.workers.models import resolve_model

    server = VLLMServer(python, resolve_model("smollm2"), tmp_path_factory.mktemp("vllm") / "serve.log")
    try:
        server.wait_ready()
        yield server.base_url
    finally:
        server.stop()


def _context(tmp_path, base_url: str, *extra: str) -> stages.Context:
    cfg = load_config(None, [*ITEMS_CONFIG, "teacher.kind=llm", f"teacher.llm.base_url={base_url}",
                             f"teacher.llm.model={SERVED_NAME}", "teacher.llm.discovery_sample=12",
                             "teacher.llm.max_skills=6", *extra])
    store = Store(tmp_path / "sgi.duckdb")
    ctx = stages.Context(cfg=cfg, task=build.build_task(cfg), store=store,
                         teacher=make_teacher(**build.teacher_args(cfg, store)), reporter=Reporter(quiet=True))
    stages.load_task(ctx)
    return ctx


def _ok_replies_parse(store: Store) -> int:
    """Every usable reply in the store parses into its template's declared model."""
    templates = {t.id: t for t in load_templates().values()}
    rows = store.db.execute("SELECT template, response FROM teacher_calls WHERE status = 'ok'").fetchall()
    for template, response in rows:
        _parse_reply(templates[template], response, enum=None)  # raises on a reply outside its model
    return len(rows)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, vllm_url):
    """Discovery and labelling of ~28 items through the label stage, behind a proxy that counts requests."""
    counter = FaultProxy(vllm_url.removesuffix("/v1"), [None]).__enter__()  # forwards, spoils nothing
    ctx = _context(tmp_path_factory.mktemp("labelled"), counter.base_url)
    ctx.store.start_stage(SETUP_ROUND, "label")
    stages.label_items(ctx)
    yield ctx, counter
    counter.__exit__(None, None, None)
    ctx.store.close()


@pytest.mark.slow
@pytest.mark.vllm
def test_the_four_teacher_jobs_through_vllm_serve(labelled):
    ctx, _ = labelled
    store = ctx.store
    catalogue = store.catalogue()
    names = {s.name for s in catalogue}
    assert 1 <= len(catalogue) <= 6 and all(s.description for s in catalogue)
    labels = store.labels()
    items = store.items()
    assert len(labels) >= len(items) // 2  # a 135M teacher under guided decoding mostly answers
    assert all(1 <= len(skills) <= 5 and set(skills) <= names for skills in labels.values())

    teacher = ctx.teacher
    labelled_items = [i for i in items if i.item_id in labels][:4]
    cases = [Case(i, output="I think it is 0", extracted="0", skills=labels[i.item_id]) for i in labelled_items]
    diagnoses = teacher.diagnose(cases, {}, store.catalogue())
    assert diagnoses and all(1 <= len(d.skills) <= 3 and set(d.skills) <= set(labels[d.item_id]) for d in diagnoses)

    skill = labels[labelled_items[0].item_id][0]
    references = [i for i in items if skill in labels.get(i.item_id, ())][:3]
    candidates = teacher.synthesize(skill, references, 2, seed=7, avoid=[i.question for i in items])
    assert candidates and all(len(c.solutions) == 3 and c.item.split == "synthetic" for c in candidates)
    assert all(c.item.meta["provenance"]["skill"] == skill for c in candidates)
    assert all(c.item.question not in {i.question for i in items} for c in candidates)
    kept = [c for c in candidates if synthesis.keep(c)]  # 2 of 3 solutions agree: the paper's rule
    assert len(kept) <= len(candidates)

    assert _ok_replies_parse(store) > 0
    usage = {row.template: row for row in store.teacher_usage()}
    assert {"discover.v1", "merge.v1", "label.v1", "diagnose.v1", "synthesize.v1", "solve.v1"} <= set(usage)
    assert all(row.prompt_tokens > 0 and row.completion_tokens > 0 for row in usage.values())  # per template
    assert (usage["label.v1"].round, usage["label.v1"].stage) == (SETUP_ROUND, "label")  # charged to the ledger's running stage


@pytest.mark.slow
@pytest.mark.vllm
def test_a_repeated_stage_sends_no_request_twice(labelled):
    ctx, counter = labelled
    first = ctx.store.labels(), ctx.store.catalogue()
    sent = counter.seen["ok"]
    assert sent > 0
    ctx.store.reset_stages([(SETUP_ROUND, "label")])  # forget labels and catalogue, as --force-from label
    assert ctx.store.labels() == {}
    ctx.teacher = make_teacher(**build.teacher_args(ctx.cfg, ctx.store))  # a fresh teacher, same store
    stages.label_items(ctx)
    assert counter.seen["ok"] == sent  # every answer came from the store's cache
    assert (ctx.store.labels(), ctx.store.catalogue()) == first


@pytest.mark.slow
@pytest.mark.vllm
def test_injected_faults_are_retried_within_bounds_and_nothing_is_lost(tmp_path, vllm_url):
    schedule = ["500", None, "truncate", None, "drop", None, None, "delay", None, None]
    # The timeout leaves a loaded 2-core machine time to answer 8 requests at once; only the
    # injected delay (2 s longer) must run into it. Two passes through the schedule hit every
    # fault twice; a fault on every tenth request to the end only added 20 s waits.
    with FaultProxy(vllm_url.removesuffix("/v1"), schedule, delay_s=22.0, cycles=2) as proxy:
        ctx = _context(tmp_path, proxy.base_url, "teacher.llm.timeout_s=20", "teacher.llm.max_retries=2",
                       "teacher.max_retries=2")
        detail = stages.label_items(ctx)
    store = ctx.store
    items = store.items()
    labelled = store.labels()
    calls = store.db.execute("SELECT key, attempt, status, error, response FROM teacher_calls").fetchall()
    keys = {key for key, *_ in calls}
    answered = {key for key, _, status, *_ in calls if status == "ok"}
    label_keys = {key for (key,) in store.db.execute("SELECT key FROM teacher_calls WHERE template = 'label.v1'").fetchall()}

    assert proxy.seen["500"] and proxy.seen["drop"] and proxy.seen["delay"] and proxy.seen["truncate"]
    # Bounded: each logical request is tried at most 1 + 2 times by us, each try at most 1 + 2 times
    # by the HTTP client (3 x 3 = 9 server hits per request at the worst).
    assert sum(proxy.seen.values()) <= 9 * len(keys)
    assert max(attempt for _, attempt, *_ in calls) <= 2
    truncated = [c for c in calls if c[2] == "error" and "TeacherOutputError" in c[3]]
    assert truncated and all(c[4] for c in truncated)  # the raw text is kept with the error
    # Nothing lost: every item is labelled, or its request is recorded as failed after its tries.
    assert len(label_keys) == len(items)
    assert len(items) - len(labelled) == len(label_keys - answered)
    assert ("unlabelled" in detail) == (len(labelled) < len(items))
    assert _ok_replies_parse(store) > 0
    store.close()


FEW_ITEMS = ["task.gym.families={add_sub: 2, gcd: 2}"]  # 8 items: one batch of the label stage


@pytest.mark.slow
@pytest.mark.vllm
def test_a_server_refusing_the_schema_is_asked_in_plain_json(tmp_path, vllm_url):
    """structured auto against a server without structured outputs (a 400 for any response_format):
    the requests in flight are refused once and asked again without the schema at no cost in
    retries, every later one goes plain, and each reply is parsed as any other. SmolLM2-135M
    writes no JSON unguided (0 of 16 plain replies over four templates), so here the replies
    end as recorded parse errors with their text and the items stay unlabelled, never guessed."""
    with FaultProxy(vllm_url.removesuffix("/v1"), [None], refuse_schema=True) as proxy:
        ctx = _context(tmp_path, proxy.base_url, *FEW_ITEMS, "teacher.llm.max_concurrency=4", "teacher.max_retries=0",
                       "teacher.llm.max_tokens=48")
        ctx.store.add_skills([Skill("addition", "adding whole numbers"), Skill("gcd", "greatest common divisor")],
                             "llm")
        ctx.store.start_stage(SETUP_ROUND, "label")
        detail = stages.label_items(ctx)
    items = ctx.store.items()
    assert 1 <= proxy.seen["refused"] <= 4  # at most the requests in flight when the first 400 came back
    tries = ctx.store.db.execute("SELECT status, error FROM teacher_calls").fetchall()
    assert proxy.seen["ok"] == len(tries) == len(items)  # no retries allowed, yet every item had its plain try
    assert all(status == "ok" or error.startswith("TeacherOutputError") for status, error in tries)
    _ok_replies_parse(ctx.store)
    assert ("unlabelled" in detail) == (len(ctx.store.labels()) < len(items))
    ctx.store.close()


@pytest.mark.slow
@pytest.mark.vllm
def test_a_schema_refusal_under_structured_json_schema_stops_the_run_and_says_why(tmp_path, vllm_url):
    """structured json_schema demands guided decoding: a refusal ends `sgi profile` (on Ray: the
    teacher's actor raises it) with one line naming the setting, before anything is labelled."""
    import subprocess

    with FaultProxy(vllm_url.removesuffix("/v1"), [None], refuse_schema=True) as proxy:
        sets = [*ITEMS_CONFIG, *FEW_ITEMS, f"runs_dir={tmp_path / 'runs'}", "warmup.enabled=false", "ray.num_cpus=2",
                "teacher.kind=llm", f"teacher.llm.base_url={proxy.base_url}", f"teacher.llm.model={SERVED_NAME}",
                "teacher.llm.structured=json_schema"]
        cmd = [*SGI, "profile", *as_sets(sets)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "teacher.llm.structured is 'json_schema' but the server refused" in line
    assert "teacher.llm.structured: auto" in line and "Traceback" not in result.stderr
    assert 1 <= proxy.seen["refused"] <= 8 and proxy.seen["ok"] == 0  # nothing went through without the schema
    store = Store(tmp_path / "runs" / "default" / "sgi.duckdb", read_only=True)
    assert store.stage_done(SETUP_ROUND, "task") and not store.stage_done(SETUP_ROUND, "label")  # resumable
    store.close()


@pytest.mark.slow
@pytest.mark.vllm
def test_sgi_profile_with_the_llm_teacher_on_ray_keeps_the_key_secret(tmp_path, vllm_url):
    """The CLI, on Ray: the teacher actor records its calls through the store actor, per stage."""
    import os
    import subprocess

    secret = "sk-sgi-test-3f9a1c-do-not-log"
    sets = [*ITEMS_CONFIG, "name=llm", f"runs_dir={tmp_path / 'runs'}", "warmup.enabled=false", "ray.num_cpus=2",
            "teacher.kind=llm", f"teacher.llm.base_url={vllm_url}", f"teacher.llm.model={SERVED_NAME}",
            "teacher.llm.discovery_sample=8", "teacher.llm.max_skills=4", "teacher.llm.api_key_env=SGI_TEST_TEACHER_KEY"]
    env = {**os.environ, "SGI_TEST_TEACHER_KEY": secret}
    cmd = [*SGI, "profile", *as_sets(sets)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "llm"
    status = subprocess.run([*SGI, "status", str(run_dir)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert status.returncode == 0 and "LLM teacher usage" in status.stdout

    store = Store(run_dir / "sgi.duckdb", read_only=True)
    charged = {(round_, stage) for round_, stage, *_ in store.teacher_usage()}
    assert (SETUP_ROUND, "label") in charged and (0, "diagnose") in charged
    assert store.stage_done(0, "diagnose") and store.diagnosed_ids(0)
    store.close()
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.stdout + result.stderr + status.stdout + status.stderr


@pytest.mark.slow
def test_the_local_teacher_answers_in_process_with_the_same_prompts_and_cache(tmp_path):
    """teacher.kind local: SmolLM2 in this process, no guided decoding, so replies that do not
    parse are retried and then recorded; whatever is kept is schema-valid and in the catalogue."""
    cfg = load_config(None, [*ITEMS_CONFIG, "teacher.kind=local", "teacher.llm.max_tokens=64",
                             "teacher.max_retries=1"])
    store = Store(tmp_path / "sgi.duckdb")
    teacher = make_teacher(**build.teacher_args(cfg, store))
    items = build.build_task(cfg).load_items()[:3]
    catalogue = [Skill("addition", "adding whole numbers"), Skill("gcd", "greatest common divisor"),
                 Skill("lcm", "least common multiple")]
    store.start_stage(SETUP_ROUND, "label")
    labels = teacher.label(items, catalogue)
    assert all(label.skill in {"addition", "gcd", "lcm"} for label in labels)
    calls = store.db.execute("SELECT key, attempt, status, model FROM teacher_calls").fetchall()
    assert len({key for key, *_ in calls}) == len(items)  # one logical request per item
    assert all(attempt <= 1 for _, attempt, *_ in calls) and {status for _, _, status, _ in calls} <= {"ok", "error"}
    assert all(model.endswith("smollm2-0.1.2") for *_, model in calls)
    assert len({l.item_id for l in labels}) == sum(status == "ok" for _, _, status, _ in calls)
    _ok_replies_parse(store)
    again = make_teacher(**build.teacher_args(cfg, store)).label(items, catalogue)  # answered from the cache
    assert sorted(again, key=repr) == sorted(labels, key=repr)
    assert len(store.db.execute("SELECT key FROM teacher_calls").fetchall()) == len(calls)
    store.close()


# Run in the vLLM virtualenv: the local teacher labels and diagnoses items, then does both again;
# then it labels an item beside one too long for the model in one batch.
LOCAL_VLLM_TEACHER = """
import dataclasses, json, sys
from sgi.orchestrator import build
from sgi.orchestrator.config import load_config
from sgi.orchestrator.store import Store
from sgi.skills.records import Case, Skill
from sgi.skills.runs import SETUP_ROUND
from sgi.workers.teachers import make_teacher

cfg = load_config(None, json.loads(sys.argv[2]))
store = Store(sys.argv[1])
teacher = make_teacher(**build.teacher_args(cfg, store))
items = build.build_task(cfg).load_items()
catalogue = [Skill(name, description) for name, description in json.loads(sys.argv[3])]
store.start_stage(SETUP_ROUND, "label")
passes = []
for _ in range(2):
    labels = teacher.label(items[:6], catalogue)
    labelled = {i.item_id: tuple(l.skill for l in labels if l.item_id == i.item_id) for i in items[:6]}
    cases = [Case(i, output="0", extracted="0", skills=labelled[i.item_id]) for i in items[:6]]
    diagnoses = teacher.diagnose(cases, {}, catalogue)
    calls = store.db.execute("SELECT count(*) FROM teacher_calls").fetchone()[0]
    passes.append({"labels": labelled, "diagnoses": {d.item_id: d.skills for d in diagnoses}, "calls": calls})
too_long = dataclasses.replace(items[0], item_id="too-long", question="What is 1 + 1? " * 2000)
mixed = sorted({l.item_id for l in teacher.label([too_long, items[6]], catalogue)})
store.close()
with open(sys.argv[4], "w") as out:  # not stdout: vLLM logs there
    json.dump({"sender": type(teacher.complete.__self__.sender).__name__, "passes": passes, "mixed": mixed,
               "mate": items[6].item_id}, out)
"""


@pytest.mark.slow
@pytest.mark.vllm
def test_the_local_teacher_on_vllm_answers_inside_the_schema_and_from_the_cache(tmp_path):
    """teacher.local.engine vllm: vllm.LLM in the teacher's process, each reply's JSON schema
    guiding decoding, so every reply parses and names only catalogue skills; a request vLLM
    refuses (too long) fails alone, not the batch it was sent in."""
    import subprocess

    python = require_vllm()
    catalogue = [["addition-subtraction", "adding and subtracting whole numbers"],
                 ["gcd", "greatest common divisor"], ["lcm", "least common multiple"],
                 ["multiplication", "multiplying whole numbers"]]
    sets = [*ITEMS_CONFIG, "teacher.kind=local", "teacher.local.engine=vllm", "teacher.local.dtype=float32",
            "teacher.max_retries=0"]
    result = subprocess.run([str(python), "-c", LOCAL_VLLM_TEACHER, str(tmp_path / "sgi.duckdb"), json.dumps(sets),
                             json.dumps(catalogue), str(tmp_path / "out.json")], capture_output=True, text=True,
                            timeout=900, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads((tmp_path / "out.json").read_text())
    first, again = out["passes"]
    assert out["sender"] == "VLLMLocalSender"
    names = {name for name, _ in catalogue}
    assert all(1 <= len(skills) <= 5 and set(skills) <= names for skills in first["labels"].values())
    assert len(first["diagnoses"]) == len(first["labels"])
    assert all(1 <= len(skills) <= 3 and set(skills) <= set(first["labels"][item])
               for item, skills in first["diagnoses"].items())
    assert again == first  # the second pass answered from the store, generating nothing
    store = Store(tmp_path / "sgi.duckdb", read_only=True)
    assert _ok_replies_parse(store) == first["calls"] + 1 == 13  # each request answered at its first try
    ((error,),) = store.db.execute("SELECT error FROM teacher_calls WHERE status = 'error'").fetchall()
    store.close()
    assert "maximum context length" in error and out["mixed"] == [out["mate"]]  # its batch-mate answered
