"""Rewards for RL after STAT (GRPO): the task's own checker, binarised, plus a format term.

No learned reward model: a completion is right when the task's extractor finds an answer
in it that the task's scorer accepts (reasoning-gym's scorer for the gym, math-verify for
file tasks), the same check the held-out evaluation makes. The format term asks for what
the supervised rounds train: the answer alone, nothing around it. Model output is only
extracted and compared, never executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sgi.skills.records import Item


@dataclass(frozen=True)
class Scored:
    """One completion's reward parts."""

    answer: str  # what the task's extractor found ("" when nothing)
    correct: float  # 1.0 when the task's scorer accepts the answer
    formatted: float  # 1.0 when the completion is the answer alone (the supervised rounds' format)

    def reward(self, format_weight: float) -> float:
        return self.correct + format_weight * self.formatted


def score(task: Any, item: Item, completion: str) -> Scored:
    """The task's verdict on `completion` as an answer to `item`, and whether it is bare."""
    try:
        answer = task.extract(item, completion)
        correct = bool(answer.strip()) and task.is_correct(item, answer)
    except (ValueError, TypeError, ArithmeticError, RecursionError):  # text no extractor can read: wrong
        return Scored("", 0.0, 0.0)
    return Scored(answer, float(correct), float(bool(answer.strip()) and _bare(completion) == _bare(answer)))


def _bare(text: str) -> str:
    """Text without surrounding space, a closing period or quotes, and with runs of space as one."""
    return re.sub(r"\s+", " ", text.strip().strip("\"'`").strip().removesuffix(".").strip())
