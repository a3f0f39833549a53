"""The learned router on constructed signals: it learns what predicts System 1's answers,
its probe scores are out of fold, and it is never given a test label."""

from __future__ import annotations

import random

import pytest

from sgi.skills.learned_router import Signals, fit_scores
from sgi.skills.routing import Routed, gap_metrics


def signals(n: int, seed: int) -> tuple[list[Signals], list[bool]]:
    """Items of two skills: 'easy' is right 90% of the time, 'hard' 20%; min_prob is a noisy
    hint of the answer being right (as a student's confidence is)."""
    rng = random.Random(seed)
    items, right = [], []
    for i in range(n):
        skill = "easy" if i % 2 else "hard"
        correct = rng.random() < (0.9 if skill == "easy" else 0.2)
        p = min(1.0, max(0.0, (0.75 if correct else 0.45) + rng.gauss(0, 0.15)))
        items.append(Signals(f"q{seed}-{i}", p, min(1.0, p + 0.1), None, rng.randint(1, 4), rng.randint(20, 60),
                             (skill,)))
        right.append(correct)
    return items, right


def test_the_learned_router_beats_each_single_signal_on_held_out_items():
    probe, probe_right = signals(200, seed=1)
    test, test_right = signals(200, seed=2)
    scores = fit_scores(probe, probe_right, test)
    assert len(scores.probe) == 200 and len(scores.test) == 200
    rows = [Routed(s.item_id, c, True, s.min_prob, 0.9 if s.skills == ("easy",) else 0.2, 0.1, 1.0, learned)
            for s, c, learned in zip(test, test_right, scores.test)]
    learned, confidence, skill = (gap_metrics(r, rows).apgr for r in ("learned", "confidence", "skill"))
    assert learned > max(confidence, skill)
    assert gap_metrics("learned", rows).cpt[0.8] < gap_metrics("random", rows).cpt[0.8]


def test_the_test_scores_do_not_depend_on_test_labels_and_a_probe_score_not_on_its_own():
    probe, probe_right = signals(60, seed=3)
    test, _ = signals(30, seed=4)
    scores = fit_scores(probe, probe_right, test)  # the API has no place for test labels at all
    flipped = list(probe_right)
    flipped[7] = not flipped[7]
    again = fit_scores(probe, flipped, test)
    assert again.probe[7] == pytest.approx(scores.probe[7])  # out of fold: its own label is never seen
    assert again.probe != pytest.approx(scores.probe)  # the others' models did see it
    assert fit_scores(probe, probe_right, test).test == pytest.approx(scores.test)  # deterministic


def test_one_class_or_no_items_gives_the_base_rate():
    probe, _ = signals(10, seed=5)
    scores = fit_scores(probe, [True] * 10, probe[:3])
    assert scores.test == [1.0] * 3 and scores.probe == [1.0] * 10
    assert fit_scores([], [], probe[:2]).test == [0.5, 0.5]
    assert fit_scores(probe[:1], [False], []).probe == [0.5]
