"""The run's DuckDB file, reached only through this module.

One process owns the file (DuckDB refuses a second process, read-only included), so on
Ray a single store actor holds a `Store` and everyone else sends it rows. Every write is
insert-or-ignore on a natural key: repeating a stage after a crash adds nothing twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sgi.orchestrator import registry
from sgi.orchestrator.rows import (AttemptRow, ComposeRow, ComposeSummary, CurvePoint, DifficultyRow, LedgerRow,
                                   MetricsRow, ProfileRow, RLStep, RoundSummary, RouteRow, SignalRow, SkillEval,
                                   SolutionRow, SynthesizedRow, TeacherUsage, TokenRow, TokenSolutionRow, TrainRow)
from sgi.skills.learnability import SkillState
from sgi.skills.records import Diagnosis, Generation, Item, Label, Skill, SynthesisOutcome, TeacherCall
from sgi.skills.runs import (MIGRATIONS, SCHEMA_VERSION, SETUP_ROUND, SNAPSHOT_FILE, StoreError, copy_database, damaged,
                             named_queries, schema_version, stand_in_sql, upgrade_sql)

SNAPSHOT_EVERY_S = 10.0  # at most this often between stages; every finished stage publishes one
SNAPSHOT_SHARE = 0.05  # ... and never more than this share of the run's time spent copying


# What a full, read-only or failing disk raises inside DuckDB (its other errors are bugs).
DISK_ERRORS = (duckdb.IOException, duckdb.TransactionException, duckdb.FatalException)


QUERIES = named_queries("sgi.skills", "sql/queries.sql")


@dataclass(frozen=True)
class ScoredAttempt:
    """A generation after the task's checker has read it."""

    generation: Generation
    extracted: str
    correct: bool


