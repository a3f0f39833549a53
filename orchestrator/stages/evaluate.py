"""The held-out evaluation of a round's student (round -1: the warm-up student)."""

from __future__ import annotations

from typing import Any

from sgi.orchestrator.answers import AnswerCache
from sgi.orchestrator.stages.answering import answer_items
from sgi.orchestrator.stages.context import Context
from sgi.skills.runs import SETUP_ROUND


def evaluate(ctx: Context, round_: int, student: Any, answers: AnswerCache | None = None) -> str:
    """Greedy answers on the held-out test and general splits (round -1: the warm-up student)."""
    items = ctx.store.items("test") + ctx.store.items("general")
    done = ctx.store.evaluated_ids(round_)
    title = "warm-up student: held-out" if round_ == SETUP_ROUND else f"round {round_}: held-out eval"
    answered = answer_items(ctx, title, items, done, student, 0,
                            lambda scored, seconds: ctx.store.add_evals(round_, scored, seconds), answers)
    row = next((r for r in ctx.store.round_summary() if r.round == round_), None)
    shown = (("test", row.test_accuracy), ("general", row.general_accuracy)) if row else ()
    scores = [f"{split} {acc:.3f}" for split, acc in shown if acc is not None]
    return (", ".join(scores) or f"{len(items)} items") + answered.cached_note()
