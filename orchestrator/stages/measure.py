"""Measuring the student: the task's items, the teacher's skill labels, the student's probe
answers, which of them are difficult, and the teacher's diagnosis of each failure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sgi.orchestrator.answers import AnswerCache
from sgi.orchestrator.rows import DifficultyRow
from sgi.orchestrator.stages.answering import answer_items
from sgi.orchestrator.stages.context import Context, ask_teacher, batches, valid_labels
from sgi.skills import checks
from sgi.skills.difficulty import judge
from sgi.skills.interfaces import TeacherOutputError
from sgi.skills.records import Case, Diagnosis, Label, Skill
from sgi.skills.runs import SETUP_ROUND, StoreError


def load_task(ctx: Context) -> str:
    items = ctx.task.load_items()
    if not items:
        raise StoreError(f"task {ctx.task.name!r} produced no items")
    ctx.store.add_items(items)
    skipped = getattr(ctx.task, "skipped", [])  # file tasks with on_bad_row: skip
    for where, problem in skipped:
        ctx.store.log(SETUP_ROUND, "task", f"skipped row {where}: {problem}")
    counts = ", ".join(f"{split} {n}" for split, n in ctx.store.split_counts().items())
    aliased = getattr(ctx.task, "aliased", {})  # file tasks whose split column uses the usual names
    read_as = "; split values read as " + ", ".join(f"{v} -> {s}" for v, s in sorted(aliased.items())) if aliased else ""
    return counts + read_as + (f"; {len(skipped)} bad rows skipped (see events)" if skipped else "")


def label_items(ctx: Context) -> str:
    """The teacher's catalogue and 1-5 skills per item (or the labels supplied with the data).

    The catalogue is written first, then labels per batch; a resumed stage labels only the
    items that have none yet.
    """
    items = ctx.store.items()
    if all(item.skills for item in items):
        names = sorted({s for item in items for s in item.skills})
        catalogue = [Skill(name, "supplied with the data") for name in names]
        labels = [Label(item.item_id, s) for item in items for s in item.skills]
        ctx.store.add_skills(catalogue, "supplied")
        ctx.store.add_labels(valid_labels(ctx, labels, set(names)))
    else:
        catalogue = ctx.store.catalogue()
        if not catalogue:
            ctx.reporter.note(f"  building the skill catalogue from {len(items)} items")
            catalogue = ask_teacher(ctx, SETUP_ROUND, "label", items, "build_catalogue", items)
            if not catalogue:  # nothing can be labelled without one: stop here, resumable
                raise TeacherOutputError("the teacher could not build a skill catalogue (the reason is in the "
                                         "run's events: sgi status); `sgi resume` asks again")
            ctx.store.add_skills(catalogue, ctx.cfg.teacher.kind)
        names = {s.name for s in catalogue}
        done = set(ctx.store.labels())
        todo = [item for item in items if item.item_id not in done]
        with ctx.reporter.bar("labelling items", len(items)) as advance:
            advance(len(items) - len(todo))
            for batch in batches(todo, ctx.cfg.teacher.batch_size):
                labels = ask_teacher(ctx, SETUP_ROUND, "label", batch, "label", batch, catalogue)
                ctx.store.add_labels(valid_labels(ctx, labels or [], names))
                advance(len(batch))
    labelled = ctx.store.labels()
    unlabelled = len(items) - len(labelled)
    n_labels = sum(len(v) for v in labelled.values())
    return f"{len(catalogue)} skills, {n_labels} labels" + (f", {unlabelled} items unlabelled" if unlabelled else "")


def answer_probe(ctx: Context, round_: int, student: Any, answers: AnswerCache | None = None) -> str:
    """Batched student answers on the probe split with confidences, scored, written per batch."""
    items = ctx.store.items("probe")
    samples = ctx.cfg.difficulty.samples if ctx.cfg.difficulty.consistency else 0
    done = ctx.store.attempted_ids(round_)
    answered = answer_items(ctx, f"round {round_}: student answers", items, done, student, samples,
                            lambda scored, _: ctx.store.add_attempts(round_, scored), answers)
    detail = f"{len(items)} items, {len(items) - len(done)} answered now" + answered.cached_note()
    if answered.overhead is not None:
        detail += f" by {len(student.engines)} student actors ({answered.overhead:.1%} of their time not generating)"
    return detail


def mark_difficult(ctx: Context, round_: int) -> str:
    by_item: dict[str, dict[int, tuple[str, bool]]] = defaultdict(dict)
    for a in ctx.store.attempts(round_):
        by_item[a.item_id][a.sample] = (a.extracted, a.correct)
    rows = []
    for item_id, samples in by_item.items():
        sampled = [extracted for s, (extracted, _) in samples.items() if s > 0]
        v = judge(samples[0][1], sampled, ctx.cfg.difficulty.min_agree)
        rows.append(DifficultyRow(item_id, v.difficult, v.reason, v.agreement))
    ctx.store.add_difficulty(round_, rows)
    return f"{sum(r.difficult for r in rows)} of {len(rows)} difficult"


def diagnose(ctx: Context, round_: int) -> str:
    """The teacher names 1-3 catalogue skills each difficult item failed to apply."""
    difficult = ctx.store.difficult(round_)
    done = ctx.store.diagnosed_ids(round_)
    todo = [item_id for item_id, _ in difficult if item_id not in done]
    if not todo:
        return f"{len(difficult)} difficult items, nothing left to diagnose"
    items = {i.item_id: i for i in ctx.store.items()}
    labels = ctx.store.labels()
    greedy = {a.item_id: a for a in ctx.store.attempts(round_) if a.sample == 0}
    accuracy = ctx.store.skill_accuracy(round_)
    catalogue = ctx.store.catalogue()
    cases = [
        Case(items[i], output=greedy[i].output, extracted=greedy[i].extracted, skills=labels.get(i, ()))
        for i in todo
    ]
    with ctx.reporter.bar(f"round {round_}: diagnosing", len(difficult)) as advance:
        advance(len(difficult) - len(todo))
        for batch in batches(cases, ctx.cfg.teacher.batch_size):
            diagnoses = ask_teacher(ctx, round_, "diagnose", [c.item for c in batch], "diagnose", batch, accuracy,
                                    catalogue)
            ctx.store.add_diagnoses(round_, _valid_diagnoses(ctx, round_, diagnoses or [], batch))
            advance(len(batch))
    return f"{len(difficult)} difficult items diagnosed"


def _valid_diagnoses(ctx: Context, round_: int, diagnoses: Sequence[Diagnosis], cases: Sequence[Case]) -> list[Diagnosis]:
    """The teacher's diagnoses that checks.check_diagnoses keeps; what it changed goes to the events."""
    checked = checks.check_diagnoses(diagnoses, {c.item.item_id: c.skills for c in cases})
    for note in checked.notes:
        ctx.store.log(round_, "diagnose", note)
    return checked.kept
