"""Which probe items are difficult: wrong, or (optionally) answered inconsistently.

STAT's consistency heuristic: sample the student n times; if fewer than `min_agree`
samples agree on an answer, the student does not really know it, even when the greedy
answer happens to be right.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    difficult: bool
    reason: str  # 'wrong', 'inconsistent' or 'ok'
    agreement: int  # samples agreeing with their most common answer (1 without sampling)


def judge(greedy_correct: bool, sampled_answers: Sequence[str] = (), min_agree: int = 2) -> Verdict:
    """Verdict for one item from its greedy correctness and its extra samples' answers."""
    agreement = max(Counter(sampled_answers).values()) if sampled_answers else 1
    if not greedy_correct:
        return Verdict(True, "wrong", agreement)
    if sampled_answers and agreement < min_agree:
        return Verdict(True, "inconsistent", agreement)
    return Verdict(False, "ok", agreement)
