"""Self-consistency voting over real samples of the student."""

from __future__ import annotations

from collections import Counter

import pytest

from sgi.skills.solvers import SelfConsistencySolver
from sgi.skills.tasks.gym import GymTask


@pytest.mark.slow
def test_self_consistency_votes_over_real_samples():
    from sgi.workers.models import resolve_model
    from sgi.workers.student import TransformersStudent

    task = GymTask(families={"add_sub": 2}, probe_per_family=1, test_per_family=2, general={}, seed=0)
    items = [i for i in task.load_items() if i.split == "test"][:2]
    engine = TransformersStudent(resolve_model(), max_new_tokens=24, batch_size=8, seed=3)
    solver = SelfConsistencySolver(engine, task.extract, n=3, temperature=0.9)
    solved = solver.solve(items)
    assert [s.item_id for s in solved] == [i.item_id for i in items]
    for s in solved:
        votes = s.output.split(" | ")
        assert len(votes) == 3 and s.n_tokens > 0 and s.seconds > 0
        counted = Counter(v for v in votes if v)
        assert (s.answer == "") == (not counted)
        if counted:
            assert counted[s.answer] == max(counted.values())
    again = solver.solve(items)  # seeded sampling: the same votes again
    assert [(s.output, s.answer) for s in again] == [(s.output, s.answer) for s in solved]
