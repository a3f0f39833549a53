"""The `llm` teacher without a server: its templates, config, reply checking and cache.
(Its four jobs against a real `vllm serve`: tests/integration/test_llm_teacher.py.)"""

from __future__ import annotations

import re

import pytest

from sgi.orchestrator.config import ConfigError, load_config
from sgi.orchestrator.store import Store
from sgi.skills.interfaces import TeacherOutputError
from sgi.skills.llm_teacher import ChatReply, LLMTeacher, load_templates
from sgi.skills.records import Case, Item, Skill, TeacherCall
from sgi.skills.runs import MIGRATIONS, SCHEMA_VERSION, StoreError
from sgi.workers.llm_client import ChatClient

def test_every_shipped_template_renders_with_its_declared_inputs():
    templates = load_templates()
    assert set(templates) == {"discover", "merge", "label", "diagnose", "synthesize", "solve"}
    teacher = LLMTeacher(lambda requests: [], templates)
    skill = [{"name": "gcd", "description": "greatest common divisor"}]
    inputs = {
        "discover": {"question": "gcd(12, 8)?", "answer": "4"},
        "merge": {"fine_skills": [{"name": "gcd", "count": 2, "description": "d"}], "max_skills": 5},
        "label": {"question": "q", "answer": "a", "catalogue": skill},
        "diagnose": {"question": "q", "answer": "a", "output": "o", "skills": skill},
        "synthesize": {"skill": "gcd", "description": "d", "references": [{"question": "q", "answer": "a"}]},
        "solve": {"question": "q"},
    }
    for name, values in inputs.items():
        request = teacher.request(name, **values)
        assert request.template == f"{name}.v1" and request.messages[0]["role"] == "system"
        assert "{{" not in request.messages[1]["content"] and "JSON" in request.messages[1]["content"]
    with pytest.raises(ValueError, match="declares inputs"):
        teacher.request("solve", question="q", answer="a")


def test_a_template_folder_overrides_by_name_and_bad_files_are_named(tmp_path):
    shipped = (load_templates()["solve"]).source
    (tmp_path / "solve.v2.j2").write_text("---\noutput: Solution\ninputs: [question]\nsystem: Be brief.\n---\n"
                                          "Solve {{ question }}. JSON please.\n")
    templates = load_templates(tmp_path)
    assert templates["solve"].id == "solve.v2" and templates["solve"].system == "Be brief."
    assert shipped.endswith("solve.v1.j2")
    (tmp_path / "nosuch.v1.j2").write_text("---\noutput: Solution\ninputs: [question]\n---\nx\n")
    with pytest.raises(ValueError, match="no template named 'nosuch'"):
        load_templates(tmp_path)
    (tmp_path / "nosuch.v1.j2").unlink()
    (tmp_path / "label.v3.j2").write_text("---\noutput: Nonsense\ninputs: [question]\n---\nx\n")
    with pytest.raises(ValueError, match=r"label.v3.j2: bad template"):
        load_templates(tmp_path)


def test_replies_outside_the_schema_or_the_catalogue_are_refused():
    teacher = LLMTeacher(lambda requests: [], load_templates())
    request = teacher.request("label", enum=["gcd", "lcm"], question="q", answer="a",
                              catalogue=[{"name": "gcd", "description": "d"}])
    assert request.schema["properties"]["skills"]["items"]["enum"] == ["gcd", "lcm"]
    assert request.parse('```json\n{"skills": ["lcm"], "reason": "r"}\n```').skills == ["lcm"]
    for bad in ('{"skills": ["primes"], "reason": "r"}', '{"skills": [], "reason": "r"}', '{"skills": ["gcd"', "Sure!"):
        with pytest.raises(TeacherOutputError):
            request.parse(bad)


def test_skill_descriptions_reach_the_prompts_of_a_fresh_teacher():
    """A resumed run (or a restarted teacher actor) diagnoses and synthesizes with a teacher
    that never built or saw the catalogue: the descriptions come with each call."""
    sent = []

    def record(requests):
        sent.extend(r.messages[1]["content"] for r in requests)
        return [ChatReply(error="not asked") for _ in requests]

    teacher = LLMTeacher(record, load_templates())
    item = Item("i1", "What is gcd(12, 8)?", "4", "pool", "gcd", ())
    catalogue = [Skill("gcd", "greatest common divisor by Euclid's algorithm")]
    teacher.diagnose([Case(item, output="6", extracted="6", skills=("gcd",))], {}, catalogue)
    teacher.synthesize("gcd", [item], 1, seed=0, description="greatest common divisor by Euclid's algorithm")
    assert len(sent) == 2 and all("Euclid's algorithm" in text for text in sent)


