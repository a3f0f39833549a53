"""The student's user message: the question, optionally after k skill exemplars.

Didolkar et al. show that exemplars sharing the item's skill help small models; off by
default (kshot = 0). Exemplars come from the training pool only, chosen by a hash of the
item id so the prompt is the same in every run and on resume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from sgi.skills.records import Item


def student_prompt(question: str, exemplars: Sequence[Item] = ()) -> str:
    if not exemplars:
        return question
    shots = "\n\n".join(f"Question: {e.question}\nAnswer: {e.answer}" for e in exemplars)
    return f"{shots}\n\nQuestion: {question}\nAnswer:"


def skill_exemplars(
    item: Item, item_skills: Sequence[str], pool_by_skill: Mapping[str, Sequence[Item]], k: int
) -> list[Item]:
    """Up to k pool items sharing the item's skills, strongest skill first, never the item itself."""
    chosen: list[Item] = []
    for skill in item_skills:
        candidates = [c for c in pool_by_skill.get(skill, ()) if c.item_id != item.item_id and c not in chosen]
        candidates.sort(key=lambda c: hashlib.sha1(f"{item.item_id}|{c.item_id}".encode()).hexdigest())
        chosen.extend(candidates[: k - len(chosen)])
        if len(chosen) >= k:
            break
    return chosen
