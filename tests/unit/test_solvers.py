"""System-2 solvers: the program solver's parsing, the shipped exemplars and the oracle
(self-consistency with the real student: tests/integration/test_solvers.py)."""

from __future__ import annotations

import pytest

from sgi.skills.records import Item
from sgi.skills.solvers import ORACLE_LABEL, OracleSolver, load_program_shots, program_answer


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