def test_merge_by_embedding_groups_fine_skills_and_names_each_group_by_its_most_frequent_member():
    from sgi.skills.llm_teacher import FineSkill
    from sgi.workers.embedder import Embedder

    teacher = LLMTeacher(lambda requests: [], load_templates(), merge="embed", max_skills=2, embed=Embedder().encode)
    fine = [FineSkill(skill="LCM of two numbers", description="least common multiple of two integers")] * 3 + [
        FineSkill(skill="lcm-via-gcd", description="least common multiple from the greatest common divisor"),
        FineSkill(skill="reverse-spelling", description="spell a word backwards letter by letter"),
        FineSkill(skill="spell-word-backwards", description="write the letters of a word in reverse order"),
    ]
    catalogue = teacher._merge_by_embedding(fine)
    assert sorted(s.name for s in catalogue) == ["lcm-of-two-numbers", "reverse-spelling"]
    assert {s.description for s in catalogue} >= {"least common multiple of two integers"}


def test_the_config_takes_a_key_name_never_a_key():
    cfg = load_config(None, ["teacher.kind=llm", "teacher.llm.base_url=http://127.0.0.1:1/v1",
                             "teacher.llm.model=m", "teacher.llm.api_key_env=MY_TEACHER_KEY"])
    assert cfg.teacher.llm.api_key_env == "MY_TEACHER_KEY"
    with pytest.raises(ConfigError, match="NAME of an environment variable"):
        load_config(None, ["teacher.llm.api_key_env=sk-abc123-secret"])
    with pytest.raises(ConfigError, match="teacher.llm.base_url"):
        load_config(None, ["teacher.kind=llm"])


def test_a_missing_key_variable_is_named_and_its_value_never_shown(monkeypatch):
    monkeypatch.delenv("SGI_TEST_TEACHER_KEY", raising=False)
    with pytest.raises(ValueError, match="SGI_TEST_TEACHER_KEY, which is not set"):
        ChatClient("http://127.0.0.1:1/v1", "m", api_key_env="SGI_TEST_TEACHER_KEY")


def test_teacher_calls_are_cached_in_the_store_and_charged_to_the_running_stage(tmp_path):
    store = Store(tmp_path / "sgi.duckdb")
    store.start_stage(0, "diagnose")
    row = TeacherCall("k1", 0, "label.v1", "m", "error", "{oops", "TeacherOutputError: bad", 10, 3, 0.5)
    store.add_teacher_calls([row, TeacherCall("k1", 1, "label.v1", "m", "ok", '{"a": 1}', "", 11, 4, 0.4)])
    assert store.teacher_cached(["k1", "k2"]) == {"k1": '{"a": 1}'}
    assert store.teacher_usage() == [(0, "diagnose", "label.v1", 2, 1, 21, 7, pytest.approx(0.9))]
    store.reset_stages([(0, "diagnose")])  # a redone stage keeps the cache: it is paid for
    assert store.teacher_cached(["k1"]) == {"k1": '{"a": 1}'}
    store.close()


@pytest.mark.parametrize("version", [3, 4, 5])
def test_an_older_store_is_readable_as_it_is_and_upgrades_in_place(tmp_path, version):
    """A store made at `version` (the tables of later migrations and the views that read them
    dropped) opens read-only as it is, and a write open upgrades it through the migrations."""
    path = tmp_path / "sgi.duckdb"
    store = Store(path)
    for view in ("compose_summary", "round_summary", "skill_evals", "profiles"):
        store.db.execute(f"DROP VIEW {view}")
    for later in (v for v in MIGRATIONS if v > version):
        for table in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", MIGRATIONS[later]):
            store.db.execute(f"DROP TABLE {table}")
    store.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
    store.close()
    old = Store(path, read_only=True)  # `sgi status` on an old run: readable as it is
    assert old.teacher_usage() == [] and old.ledger() == [] and old.compose_summary() == []
    assert old.round_summary() == [] and old.profile(0) == []
    old.close()
    store = Store(path)  # a write open upgrades it in place
    assert store.teacher_cached(["x"]) == {} and store.compose_summary() == []
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    store.close()


def test_a_version_2_store_has_its_events_keyed_by_text_when_upgraded(tmp_path):
    """Migration 003 changes a table (events), so a v2 store cannot be read without a write open."""
    path = tmp_path / "sgi.duckdb"
    store = Store(path)
    store.db.execute("DROP TABLE events")
    store.db.execute("CREATE TABLE events (ts TIMESTAMP, round INTEGER, stage VARCHAR, message VARCHAR)")
    store.db.execute("INSERT INTO events VALUES (now(), 0, 'label', 'a'), (now(), 0, 'label', 'a'), "
                     "(now(), 0, 'label', 'b')")
    store.db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(StoreError, match="store schema version 2, this sgi reads version"):
        Store(path, read_only=True)
    store = Store(path)
    assert sorted(m for (m,) in store.db.execute("SELECT message FROM events").fetchall()) == ["a", "b"]
    store.close()