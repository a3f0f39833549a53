"""System-2 solvers: the program solver's parsing, the shipped exemplars, and self-consistency
voting with the real student."""

from __future__ import annotations

from collections import Counter

import pytest

from sgi.skills.records import Item
from sgi.skills.solvers import (ORACLE_LABEL, OracleSolver, SelfConsistencySolver, load_program_shots,
                                program_answer)
from sgi.skills.tasks.gym import GymTask


@pytest.mark.parametrize("text, answer", [
    ("gcd(84, 36)", "12"),
    ("17 + 25 - 8 = 35", "34"),  # the model's own claimed result is ignored: the evaluator computes
    ("12/18\nbecause 12 and 18 share 6", "2/3"),  # only the first line counts
    ("`(20 - 5) / 3`.", "5"),
    ("The answer is 12", ""),  # prose is not an expression
    ("__import__('os').system('id')", ""),
    ("x + 4 = 7", ""),
    ("", ""),
])
def test_program_answers_come_from_the_evaluator(text, answer):
    assert program_answer(text) == answer


def test_the_shipped_exemplars_compute_and_a_bad_file_is_named(tmp_path):
    shots = load_program_shots()
    assert shots.system and len(shots.shots) >= 6
    assert all(program_answer(expression) for _, expression in shots.shots)  # every exemplar is valid arithmetic
    bad = tmp_path / "shots.yaml"
    bad.write_text("system: hi\nshots:\n  - question: q\n")
    with pytest.raises(ValueError, match="shots.yaml: expected"):
        load_program_shots(bad)


def test_the_oracle_answers_with_the_reference_and_says_what_it_is():
    item = Item("i1", "What is 2 + 2?", "4", "test", "add_sub")
    [solved] = OracleSolver().solve([item])
    assert solved.answer == "4" and solved.output == ORACLE_LABEL and "ceiling" in ORACLE_LABEL


@pytest.mark.slow
def test_self_consistency_votes_over_real_samples():
    from sgi.workers.models import resolve_student
    from sgi.workers.student import TransformersStudent

    task = GymTask(families={"add_sub": 2}, probe_per_family=1, test_per_family=2, general={}, seed=0)
    items = [i for i in task.load_items() if i.split == "test"][:2]
    engine = TransformersStudent(resolve_student(), max_new_tokens=24, batch_size=8, seed=3)
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
