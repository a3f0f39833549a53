"""The store on a real DuckDB file: idempotent writes, the ledger, and the MSP (golden)."""

from __future__ import annotations

import pytest

from sgi.orchestrator.store import ScoredAttempt, Store
from sgi.skills.records import Diagnosis, Generation, Item, Label, Skill
from sgi.skills.runs import StoreError


def _item(i: str, answer: str = "1") -> Item:
    return Item(item_id=i, question=f"q{i}", answer=answer, split="probe", family="f", meta={"n": 1})


def _attempt(i: str, correct: bool, sample: int = 0) -> ScoredAttempt:
    gen = Generation(item_id=i, sample=sample, text="x", n_tokens=2, mean_prob=0.8, min_prob=0.5)
    return ScoredAttempt(gen, extracted="x", correct=correct)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "run" / "sgi.duckdb")
    yield s
    s.close()


def test_same_stage_twice_adds_no_row(store):
    items = [_item("a"), _item("b")]
    assert store.add_items(items) == 2
    assert store.add_items(items) == 0
    assert store.add_labels([Label("a", "carry")]) == 1
    assert store.add_labels([Label("a", "carry")]) == 0
    assert store.add_attempts(0, [_attempt("a", True)]) == 1
    assert store.add_attempts(0, [_attempt("a", True)]) == 0
    assert store.add_diagnoses(0, [Diagnosis("a", ("carry",), "r")]) == 1
    assert store.add_diagnoses(0, [Diagnosis("a", ("carry",), "r")]) == 0
    assert store.counts() == {"items": 2, "skills": 0, "labels": 1, "attempts": 1, "difficult": 0, "diagnoses": 1}
    assert store.items()[0].meta == {"n": 1}


def test_ledger_marks_stages(store):
    assert not store.stage_done(0, "infer")
    store.start_stage(0, "infer")
    assert not store.stage_done(0, "infer")
    store.finish_stage(0, "infer", "10 items")
    assert store.stage_done(0, "infer")
    (row,) = store.ledger()
    assert row[:3] == (0, "infer", "done") and row[4] == "10 items"


def test_store_reopens_and_refuses_other_versions(tmp_path):
    path = tmp_path / "sgi.duckdb"
    s = Store(path)
    s.add_items([_item("a")])
    s.db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    s.close()
    with pytest.raises(StoreError, match="schema version 999"):
        Store(path)
    with pytest.raises(StoreError, match="no run store"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def test_missing_skill_profile_golden(store):
    """Hand-checked: 6 probe items, 3 skills, 4 diagnoses naming 5 skill mentions."""
    answers = {"i1": "1", "i2": "1", "i3": "2", "i4": "3", "i5": "1", "i6": "4"}
    store.add_items([_item(i, a) for i, a in answers.items()])
    store.add_skills([Skill("carry", "c"), Skill("borrow", "b"), Skill("sign", "s")], "rules")
    store.add_labels(
        [Label("i1", "carry"), Label("i2", "carry"), Label("i3", "carry"), Label("i4", "carry"),
         Label("i3", "borrow"), Label("i4", "borrow"), Label("i5", "borrow"),
         Label("i5", "sign"), Label("i6", "sign")]
    )
    correct = {"i1": True, "i2": False, "i3": False, "i4": False, "i5": True, "i6": False}
    store.add_attempts(0, [_attempt(i, c) for i, c in correct.items()])
    store.add_attempts(0, [_attempt("i1", False, sample=1)])  # extra samples never count
    store.add_diagnoses(
        0,
        [Diagnosis("i2", ("carry",), ""), Diagnosis("i3", ("carry", "borrow"), ""),
         Diagnosis("i4", ("borrow",), ""), Diagnosis("i6", ("sign",), "")],
    )
    rows = {r[0]: r[1:] for r in store.profile(0)}
    # skill: attempts, correct, missing, missing_rate, share, accuracy, floor
    assert rows["carry"] == (4, 1, 2, 0.5, 2 / 5, 0.25, 0.5)       # answers 1,1,2,3 -> "1" twice
    assert rows["borrow"] == (3, 1, 2, 2 / 3, 2 / 5, 1 / 3, 1 / 3)
    assert rows["sign"] == (2, 1, 1, 0.5, 1 / 5, 0.5, 0.5)
    assert [r[0] for r in store.profile(0)] == ["borrow", "carry", "sign"]  # by missing rate, then name
    assert store.skill_accuracy(0) == {"carry": 0.25, "borrow": 1 / 3, "sign": 0.5}
    assert store.profile(1) == []


def test_a_version_2_store_is_upgraded_in_place(tmp_path):
    """Stores written by the previous sgi (events without a key) open and keep their notes once each."""
    path = tmp_path / "sgi.duckdb"
    store = Store(path)
    store.db.execute("DROP TABLE events")
    store.db.execute("CREATE TABLE events (ts TIMESTAMP NOT NULL DEFAULT current_timestamp, round INTEGER NOT NULL, "
                     "stage VARCHAR NOT NULL, message VARCHAR NOT NULL)")
    store.db.execute("INSERT INTO events (round, stage, message) VALUES (0, 'x', 'a'), (0, 'x', 'a'), (0, 'x', 'b')")
    store.db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    store.close()
    store = Store(path)
    store.log(0, "x", "a")
    assert sorted(store.db.execute("SELECT message FROM events").fetchall()) == [("a",), ("b",)]
    store.close()
