"""The warm-up: its examples and cache folder, and its half-way student's probe answers,
from which round 0's learning rates are measured (`loop.warmup_rates`)."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from sgi.orchestrator import build
from sgi.orchestrator.answers import AnswerCache
from sgi.orchestrator.stages.answering import answer_items
from sgi.orchestrator.stages.context import Context
from sgi.skills.records import Item


def warmup_examples(ctx: Context) -> list[tuple[str, str]]:
    """Uniform sample of the pool, budget = steps x batch size, fixed by the seed."""
    return [(item.question, item.answer) for item in _warmup_items(ctx)]


def _warmup_items(ctx: Context) -> list[Item]:
    w = ctx.cfg.warmup
    pool = ctx.store.items("pool")
    rng = random.Random(ctx.cfg.seed)
    return [rng.choice(pool) for _ in range(w.steps * w.batch_size)]


def warmup_second_half(ctx: Context) -> dict[str, float]:
    """Skill -> examples labelled with it that the warm-up trained on after its half-way
    student was kept: the draws' counts times the share of steps after it (the draws are
    uniform and the trainer shuffles them, so this is the expectation)."""
    w = ctx.cfg.warmup
    after = (w.steps - build.halfway_step(ctx.cfg)) / w.steps
    labels = ctx.store.labels()
    counts = Counter(skill for item in _warmup_items(ctx) for skill in labels.get(item.item_id, ()))
    return {skill: n * after for skill, n in sorted(counts.items())}


def warmup_dir(base_model: Path, examples: list[tuple[str, str]], args: dict[str, Any], cache: Path) -> Path:
    """Cache folder of a warm-up, keyed by everything that changes its weights."""
    key = json.dumps({"model": str(base_model), "examples": examples, "args": args}, sort_keys=True)
    return cache / "warmup" / hashlib.sha256(key.encode()).hexdigest()[:16]


def answer_halfway(ctx: Context, student: Any, answers: AnswerCache | None = None) -> str:
    """The warm-up's half-way student answers the probe once, greedily (its per-skill accuracy
    against round 0's is the warm-up's gain on its second half)."""
    items = ctx.store.items("probe")
    done = ctx.store.halfway_ids()
    answered = answer_items(ctx, "the warm-up's half-way student answers", items, done, student, 0,
                            lambda scored, _: ctx.store.add_halfway_attempts(scored), answers)
    right = ctx.store.halfway_correct()
    return f"{len(items)} probe items, {right} right after step {build.halfway_step(ctx.cfg)}" + answered.cached_note()
