"""The learned router: a logistic regression that predicts "System 1 is right" from every
signal known before System 2 runs, fitted on the probe split only.

The hand-made routers each read one signal (the student's confidence, or its accuracy on
the item's skills). Which one predicts correctness best differs by task and round, and they
combine: a confident answer on a skill the student usually gets wrong is still a risk. So
the learned router (RouteLLM's "a classifier on the query", here on sgi's own signals)
weighs them all: min/mean top-1 probability and top-1/top-2 margin of the student's answer,
the answer's and the question's length, and the probe accuracy of the item's weakest and
average labelled skill.

Nothing it is scored on was fitted on: the probe split's scores are out of fold (k-fold,
the skills' accuracies recomputed from the training folds alone), so the threshold chosen
on probe is chosen on honest scores, and the test split is only ever given signals, never
labels (`fit_scores` takes no test labels at all).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

SKILL_PRIOR = 2.0  # pseudo-answers pulling a rarely seen skill's accuracy towards the overall one
FOLDS = 5


@dataclass(frozen=True)
class Signals:
    """What is known of one item before System 2 runs (no label)."""

    item_id: str
    min_prob: float
    mean_prob: float
    margin: float | None  # None where the engine does not report it
    answer_tokens: int
    question_chars: int
    skills: tuple[str, ...]


@dataclass(frozen=True)
class LearnedScores:
    probe: list[float]  # out of fold: no item is scored by a model fitted on it
    test: list[float]


def fit_scores(probe: Sequence[Signals], probe_correct: Sequence[bool], test: Sequence[Signals],
               seed: int = 0) -> LearnedScores:
    """Out-of-fold scores for the probe items, and test scores from a model fitted on all of probe."""
    labels = [bool(c) for c in probe_correct]
    oof = [0.0] * len(probe)
    for train, held in _folds(labels, seed):
        scores = _fit_and_score([probe[i] for i in train], [labels[i] for i in train], [probe[i] for i in held])
        for i, s in zip(held, scores):
            oof[i] = s
    return LearnedScores(oof, _fit_and_score(probe, labels, test))


def _fit_and_score(train: Sequence[Signals], labels: Sequence[bool], score: Sequence[Signals]) -> list[float]:
    """P(System 1 right) for `score` from a model fitted on `train`; the skills' accuracies
    come from `train` alone (leaving each training item's own answer out of its features)."""
    if not score:
        return []
    base = sum(labels) / len(labels) if labels else 0.5
    if len(set(labels)) < 2:  # one class only: nothing to separate, every item gets the base rate
        return [base] * len(score)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = _SkillTable(train, labels)
    x_train = [_features(s, table, own=c) for s, c in zip(train, labels)]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(x_train, labels)
    return [float(p) for p in model.predict_proba([_features(s, table) for s in score])[:, 1]]


class _SkillTable:
    """Per skill: right and total answers of the training items labelled with it."""

    def __init__(self, items: Sequence[Signals], labels: Sequence[bool]) -> None:
        self.right: dict[str, int] = defaultdict(int)
        self.total: dict[str, int] = defaultdict(int)
        for item, correct in zip(items, labels):
            for skill in item.skills:
                self.right[skill] += correct
                self.total[skill] += 1
        self.overall = sum(labels) / len(labels) if labels else 0.5

    def accuracy(self, skill: str, own: bool | None) -> float:
        """Smoothed accuracy of the skill; `own` (a training item's answer) is left out."""
        right, total = self.right[skill], self.total[skill]
        if own is not None:
            right, total = right - own, total - 1
        return (right + SKILL_PRIOR * self.overall) / (total + SKILL_PRIOR)


def _features(s: Signals, table: _SkillTable, own: bool | None = None) -> list[float]:
    skill_acc = [table.accuracy(k, own) for k in s.skills] or [table.overall]
    return [s.min_prob, s.mean_prob, s.margin if s.margin is not None else s.mean_prob,
            math.log1p(s.answer_tokens), math.log1p(s.question_chars), min(skill_acc), sum(skill_acc) / len(skill_acc)]


def _folds(labels: Sequence[bool], seed: int) -> list[tuple[list[int], list[int]]]:
    """k shuffled folds, drawn without looking at the labels: an item's out-of-fold score
    then depends on the other items' labels only, never on its own."""
    from sklearn.model_selection import KFold

    n = len(labels)
    if n < 2:
        return [([], list(range(n)))] if n else []
    splitter = KFold(min(FOLDS, n), shuffle=True, random_state=seed)
    return [(list(tr), list(te)) for tr, te in splitter.split(list(range(n)))]
