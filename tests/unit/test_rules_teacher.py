"""The rules teacher on hand-built items: exact labels, one test per bug in the library,
the fallbacks, and the catalogue/labels over the real default task."""

from __future__ import annotations

from collections import Counter

import pytest

from sgi.skills.records import Case, Item
from sgi.skills.rules import FAMILY_SKILLS, SKILLS, RulesTeacher, family_skill, item_skills
from sgi.skills.tasks.gym import PRESETS, GymTask


def expr(expression: str, answer: str, family: str = "add_sub", source: str = "chain_sum") -> Item:
    meta = {"source_dataset": source, "expression": expression}
    return Item(f"{family}-{expression}", f"Calculate {expression}.", answer, "pool", family, meta=meta)


def numbers(source: str, a: int, b: int, answer: int) -> Item:
    meta = {"source_dataset": source, "numbers": [a, b]}
    return Item(f"{source}-{a}-{b}", "q", str(answer), "pool", source, meta=meta)


def fraction(n: int, d: int, sn: int, sd: int) -> Item:
    meta = {"source_dataset": "fraction_simplification", "numerator": n, "denominator": d,
            "simplified_numerator": sn, "simplified_denominator": sd}
    return Item(f"frac-{n}-{d}", "q", f"{sn}/{sd}", "pool", "fraction_simplification", meta=meta)


def equation(text: str, var: str, answer: int) -> Item:
    meta = {"source_dataset": "simple_equations", "equation": text, "variable": var}
    return Item(f"eq-{text}", "q", str(answer), "pool", "simple_equations", meta=meta)


def diagnose(item: Item, extracted: str, accuracy: dict | None = None, teacher: RulesTeacher | None = None):
    case = Case(item, extracted, extracted, tuple(item_skills(item)))
    return (teacher or RulesTeacher()).diagnose([case], accuracy or {})[0]


@pytest.mark.parametrize(
    ("expression", "answer", "labels"),
    [
        ("12 + 7", "19", ["addition"]),
        ("12 + 9", "21", ["add-carry"]),
        ("58 - 23", "35", ["subtraction"]),
        ("52 - 27", "25", ["sub-borrow"]),
        ("3 - 8", "-5", ["subtraction", "negative-numbers"]),
        ("-7 + -5", "-12", ["add-carry", "negative-numbers"]),
        ("2 + 3 * 4", "14", ["operator-precedence", "multi-term-chain", "times-tables", "addition"]),
        ("2 * 3 + 1", "7", ["multi-term-chain", "times-tables", "addition"]),
        ("( 2 + 3 ) * 4", "20", ["parentheses", "multi-term-chain", "times-tables", "addition"]),
        ("64 + 67 - 20 - 59", "52", ["multi-term-chain", "add-carry", "subtraction", "sub-borrow"]),
        ("23 * 45", "1035", ["multi-digit-multiplication"]),
        ("8 - 6 / 3", "6", ["operator-precedence", "multi-term-chain", "division", "subtraction"]),
    ],
)
def test_expression_labels(expression, answer, labels):
    assert item_skills(expr(expression, answer)) == labels


def test_number_theory_fraction_and_equation_labels():
    assert item_skills(numbers("gcd", 12, 18, 6)) == ["gcd-euclid"]
    assert item_skills(numbers("gcd", 8, 15, 1)) == ["coprime-detection"]
    assert item_skills(numbers("gcd", 7, 21, 7)) == ["divisibility"]
    assert item_skills(numbers("lcm", 4, 6, 12)) == ["lcm-from-gcd"]
    assert item_skills(numbers("lcm", 4, 9, 36)) == ["lcm-coprime-product"]
    assert item_skills(fraction(12, 18, 2, 3)) == ["fraction-reduction", "gcd-euclid"]  # factor 6 is composite
    assert item_skills(fraction(6, 9, 2, 3)) == ["fraction-reduction"]
    assert item_skills(equation("2*x + 4 = 14", "x", 5)) == [
        "isolate-variable", "inverse-operations", "coefficient-division"]
    assert item_skills(equation("5 - 8*e = -51", "e", 7)) == [
        "isolate-variable", "inverse-operations", "coefficient-division", "negative-numbers"]
    assert item_skills(equation("z + 5 = 15", "z", 10)) == ["isolate-variable", "inverse-operations"]


