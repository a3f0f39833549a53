"""Property tests for the store's idempotent writers, on real DuckDB files.

The promise behind "resume anything, lose nothing": a stage that is cut off and run again
re-sends batches it already wrote, sends them in another order, or sends only part of
them. So for every writer, any plan of repeated / partial / overlapping / reordered
batches of the same rows must leave exactly the table content that one clean write of
all rows leaves, and the writers' "new rows" counts must add up to the rows stored.

Each hypothesis example opens two fresh stores in its own temporary directory (pytest's
function-scoped fixtures are not reset between examples): one gets the plan, the other
the clean write. Every table is compared in full, sorted, timestamp columns left out.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgi.orchestrator.rows import DifficultyRow
from sgi.orchestrator.store import ScoredAttempt, Store
from sgi.skills.records import SPLITS, Candidate, Diagnosis, Generation, Item, Label, Skill, SynthesisOutcome
from sgi.skills.selection import Selected

# 20 examples per property keeps the file near half a minute on 2 cores;
# SGI_PROPERTY_EXAMPLES=500 for a deeper search.
SETTINGS = settings(
    max_examples=int(os.environ.get("SGI_PROPERTY_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- value strategies ------------------------------------------------------------------

# Any UTF-8 text (NUL, quotes, emoji, combining marks included): keys are compared exactly.
text = st.text(st.characters(codec="utf-8"), max_size=12)
key = st.text(st.characters(codec="utf-8"), min_size=1, max_size=6)
# A tiny alphabet as well, so different records often share parts of their keys.
small_key = st.text("ab1", min_size=1, max_size=3)
ids = st.one_of(small_key, key)
prob = st.floats(0.0, 1.0, allow_nan=False)
rounds = st.integers(-1, 3)
json_value = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), text,
                       st.floats(allow_nan=False, allow_infinity=False))


def items(split=st.sampled_from((*SPLITS, "synthetic"))):
    return st.builds(
        Item, item_id=ids, question=text, answer=text, split=split, family=text,
        skills=st.lists(key, max_size=3).map(tuple),
        meta=st.dictionaries(key, json_value, max_size=3),
    )


generations = st.builds(
    Generation, item_id=ids, sample=st.integers(0, 3), text=text, n_tokens=st.integers(0, 64),
    mean_prob=prob, min_prob=prob,
)
scored = st.builds(ScoredAttempt, generation=generations, extracted=text, correct=st.booleans())
labels = st.builds(Label, item_id=ids, skill=ids, score=st.floats(-1.0, 1.0, allow_nan=False))
diagnoses = st.builds(Diagnosis, item_id=ids, skills=st.lists(ids, min_size=1, max_size=3).map(tuple), reason=text)
difficulty = st.builds(DifficultyRow, ids, st.booleans(), st.sampled_from(("wrong", "inconsistent", "ok")),
                       st.integers(0, 3))
candidates = st.builds(Candidate, item=items(st.just("synthetic")), solutions=st.lists(text, max_size=3).map(tuple),
                       verified=st.booleans())
selected = st.builds(Selected, item_id=ids, skill=text, cause=text,
                     reason=st.sampled_from(("pair", "fill", "uniform", "embed", "synthetic")))
skills = st.builds(Skill, name=ids, description=text, family=text)
checkpoints = st.tuples(st.integers(-1, 5), text, text, st.fixed_dictionaries({
    "steps": st.integers(0, 1000), "examples": st.integers(0, 10_000),
    "final_loss": st.floats(0, 20, allow_nan=False), "seconds": st.floats(0, 1e5, allow_nan=False),
}))


# --- write plans -----------------------------------------------------------------------


@st.composite
def plans(draw, n: int) -> list[list[int]]:
    """Batches of record indices: a shuffled partition that covers every record once, plus
    extra batches (repeats, overlaps, duplicates within a batch, empty), all reordered."""
    order = draw(st.permutations(range(n)))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    bounds = [0, *cuts, n]
    cover = [list(order[a:b]) for a, b in zip(bounds, bounds[1:])]
    extra = draw(st.lists(st.lists(st.integers(0, n - 1), max_size=n + 2), max_size=4))
    return draw(st.permutations(cover + extra))


# --- comparing stores ------------------------------------------------------------------

# Real DuckDB files; on tmpfs where there is one (same engine and file format, but a commit's
# fsync costs nothing, which halves the time of the ~700 stores these tests open).
_TMPFS = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def fresh_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(dir=_TMPFS, prefix="sgi-prop-")


_SELECTS: dict[str, str] = {}


def content(store: Store) -> dict[str, list[tuple]]:
    """Every base table, all non-timestamp columns, sorted by all of them."""
    if not _SELECTS:  # the schema is fixed: build the queries once
        tables = store.db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            cols = ", ".join(
                f'"{c}"' for c, t in store.db.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                    "ORDER BY ordinal_position", [table],
                ).fetchall()
                if not t.startswith("TIMESTAMP")
            )
            _SELECTS[table] = f"SELECT {cols} FROM {table} ORDER BY {cols}"
    return {table: store.db.execute(sql).fetchall() for table, sql in _SELECTS.items()}


def rows_stored(tables: dict[str, list[tuple]]) -> int:
    return sum(len(rows) for table, rows in tables.items() if table != "meta")


def check_plan(write: Callable[[Store, list[Any]], int], records: Sequence[Any], plan: list[list[int]],
               *, counts: bool = True) -> None:
    with fresh_dir() as tmp:
        planned, clean = Store(Path(tmp) / "plan.duckdb"), Store(Path(tmp) / "clean.duckdb")
        try:
            added = [write(planned, [records[i] for i in batch]) for batch in plan]
            clean_added = write(clean, list(records))
            expected = content(clean)
            assert content(planned) == expected
            if counts:
                assert sum(added) == clean_added == rows_stored(expected)
        finally:
            planned.close()
            clean.close()


def by_round(write_round: Callable[[Store, int, list[Any]], int]) -> Callable[[Store, list[Any]], int]:
    """Records are (round, record); a batch is written one call per round, in batch order."""

    def write(store: Store, batch: list[tuple[int, Any]]) -> int:
        groups: dict[int, list[Any]] = {}
        for r, record in batch:
            groups.setdefault(r, []).append(record)
        return sum(write_round(store, r, recs) for r, recs in groups.items())

    return write


def unique(strategy, natural_key, max_size=8):
    """The rows of one stage: distinct natural keys (the same key means the same row)."""
    return st.lists(strategy, min_size=1, max_size=max_size, unique_by=natural_key)


# --- the properties --------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_add_items(data):
    records = data.draw(unique(items(), lambda i: i.item_id))
    check_plan(Store.add_items, records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_skills(data):
    records = data.draw(unique(skills, lambda s: s.name))
    check_plan(lambda s, batch: s.add_skills(batch, "rules"), records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_labels(data):
    records = data.draw(unique(labels, lambda l: (l.item_id, l.skill)))
    check_plan(Store.add_labels, records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_attempts(data):
    records = data.draw(unique(st.tuples(rounds, scored), lambda r: (r[0], r[1].generation.item_id, r[1].generation.sample)))
    check_plan(by_round(Store.add_attempts), records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_evals(data):
    records = data.draw(unique(st.tuples(rounds, scored), lambda r: (r[0], r[1].generation.item_id)))
    check_plan(by_round(Store.add_evals), records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_difficulty(data):
    records = data.draw(unique(st.tuples(rounds, difficulty), lambda r: (r[0], r[1][0])))
    check_plan(by_round(Store.add_difficulty), records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_diagnoses(data):
    # One diagnosis per (round, item); its skills may repeat (the same row sent twice in one batch).
    records = data.draw(unique(st.tuples(rounds, diagnoses), lambda r: (r[0], r[1].item_id)))
    check_plan(by_round(Store.add_diagnoses), records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_synthesized(data):
    cands = st.tuples(rounds, st.builds(SynthesisOutcome, candidates, ids, ids, st.booleans()))
    records = data.draw(unique(cands, lambda r: r[1].candidate.item.item_id))
    check_plan(by_round(Store.add_synthesized), records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_add_checkpoint(data):
    records = data.draw(unique(checkpoints, lambda c: c[0], max_size=4))

    def write(store, batch):
        return sum(store.add_checkpoint(*c) for c in batch)

    check_plan(write, records, data.draw(plans(len(records))))


@SETTINGS
@given(st.data())
def test_log(data):
    """Notes are keyed by their text (schema v3): a redone stage logs nothing twice."""
    records = data.draw(unique(st.tuples(rounds, st.sampled_from(("task", "label", "select")), text), lambda r: r))

    def write(store, batch):
        for r, stage, message in batch:
            store.log(r, stage, message)
        return 0

    check_plan(write, records, data.draw(plans(len(records))), counts=False)


@SETTINGS
@given(st.data())
def test_add_train_set(data):
    """A training set is one ordered list whose positions come from its order, so the only
    partial write that can occur is a prefix of it (`add_train_set` numbers whatever it is
    given from 0). Repeated, reordered prefixes of the full set equal one clean write.
    The same set is written for several rounds (positions collide across rounds)."""
    chosen = data.draw(st.lists(selected, min_size=1, max_size=10))  # repeats allowed, as in training
    strategy = data.draw(st.sampled_from(("stat-sel", "uniform", "stat-syn")))
    round_set = data.draw(st.lists(rounds, min_size=1, max_size=3, unique=True))
    cuts = data.draw(st.lists(st.tuples(st.sampled_from(round_set), st.integers(0, len(chosen))), max_size=6))
    full = [(r, len(chosen)) for r in round_set]
    plan = data.draw(st.permutations(cuts + full))
    with fresh_dir() as tmp:
        planned, clean = Store(Path(tmp) / "plan.duckdb"), Store(Path(tmp) / "clean.duckdb")
        try:
            added = sum(planned.add_train_set(r, strategy, chosen[:n]) for r, n in plan)
            clean_added = sum(clean.add_train_set(r, strategy, chosen) for r in round_set)
            assert content(planned) == content(clean)
            assert added == clean_added == len(chosen) * len(round_set)
            for r in round_set:
                assert [t[0] for t in planned.db.execute(
                    "SELECT item_id FROM train_sets WHERE round = ? ORDER BY position", [r]).fetchall()] == [
                    s.item_id for s in chosen]
        finally:
            planned.close()
            clean.close()


@pytest.mark.xfail(strict=True, reason="add_train_set numbers rows from 0 in every call: only a whole set "
                   "or a prefix of it can be re-sent; sgi writes each round's set in one call")
def test_add_train_set_from_a_non_prefix_part():
    """The limit of the property above, pinned: a part that is not a prefix (here the second
    half, sent first) lands at positions 0-1, and the full set sent after it keeps those rows,
    so the round trains on i2, i3, i2, i3 and i0, i1 are lost. strict: a fix flips this test."""
    chosen = [Selected(f"i{n}", "k", "", "pair") for n in range(4)]
    with fresh_dir() as tmp:
        s = Store(Path(tmp) / "s.duckdb")
        try:
            s.add_train_set(0, "stat-sel", chosen[2:])
            s.add_train_set(0, "stat-sel", chosen)
            stored = s.db.execute("SELECT item_id FROM train_sets WHERE round = 0 ORDER BY position").fetchall()
            assert [r[0] for r in stored] == ["i0", "i1", "i2", "i3"]  # stored: i2, i3, i2, i3
        finally:
            s.close()


@SETTINGS
@given(st.data())
def test_a_failing_batch_writes_nothing(data):
    """A batch that fails part-way (a bad row after good ones) is rolled back whole, and the
    store stays usable: the same plan with failed batches mixed in ends equal to a clean write."""
    records = data.draw(unique(st.tuples(rounds, scored), lambda r: (r[0], r[1].generation.item_id, r[1].generation.sample)))
    plan = data.draw(plans(len(records)))
    poison_at = data.draw(st.lists(st.integers(0, len(plan)), min_size=1, max_size=3))
    # output is NOT NULL; the id is longer than any drawn key, so it never meets a stored row
    bad = ScoredAttempt(Generation("poisoned-row", 0, None, 1, 0.5, 0.5), "x", False)
    write = by_round(Store.add_attempts)
    with fresh_dir() as tmp:
        planned, clean = Store(Path(tmp) / "plan.duckdb"), Store(Path(tmp) / "clean.duckdb")
        try:
            for n, batch in enumerate(plan + [[]]):
                if n in poison_at:
                    before = content(planned)
                    good = [records[i][1] for i in batch]
                    with pytest.raises(duckdb.Error):
                        planned.add_attempts(0, good + [bad])
                    assert content(planned) == before
                write(planned, [records[i] for i in batch])
            write(clean, list(records))
            assert content(planned) == content(clean)
        finally:
            planned.close()
            clean.close()


def test_content_sees_every_writer_table(tmp_path):
    """The comparison above reads every table the writers touch (guards against a silent no-op)."""
    s = Store(tmp_path / "s.duckdb")
    try:
        tables = set(content(s))
    finally:
        s.close()
    assert {"items", "skills", "item_skills", "attempts", "evals", "difficulty", "diagnoses",
            "train_sets", "synthesized", "checkpoints"} <= tables
