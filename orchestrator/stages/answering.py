"""The student answering a split in batches: scored, recorded per batch, and taken from the
warm-up student's answer cache where it answered the same prompt before."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from sgi.orchestrator.answers import AnswerCache
from sgi.orchestrator.stages.context import Context, batches
from sgi.orchestrator.store import ScoredAttempt
from sgi.skills.prompts import skill_exemplars, student_prompt
from sgi.skills.records import Generation, Item


class Answered(NamedTuple):
    cached: int  # answers taken from the warm-up student's cache
    overhead: float | None  # the student pool's orchestration overhead, when it has several engines

    def cached_note(self) -> str:
        return f" ({self.cached} from the warm-up student's answer cache)" if self.cached else ""


def answer_items(ctx: Context, title: str, items: Sequence[Item], done: set[str], student: Any, samples: int,
                 record: Any, answers: AnswerCache | None = None) -> Answered:
    """Answer `items` not in `done` in batches spread over the student pool; score and
    `record(scored, seconds per item)` each batch as it arrives (whole batches only).
    With `answers` (the warm-up student's cache), greedy answers given in an earlier run are
    taken from it, with the seconds they took then, and new ones are added to it.
    """
    todo = [item for item in items if item.item_id not in done]
    prompts = student_prompts(ctx, todo)
    by_id = {i.item_id: i for i in todo}

    def scored(generations: Sequence[Generation]) -> list[ScoredAttempt]:
        out = []
        for g in generations:
            extracted = ctx.task.extract(by_id[g.item_id], g.text)
            out.append(ScoredAttempt(g, extracted, ctx.task.is_correct(by_id[g.item_id], extracted)))
        return out

    answers = answers if samples == 0 else None  # sampled answers are never cached
    hits: dict = {}
    with ctx.reporter.bar(title, len(items)) as advance:
        advance(len(items) - len(todo))
        if answers is not None:
            hits = answers.lookup([i.item_id for i in todo], prompts)
            for seconds, batch in itertools.groupby(sorted(hits.values(), key=lambda h: h.seconds), lambda h: h.seconds):
                generations = [h.generation for h in batch]  # one batch of the run that answered them
                record(scored(generations), seconds)
                advance(len(generations))
            todo, prompts = [i for i in todo if i.item_id not in hits], [p for i, p in zip(todo, prompts)
                                                                       if i.item_id not in hits]
        item_batches = batches(todo, ctx.cfg.student.batch_size)
        texts = batches(prompts, ctx.cfg.student.batch_size)
        sampling = {"samples": samples, "temperature": ctx.cfg.difficulty.temperature}
        calls = [(([i.item_id for i in batch], text), sampling) for batch, text in zip(item_batches, texts)]
        if not item_batches:
            return Answered(len(hits), None)  # nothing to answer: the student is not even loaded
        mark = student.mark()
        for n, seconds, generations in student.imap("generate", calls):
            record(scored(generations), seconds / len(item_batches[n]))
            if answers is not None:
                answers.add(texts[n], generations, seconds / len(item_batches[n]))
            advance(len(item_batches[n]))
    return Answered(len(hits), student.overhead(mark) if len(student.engines) > 1 else None)


def student_prompts(ctx: Context, items: Sequence[Item]) -> list[str]:
    k = ctx.cfg.student.kshot
    if k == 0:
        return [student_prompt(i.question) for i in items]
    labels = ctx.store.labels()
    pool_by_skill: dict[str, list[Item]] = defaultdict(list)
    for p in ctx.store.items("pool"):
        for skill in labels.get(p.item_id, ()):
            pool_by_skill[skill].append(p)
    return [student_prompt(i.question, skill_exemplars(i, labels.get(i.item_id, ()), pool_by_skill, k)) for i in items]