@pytest.mark.parametrize(
    ("item", "extracted", "skills"),
    [
        (expr("2 + 3 * 4", "14"), "20", ("operator-precedence",)),
        (expr("3 - 8", "-5"), "5", ("negative-numbers",)),
        (expr("47 + 38", "85"), "75", ("add-carry",)),
        (expr("52 - 27", "25"), "35", ("sub-borrow",)),
        (expr("23 * 45", "1035", "products", "products"), "935", ("multi-digit-multiplication",)),
        (expr("3 * 4", "12", "products", "products"), "7", ("times-tables",)),
        (expr("10 - 3 + 2", "9", "chain_sum"), "5", ("multi-term-chain",)),
        (expr("52 - 27", "25"), "79", ("sub-borrow",)),
        (numbers("gcd", 12, 18, 6), "12", ("gcd-euclid",)),
        (numbers("gcd", 12, 18, 6), "36", ("gcd-euclid", "lcm-from-gcd")),
        (numbers("gcd", 12, 18, 6), "1", ("coprime-detection",)),
        (numbers("gcd", 12, 18, 6), "3", ("gcd-euclid",)),
        (numbers("lcm", 4, 6, 12), "24", ("lcm-from-gcd",)),
        (numbers("lcm", 4, 6, 12), "6", ("divisibility",)),
        (numbers("lcm", 4, 6, 12), "2", ("lcm-from-gcd", "gcd-euclid")),
        (numbers("lcm", 4, 6, 12), "36", ("lcm-from-gcd",)),
        (fraction(12, 18, 2, 3), "6/9", ("fraction-reduction", "gcd-euclid")),
        (fraction(12, 18, 2, 3), "3/2", ("fraction-reduction",)),
        (equation("2*x + 4 = 14", "x", 5), "9", ("inverse-operations",)),
        (equation("2*x + 4 = 14", "x", 5), "3", ("inverse-operations",)),
        (equation("2*x + 4 = 14", "x", 5), "10", ("coefficient-division",)),
        (equation("2*x + 4 = 14", "x", 5), "-5", ("negative-numbers",)),
    ],
)
def test_bug_library(item, extracted, skills):
    diagnosis = diagnose(item, extracted)
    assert diagnosis.skills == skills and diagnosis.item_id == item.item_id
    assert diagnosis.reason not in ("", "unmatched error", "no answer")


def test_a_correct_answer_matches_no_bug():
    assert diagnose(fraction(12, 18, 2, 3), "2/3").reason == "unmatched error"
    assert diagnose(expr("12 + 9", "21"), "21").reason == "unmatched error"


def test_no_answer_blames_the_primary_skill():
    assert diagnose(expr("2 + 3 * 4", "14"), "").skills == ("operator-precedence",)
    assert diagnose(expr("2 + 3 * 4", "14"), "").reason == "no answer"
    assert diagnose(numbers("gcd", 12, 18, 6), "six").reason.startswith("no answer")


def test_unmatched_errors_rank_labels_by_accuracy():
    item = expr("64 + 67 - 20 - 59", "52", "chain_sum")
    diagnosis = diagnose(item, "1000", {"sub-borrow": 0.1, "add-carry": 0.5, "subtraction": 0.9})
    assert diagnosis.skills == ("sub-borrow", "add-carry", "subtraction")
    assert diagnosis.reason == "unmatched error"
    general = Item("sb-0", "Spell this word backward: cat", "tac", "general", "spell_backward",
                   meta={"source_dataset": "spell_backward"})
    assert diagnose(general, "cta").skills == ("spell-backward",)


def test_diagnoses_stay_inside_labels_or_catalogue():
    item = expr("3 + 4", "7")
    teacher = RulesTeacher()
    teacher.build_catalogue([item])  # no negative numbers anywhere: the sign bug cannot be named
    diagnosis = diagnose(item, "-7", teacher=teacher)
    assert diagnosis.skills == ("addition",) and diagnosis.reason.startswith("sign flipped")


def test_catalogue_and_labels_on_the_hard_preset():
    """The hard preset's arithmetic families use every fine-grained skill of the rules."""
    preset = PRESETS["hard"]
    items = GymTask(families=preset.families, general=preset.general).load_items()
    teacher = RulesTeacher()
    catalogue = teacher.build_catalogue(items)
    names = [s.name for s in catalogue]
    assert set(names) == set(SKILLS) | {"letter-counting", "spell-backward"}
    assert 15 <= len(names) <= 25
    labels = teacher.label(items, catalogue)
    per_item = Counter(label.item_id for label in labels)
    assert set(per_item) == {i.item_id for i in items}
    assert all(1 <= n <= 5 for n in per_item.values())
    shared = {s.name for s in catalogue if s.family == ""}
    assert "negative-numbers" in shared and {s.family for s in catalogue if s.name == "coprime-detection"} == {"gcd"}


def test_labelling_outside_the_catalogue_is_refused():
    item = expr("12 + 9", "21")
    catalogue = RulesTeacher().build_catalogue([expr("12 + 7", "19")])
    with pytest.raises(ValueError, match="none of them in the catalogue"):
        RulesTeacher().label([item], catalogue)


def test_families_without_rules_get_their_one_described_skill():
    items = GymTask().load_items()  # the learnable preset
    catalogue = {s.name: s for s in RulesTeacher().build_catalogue(items)}
    for family in ("word_reversal", "decimal_add", "number_sequence", "weekday"):
        skill = catalogue[family_skill(family)]
        assert skill.family == family and skill.description == FAMILY_SKILLS[skill.name]
    assert catalogue["letter-counting"].description.startswith("General ability")