class Store:
    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no run store here (is this a run directory?)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # e.g. a read-only file system
            raise StoreError(f"{self.path.parent}: cannot create the run directory ({err.strerror})") from None
        created = not self.path.exists()
        try:
            self.db = duckdb.connect(str(self.path), read_only=read_only)
            if not read_only:
                self._migrate()
        except duckdb.Error as err:  # a full disk fails the first commit; a damaged file its first read
            if hasattr(self, "db"):
                self.db.close()
            if created:  # leave no half-made store behind
                for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            problem = damaged(err, self.path)
            if problem is None and not isinstance(err, (duckdb.IOException, duckdb.TransactionException)):
                raise
            raise problem or StoreError(f"{self.path}: cannot open the run store ({err})") from None
        self._check_version()
        self.current_stage = (SETUP_ROUND, "")
        self._published = 0.0
        self._copy_seconds = 0.0

    def close(self) -> None:
        self.db.close()

    # --- schema -------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Make a new store, or bring an older one up to SCHEMA_VERSION in place (runs made by an
        earlier sgi stay usable): base.sql, then every migration after the store's version, then
        the views, in one transaction."""
        with self._transaction():
            found = schema_version(self.db)
            if found is None or min(MIGRATIONS) - 1 <= found <= SCHEMA_VERSION:  # others: _check_version says so
                self.db.execute(upgrade_sql(found))

    def _check_version(self) -> None:
        found = schema_version(self.db)
        if found == SCHEMA_VERSION:
            return
        stand_in = stand_in_sql(found) if self.read_only and found else None
        if stand_in:  # `sgi status` on an old run reads it as it is
            self.db.execute(stand_in)
            return
        raise StoreError(f"{self.path}: store schema version {found}, this sgi reads version {SCHEMA_VERSION}")

    def _transaction(self):
        return _Transaction(self)

    def _query(self, name: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self.db.execute(QUERIES[name], list(params)).fetchall()
        except DISK_ERRORS as err:
            raise self.write_error(err) from None

    def write_error(self, err: Exception) -> StoreError:
        """A full or failing disk as one line naming the store (finished batches stay committed)."""
        return StoreError(f"{self.path}: cannot write the run store ({str(err).splitlines()[0]})")

    def _insert(self, table: str, columns: str, rows: Iterable[Sequence[Any]]) -> int:
        """Insert-or-ignore; returns how many rows were new.

        The rows travel as one Arrow table scanned by a single INSERT ... SELECT:
        `executemany` ran one statement per row, about 360 rows/s whatever the batch
        (bench/bench_cluster.py --writer), which would have made this single writer the
        limit of a cluster's inference long before its GPUs.
        """
        rows = list(rows)
        if not rows:
            return 0
        sgi_batch = pa.table({f"c{i}": pa.array(values) for i, values in enumerate(zip(*rows))})  # noqa: F841
        with self._transaction():
            before = self.db.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            # `sgi_batch` is the local Arrow table above, found by DuckDB's replacement scan
            self.db.execute(f"INSERT OR IGNORE INTO {table} ({columns}) SELECT * FROM sgi_batch")
            after = self.db.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        self.publish_snapshot(every_s=SNAPSHOT_EVERY_S)
        return after - before

    # --- run and ledger -----------------------------------------------------------------

    def record_run(self, name: str, config_yaml: str) -> None:
        self._insert("runs", "run, config_yaml", [(name, config_yaml)])

    def run_info(self) -> tuple[str, str] | None:
        rows = self._query("run")
        return (rows[0][0], rows[0][1]) if rows else None

    def stage_done(self, round_: int, stage: str) -> bool:
        rows = self._query("stage_status", [round_, stage])
        return bool(rows) and rows[0][0] == "done"

    def start_stage(self, round_: int, stage: str) -> None:
        self._query("start_stage", [round_, stage])
        self.current_stage = (round_, stage)  # what teacher calls from now on are charged to

    def finish_stage(self, round_: int, stage: str, detail: str = "") -> None:
        self._query("finish_stage", [detail, round_, stage])
        self.publish_snapshot()

    def publish_snapshot(self, every_s: float = 0.0) -> None:
        """Copy the store to SNAPSHOT_FILE beside it (write a temporary file, then rename).

        Readers open the copy, never the store; the rename makes each copy appear whole.
        A failed copy is only a stale report, never a failed run: it is skipped.
        """
        if every_s:
            every_s = max(every_s, self._copy_seconds / SNAPSHOT_SHARE)
        if self.read_only or time.monotonic() - self._published < every_s:
            return
        started = time.monotonic()
        catalog = self.db.execute("SELECT current_database()").fetchone()[0]
        try:
            copy_database(self.db, catalog, self.path.with_name(SNAPSHOT_FILE))
        except (duckdb.Error, OSError):
            pass
        self._published = time.monotonic()
        self._copy_seconds = self._published - started

    def ledger(self) -> list[LedgerRow]:
        return [LedgerRow(*r) for r in self._query("ledger")]

    def log(self, round_: int, stage: str, message: str) -> None:
        try:
            self.db.execute("INSERT OR IGNORE INTO events (round, stage, message) VALUES (?, ?, ?)", [round_, stage, message])
        except DISK_ERRORS as err:
            raise self.write_error(err) from None

    def update_config(self, config_yaml: str) -> None:
        """The run's config after an accepted change (resume with harmless changes, or --force-from)."""
        self._query("update_config", [config_yaml])

    def started_stages(self) -> list[tuple[int, str]]:
        """(round, stage) of every stage the ledger has seen start, finished or not."""
        return [(r, s) for r, s, *_ in self._query("ledger")]

    def reset_stages(self, stages: Sequence[tuple[int, str]]) -> None:
        """Forget what these stages wrote (ledger rows included), in one transaction, so they run again."""
        with self._transaction():
            for round_, stage in stages:
                for statement in registry.stage(round_, stage).resets:
                    self.db.execute(statement, [round_] if "?" in statement else [])
                self.db.execute("DELETE FROM events WHERE round = ? AND stage = ?", [round_, stage])
                self.db.execute("DELETE FROM ledger WHERE round = ? AND stage = ?", [round_, stage])

    # --- writes -------------------------------------------------------------------------

    def add_items(self, items: Sequence[Item]) -> int:
        return self._insert(
            "items",
            "item_id, split, family, question, answer, supplied_skills, meta_json",
            (
                (i.item_id, i.split, i.family, i.question, i.answer, list(i.skills), json.dumps(i.meta, sort_keys=True))
                for i in items
            ),
        )

    def add_skills(self, skills: Sequence[Skill], source: str) -> int:
        return self._insert(
            "skills", "skill, description, family, source", ((s.name, s.description, s.family, source) for s in skills)
        )

    def add_labels(self, labels: Sequence[Label]) -> int:
        return self._insert("item_skills", "item_id, skill, score", ((l.item_id, l.skill, l.score) for l in labels))

    def add_attempts(self, round_: int, attempts: Sequence[ScoredAttempt]) -> int:
        return self._insert(
            "attempts",
            "round, item_id, sample, output, extracted, correct, n_tokens, mean_prob, min_prob",
            (
                (round_, a.generation.item_id, a.generation.sample, a.generation.text, a.extracted, a.correct,
                 a.generation.n_tokens, a.generation.mean_prob, a.generation.min_prob)
                for a in attempts
            ),
        )

    def add_halfway_attempts(self, attempts: Sequence[ScoredAttempt]) -> int:
        """The warm-up's half-way student's greedy probe answers (`stages.answer_halfway`)."""
        return self._insert(
            "halfway_attempts", "item_id, output, extracted, correct, n_tokens, mean_prob, min_prob",
            ((a.generation.item_id, a.generation.text, a.extracted, a.correct, a.generation.n_tokens,
              a.generation.mean_prob, a.generation.min_prob) for a in attempts),
        )

    def add_difficulty(self, round_: int, rows: Sequence[DifficultyRow]) -> int:
        return self._insert("difficulty", _columns("round", DifficultyRow), ((round_, *r) for r in rows))

    def add_diagnoses(self, round_: int, diagnoses: Sequence[Diagnosis]) -> int:
        return self._insert(
            "diagnoses",
            "round, item_id, skill, reason",
            ((round_, d.item_id, skill, d.reason) for d in diagnoses for skill in d.skills),
        )

    def add_train_set(self, round_: int, strategy: str, selected: Sequence[Any]) -> int:
        """selected: `skills.selection.Selected` rows, in training order."""
        return self._insert(
            "train_sets",
            "round, position, item_id, skill, cause, reason, strategy",
            ((round_, n, s.item_id, s.skill, s.cause, s.reason, strategy) for n, s in enumerate(selected)),
        )

    def add_synthesized(self, round_: int, rows: Sequence[SynthesisOutcome]) -> int:
        """Every STAT-Syn candidate, kept or not."""
        return self._insert(
            "synthesized",
            "item_id, round, skill, cause, question, answer, solutions, verified, kept",
            (
                (c.item.item_id, round_, skill, cause, c.item.question, c.item.answer, list(c.solutions), c.verified, kept)
                for c, skill, cause, kept in rows
            ),
        )

    def add_evals(self, round_: int, attempts: Sequence[ScoredAttempt], seconds: float | None = None) -> int:
        """The held-out answers; with `seconds` (per item) also what System 1 needs to reuse them."""
        if seconds is not None:
            self._insert("eval_signals", "round, item_id, margin, seconds",
                         ((round_, a.generation.item_id, a.generation.margin, seconds) for a in attempts))
        return self._insert(
            "evals",
            "round, item_id, output, extracted, correct, n_tokens, mean_prob, min_prob",
            (
                (round_, a.generation.item_id, a.generation.text, a.extracted, a.correct,
                 a.generation.n_tokens, a.generation.mean_prob, a.generation.min_prob)
                for a in attempts
            ),
        )

    def reuse_eval_answers(self, round_: int, item_ids: Sequence[str]) -> int:
        """Round `round_`'s evaluation answers to `item_ids` as its System-1 solutions (the same
        student, prompts and settings); returns how many were taken."""
        with self._transaction():
            before = self.db.execute("SELECT count(*) FROM solutions").fetchall()[0][0]
            self.db.execute(QUERIES["reuse_eval_answers"], [round_, list(item_ids)])
            after = self.db.execute("SELECT count(*) FROM solutions").fetchall()[0][0]
        return after - before

    def add_solutions(self, round_: int, solver: str, rows: Sequence[SolutionRow]) -> int:
        return self._insert("solutions", _columns("round, solver", SolutionRow), ((round_, solver, *r) for r in rows))

    def add_token_solutions(self, round_: int, model: str, threshold: float, rows: Sequence[TokenSolutionRow]) -> int:
        return self._insert("token_solutions", _columns("round, model, threshold", TokenSolutionRow),
                            ((round_, model, threshold, *r) for r in rows))

    def add_routes(self, round_: int, rows: Sequence[RouteRow]) -> int:
        return self._insert("routes", _columns("round", RouteRow), ((round_, *r) for r in rows))

    def add_compose_curve(self, points: Sequence[CurvePoint]) -> int:
        return self._insert("compose_curve", _columns("", CurvePoint), points)

    def add_compose_metrics(self, rows: Sequence[MetricsRow]) -> int:
        return self._insert("compose_metrics", _columns("", MetricsRow), rows)

    def add_rl_steps(self, round_: int, history: Sequence[dict[str, float]]) -> int:
        """history: `workers.rl.reinforce`'s per-step dicts (step, reward, reward_std, correct, ...)."""
        columns = ("step", "reward", "reward_std", "correct", "format", "kl", "loss", "completion_tokens")
        return self._insert("rl_steps", "round, " + ", ".join(columns),
                            ((round_, *(h.get(c) for c in columns)) for h in history))

    def rl_steps(self, round_: int) -> list[RLStep]:
        return [RLStep(*row) for row in self.db.execute(
            "SELECT step, reward, reward_std, correct, format, kl, loss, completion_tokens FROM rl_steps "
            "WHERE round = ? ORDER BY step", [round_]).fetchall()]

    def add_checkpoint(self, round_: int, path: str, base: str, metrics: dict[str, Any]) -> int:
        return self._insert(
            "checkpoints",
            "round, path, base, steps, examples, final_loss, seconds",
            [(round_, path, base, metrics["steps"], metrics["examples"], metrics["final_loss"], metrics["seconds"])],
        )

    def add_teacher_calls(self, rows: Sequence[TeacherCall]) -> int:
        """From `workers.llm_client`, charged to the running stage."""
        return self._insert("teacher_calls", _columns("", TeacherCall) + ", round, stage",
                            ((*row, *self.current_stage) for row in rows))

    # --- reads --------------------------------------------------------------------------

    def items(self, split: str | None = None) -> list[Item]:
        return [
            Item(item_id=r[0], split=r[1], family=r[2], question=r[3], answer=r[4],
                 skills=tuple(r[5]), meta=json.loads(r[6]))
            for r in self._query("items", [split])
        ]

    def catalogue(self) -> list[Skill]:
        return [Skill(name=r[0], description=r[1], family=r[2]) for r in self._query("catalogue")]

    def labels(self) -> dict[str, tuple[str, ...]]:
        """item_id -> its skills, strongest label first."""
        by_item: dict[str, list[tuple[float, str]]] = {}
        for item_id, skill, score in self._query("labels"):
            by_item.setdefault(item_id, []).append((-score, skill))
        return {item_id: tuple(s for _, s in sorted(pairs)) for item_id, pairs in by_item.items()}

    def attempts(self, round_: int) -> list[AttemptRow]:
        return [AttemptRow(*r) for r in self._query("attempts", [round_])]

    def attempted_ids(self, round_: int) -> set[str]:
        return {r[0] for r in self._query("attempted_ids", [round_])}

    def diagnosed_ids(self, round_: int) -> set[str]:
        return {r[0] for r in self._query("diagnosed_ids", [round_])}

    def difficult(self, round_: int) -> list[tuple[str, str]]:
        return self._query("difficult", [round_])

    def profile(self, round_: int) -> list[ProfileRow]:
        """A round's Missing-Skill-Profile, the most missing skill first."""
        return [ProfileRow(*r) for r in self._query("profile", [round_])]

    def skill_accuracy(self, round_: int) -> dict[str, float]:
        return dict(self._query("skill_accuracy", [round_]))

    def skill_states(self, round_: int) -> dict[str, SkillState]:
        """The round's MSP as the learnability weights read it: skill -> accuracy, floor, missing."""
        return {skill: SkillState(accuracy, floor, missing)
                for skill, accuracy, floor, missing in self._query("skill_states", [round_])}

    def halfway_skill_states(self) -> dict[str, SkillState]:
        """The warm-up's half-way student as `skill_states` has a round (round 0's floors, no diagnoses)."""
        return {skill: SkillState(accuracy, floor, missing)
                for skill, accuracy, floor, missing in self._query("halfway_skill_states")}

    def halfway_ids(self) -> set[str]:
        return {r[0] for r in self._query("halfway_ids")}

    def halfway_correct(self) -> int:
        return self._query("halfway_correct")[0][0]

    def trained_per_skill(self, round_: int) -> dict[str, int]:
        """Skill -> the round's training examples labelled with it."""
        return dict(self._query("trained_per_skill", [round_]))

    def missing_pairs(self, round_: int) -> list[tuple[str, str]]:
        """(difficult item, missing skill) pairs of the round's diagnoses."""
        return self._query("missing_pairs", [round_])

    def train_set(self, round_: int) -> list[TrainRow]:
        """A round's training examples in training order."""
        return [TrainRow(*r) for r in self._query("train_set", [round_])]

    def evaluated_ids(self, round_: int) -> set[str]:
        return {r[0] for r in self._query("evaluated_ids", [round_])}

    def checkpoint(self, round_: int) -> str | None:
        rows = self._query("checkpoint", [round_])
        return rows[0][0] if rows else None

    def round_summary(self) -> list[RoundSummary]:
        """Held-out accuracies, training examples and stage seconds per round."""
        return [RoundSummary(*r) for r in self._query("round_summary")]

    def family_evals(self, split: str = "test") -> dict[int, dict[str, float]]:
        """round -> family -> held-out accuracy on `split`."""
        out: dict[int, dict[str, float]] = {}
        for round_, family, _items, accuracy in self._query("family_evals", [split]):
            out.setdefault(round_, {})[family] = accuracy
        return out

    def skill_evals(self, round_: int, split: str = "test") -> list[SkillEval]:
        return [SkillEval(*r) for r in self._query("skill_evals", [round_, split])]

    def synthesized(self, round_: int | None) -> list[SynthesizedRow]:
        """The STAT-Syn candidates of a round (None: all rounds)."""
        return [SynthesizedRow(*r) for r in self._query("synthesized", [round_])]

    def synthesized_counts(self, round_: int) -> tuple[int, int]:
        return self._query("synthesized_counts", [round_])[0]

    def solved_ids(self, round_: int, solver: str) -> set[str]:
        return {r[0] for r in self._query("solved_ids", [round_, solver])}

    def token_solved_ids(self, round_: int, model: str, threshold: float) -> set[str]:
        return {r[0] for r in self._query("token_solved_ids", [round_, model, threshold])}

    def token_rows(self, round_: int, model: str) -> list[TokenRow]:
        """Round `round_`'s token-level answers with `model`, and the larger model's alone (threshold inf)."""
        return [TokenRow(*r) for r in self._query("token_rows", [round_, model])]

    def compose_rows(self, round_: int, s2_round: int, system2: str, feature: str) -> list[ComposeRow]:
        """The items both systems answered, with System 1's confidence `feature`."""
        return [ComposeRow(*r) for r in self._query("compose_rows", [round_, s2_round, system2, feature])]

    def router_signals(self, round_: int) -> list[SignalRow]:
        """Round `round_`'s System-1 answers with what the learned router reads of each."""
        return [SignalRow(*r) for r in self._query("router_signals", [round_])]

    def compose_metrics(self) -> list[MetricsRow]:
        return [MetricsRow(*r) for r in self._query("compose_metrics")]

    def compose_summary(self) -> list[ComposeSummary]:
        """Per round and router on the test split: each system alone and composed."""
        return [ComposeSummary(*r) for r in self._query("compose_summary")]

    def compose_curve(self) -> list[CurvePoint]:
        return [CurvePoint(*r) for r in self._query("compose_curve")]

    def test_floor(self) -> float | None:
        """The trivial majority-answer baseline on the test split (per skill, pooled)."""
        return self._query("test_floor")[0][0]

    def counts(self) -> dict[str, int]:
        return dict(self._query("counts"))

    def split_counts(self) -> dict[str, int]:
        return dict(self._query("split_counts"))

    def teacher_cached(self, keys: Sequence[str]) -> dict[str, str]:
        """key -> the first usable reply recorded for it (the LLM teacher's cache)."""
        return dict(self._query("teacher_cached", [list(keys)])) if keys else {}

    def teacher_usage(self) -> list[TeacherUsage]:
        return [TeacherUsage(*r) for r in self._query("teacher_usage")]

    def rounds(self) -> list[int]:
        return [r[0] for r in self._query("rounds")]


class _Transaction:
    """BEGIN/COMMIT around a block, ROLLBACK on error: nothing is half-written."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def __enter__(self):
        self.db.execute("BEGIN TRANSACTION")

    def __exit__(self, exc_type, exc, tb):
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        except DISK_ERRORS as err:
            raise self.store.write_error(err) from None
        if exc_type is not None and issubclass(exc_type, DISK_ERRORS):
            raise self.store.write_error(exc) from None
        return False


def _columns(given: str, record: type) -> str:
    """A writer's column list: the columns it is given as arguments (`given`, "" for none),
    then its record's fields, which are named after the table's columns and in their order."""
    return ", ".join([*filter(None, [given]), *record._fields])
