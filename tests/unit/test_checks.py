"""The rules for what sgi keeps of a teacher's labels and diagnoses, on hand-made replies."""

from __future__ import annotations

from sgi.skills.checks import MAX_DIAGNOSED, MAX_LABELS, check_diagnoses, check_labels
from sgi.skills.records import Diagnosis, Label


def test_labels_outside_the_catalogue_are_dropped_with_a_note():
    checked = check_labels([Label("i1", "gcd", 0.9), Label("i1", "[/]", 0.8), Label("i2", "lcm", 0.5)],
                           {"gcd", "lcm"})
    assert checked.kept == [Label("i1", "gcd", 0.9), Label("i2", "lcm", 0.5)]
    assert checked.notes == ["i1: skill '[/]' is not in the catalogue; dropped"]


def test_at_most_five_labels_an_item_the_highest_scores_kept():
    labels = [Label("i1", f"s{n}", n / 10) for n in range(7)]
    checked = check_labels(labels, {f"s{n}" for n in range(7)})
    assert MAX_LABELS == 5
    assert [lab.skill for lab in checked.kept] == ["s6", "s5", "s4", "s3", "s2"] and checked.notes == []


def test_diagnoses_keep_only_the_items_labelled_skills():
    labelled = {"i1": ("gcd", "carry"), "i2": ("lcm",)}
    checked = check_diagnoses([Diagnosis("i1", ("carry", "gcd", "carry"), "r1"), Diagnosis("i2", ("lcm",), "r2")],
                              labelled)
    assert checked.kept == [Diagnosis("i1", ("carry", "gcd"), "r1"), Diagnosis("i2", ("lcm",), "r2")]
    assert checked.notes == ["i1: teacher named ['carry', 'gcd', 'carry'], labels ['gcd', 'carry']"]


def test_a_diagnosis_naming_nothing_labelled_blames_the_primary_skill():
    checked = check_diagnoses([Diagnosis("i1", ("made-up",), "r")], {"i1": ("gcd", "carry")})
    assert checked.kept == [Diagnosis("i1", ("gcd",), "r")] and len(checked.notes) == 1


def test_at_most_three_missing_skills_and_unlabelled_items_get_none():
    labelled = {"i1": ("a", "b", "c", "d")}
    checked = check_diagnoses([Diagnosis("i1", ("a", "b", "c", "d"), "r"), Diagnosis("i9", ("a",), "r")], labelled)
    assert MAX_DIAGNOSED == 3
    assert checked.kept == [Diagnosis("i1", ("a", "b", "c"), "r")]
