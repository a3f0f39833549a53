"""STAT-Syn: the keep rule on hand-made candidates, requests, de-duplication, and the rules
teacher writing verified gym items for skills of different families (real reasoning-gym)."""

from __future__ import annotations

import dataclasses

import pytest

from sgi.skills.records import Candidate, Item
from sgi.skills.rules import RulesTeacher, item_skills, solve
from sgi.skills.synthesis import keep, novel, stat_syn_requests
from sgi.skills.tasks.gym import PRESETS, GymTask


def candidate(answer: str, solutions: tuple[str, ...], verified: bool = False, question: str = "q") -> Candidate:
    return Candidate(Item(f"syn-{question}", question, answer, "synthetic"), solutions, verified)


def test_keep_needs_agreement_or_verification():
    assert keep(candidate("12", ("12", "12", "7")))  # 2 of 3 agree
    assert keep(candidate("12", ("12.0", "+12", "7")))  # same integer, other spelling
    assert not keep(candidate("12", ("12", "7", "9")))  # only 1 agrees
    assert not keep(candidate("12", ("12", "12", "7")), min_agree=3)
    assert keep(candidate("12", ("7", "9", ""), verified=True))  # an exact solver outranks the votes
    assert not keep(candidate("3/4", ("6/8", "6/8", "3/4")))  # an unreduced fraction is another answer
    assert not keep(candidate("", ("", "", "")))


def test_the_caller_counts_what_keep_drops():
    written = [
        candidate("5", ("5", "5", "5")),
        candidate("5", ("5", "4", "3")),
        candidate("5", ("4", "4", "4")),
        candidate("5", ("1", "2", "3"), verified=True),
    ]
    kept = [c for c in written if keep(c)]
    assert len(kept) == 2 and len(written) - len(kept) == 2


def test_one_request_per_distinct_pair():
    pairs = [("d1", "add-carry"), ("d1", "sub-borrow"), ("d2", "add-carry"), ("d1", "add-carry")]
    assert stat_syn_requests(pairs, per_pair=3) == [
        ("add-carry", "d1", 3), ("sub-borrow", "d1", 3), ("add-carry", "d2", 3)]
    with pytest.raises(ValueError, match="per_pair"):
        stat_syn_requests(pairs, per_pair=0)


def test_novel_drops_known_and_repeated_questions():
    written = [candidate("1", (), question=q) for q in ("What is 2+2?", "what is  2+2?", "What is 3+3?", "Old one")]
    assert [c.item.question for c in novel(written, {"old ONE"})] == ["What is 2+2?", "What is 3+3?"]


@pytest.fixture(scope="module")
def task_items() -> list[Item]:
    """Both presets' families: every generator the rules teacher writes items for."""
    return GymTask(families={**PRESETS["hard"].families, **PRESETS["learnable"].families}).load_items()


def test_the_exact_solver_agrees_with_every_generator_answer(task_items):
    assert [i.item_id for i in task_items if solve(i) not in (None, i.answer)] == []
    unsolved = {i.family for i in task_items if solve(i) is None}
    assert unsolved == {"number_sequence"}  # its rule is free text: STAT-Syn keeps its items by agreement only


# Skills from four families: column addition, number theory, equations, fractions.
CASES = [
    ("add-carry", "add_sub"),
    ("lcm-coprime-product", "lcm"),
    ("coefficient-division", "simple_equations"),
    ("gcd-euclid", "fraction_simplification"),
]


@pytest.mark.parametrize(("skill", "family"), CASES)
def test_synthesized_items_are_new_labelled_and_scorer_correct(task_items, skill, family):
    references = [i for i in task_items if i.family == family and i.split == "pool" and skill in item_skills(i)][:2]
    questions = {i.question for i in task_items}
    written = RulesTeacher().synthesize(skill, references, 6, seed=11, avoid=questions)
    assert len(written) == 6
    ids = [c.item.item_id for c in written]
    assert len(set(ids)) == 6 and all(i.startswith(f"syn-{skill}-") for i in ids)
    for c in written:
        item = c.item
        assert item.split == "synthetic" and item.family == family
        assert item.question not in questions
        assert skill in item_skills(item)
        assert GymTask().is_correct(item, item.answer)
        assert item.meta["provenance"] == {"skill": skill, "references": sorted(r.item_id for r in references)}
        assert c.verified and c.solutions == (item.answer,) * 3 and keep(c)
    again = RulesTeacher().synthesize(skill, references, 6, seed=11, avoid=questions)
    assert [c.item.item_id for c in again] == ids
    other = RulesTeacher().synthesize(skill, references, 6, seed=12, avoid=questions)
    assert [c.item.item_id for c in other] != ids


def test_references_span_families_and_their_questions_are_never_copied(task_items):
    references = [next(i for i in task_items if i.family == f and "negative-numbers" in item_skills(i))
                  for f in ("add_sub", "simple_equations")]
    written = RulesTeacher().synthesize("negative-numbers", references, 8, seed=0)
    assert {c.item.family for c in written} == {"add_sub", "simple_equations"}
    assert not {c.item.question for c in written} & {r.question for r in references}


def test_a_corrupted_candidate_is_dropped(task_items):
    teacher = RulesTeacher()
    reference = next(i for i in task_items if i.family == "lcm")
    good = teacher.synthesize("lcm-from-gcd", [reference], 1, seed=3)[0]
    wrong = dataclasses.replace(good.item, answer=str(int(good.item.answer) + 1))
    rechecked = teacher.check(wrong)  # the teacher's own check of the corrupted item
    assert not rechecked.verified and rechecked.solutions == (wrong.answer, good.item.answer, "")
    assert not keep(rechecked)
    assert not keep(Candidate(wrong, good.solutions, verified=False))  # solutions agree on another answer
    assert not GymTask().is_correct(wrong, good.item.answer)


def test_synthesis_needs_a_gym_reference():
    plain = Item("f-1", "q", "1", "pool", "my_file")
    with pytest.raises(ValueError, match="gym family"):
        RulesTeacher().synthesize("add-carry", [plain], 2, seed=0)
