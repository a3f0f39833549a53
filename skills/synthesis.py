"""STAT-Syn: new items for each (difficult item, missing skill) pair, kept only when checked.

    for skill, cause, n in stat_syn_requests(pairs, per_pair=2):
        written = teacher.synthesize(skill, references, n, seed)   # list[Candidate]
        kept = novel([c for c in written if keep(c)], known_questions)
        # store every candidate with its verdict; len(written) - len(kept) were dropped

A candidate is kept when an exact solver verified its reference answer, or when at least
`min_agree` of its independent solutions reach the same answer (2 of 3 in the paper).
Synthetic items add to the real pool; they never replace it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from sgi.skills.records import Candidate

_INTEGRAL = re.compile(r"([+-]?\d+)(?:\.0*)?")


def keep(candidate: Candidate, min_agree: int = 2) -> bool:
    """Verified by an exact solver, or >= `min_agree` solutions agree with the item's answer."""
    if candidate.verified:
        return True
    answer = _normal(candidate.item.answer)
    return bool(answer) and sum(_normal(s) == answer for s in candidate.solutions) >= min_agree


def stat_syn_requests(pairs: Iterable[tuple[str, str]], *, per_pair: int = 2) -> list[tuple[str, str, int]]:
    """(skill, cause item id, how many items) — one request per distinct (difficult item, skill) pair."""
    if per_pair < 1:
        raise ValueError(f"per_pair (synthetic items per pair) must be >= 1, got {per_pair}")
    return [(skill, cause, per_pair) for cause, skill in dict.fromkeys(pairs)]


def weighted_requests(pairs: Iterable[tuple[str, str]], counts: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """(skill, cause item id, how many): each skill's count spread evenly over the distinct
    difficult items that named it (the first ones take the remainder); a skill without a
    pair asks nothing."""
    causes: dict[str, list[str]] = {}
    for cause, skill in dict.fromkeys(pairs):
        causes.setdefault(skill, []).append(cause)
    requests = []
    for skill in sorted(counts):
        named = causes.get(skill, [])
        for k, cause in enumerate(named):
            n = counts[skill] // len(named) + (k < counts[skill] % len(named))
            if n > 0:
                requests.append((skill, cause, n))
    return requests


def novel(candidates: Iterable[Candidate], existing_questions: Collection[str]) -> list[Candidate]:
    """The candidates whose question (whitespace- and case-insensitive) is in neither the
    existing data nor an earlier candidate: a copy of a probe or test item would leak it."""
    seen = {question_key(q) for q in existing_questions}
    out = []
    for candidate in candidates:
        key = question_key(candidate.item.question)
        if key not in seen:
            seen.add(key)
            out.append(candidate)
    return out


def _normal(answer: str) -> str:
    """Final answers compared as text ("6/8" must not equal "3/4"), except that integral
    numbers compare by value ("12.0", "+12" and "12" agree)."""
    text = " ".join(answer.split())
    match = _INTEGRAL.fullmatch(text)
    return str(int(match.group(1))) if match else text


def question_key(question: str) -> str:
    return " ".join(question.split()).casefold()
