"""What sgi accepts from a teacher, as pure rules: labels only from the catalogue, at most
MAX_LABELS an item; diagnoses only of the item's own labelled skills, at most MAX_DIAGNOSED.

Each check returns what it kept and one note per thing it changed; the stage that asked the
teacher writes the notes to the run's events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Generic, NamedTuple, TypeVar

from sgi.skills.records import Diagnosis, Label

MAX_LABELS = 5  # STAT labels each item with 1-5 skills
MAX_DIAGNOSED = 3  # ... and names 1-3 missing skills per failure

T = TypeVar("T")


class Checked(NamedTuple, Generic[T]):
    kept: list[T]
    notes: list[str]  # one line per label dropped or diagnosis changed


def check_labels(labels: Sequence[Label], catalogue: set[str]) -> Checked[Label]:
    """Catalogue skills only, at most MAX_LABELS per item (highest score first)."""
    by_item: dict[str, list[Label]] = defaultdict(list)
    notes = []
    for label in labels:
        if label.skill in catalogue:
            by_item[label.item_id].append(label)
        else:
            notes.append(f"{label.item_id}: skill {label.skill!r} is not in the catalogue; dropped")
    kept = [lab for ls in by_item.values() for lab in sorted(ls, key=lambda lab: -lab.score)[:MAX_LABELS]]
    return Checked(kept, notes)


def check_diagnoses(diagnoses: Sequence[Diagnosis], labelled: Mapping[str, tuple[str, ...]]) -> Checked[Diagnosis]:
    """1-3 of the item's *labelled* skills, so a skill's missing count never exceeds its attempts.

    A teacher naming something else (outside the labels, or outside the catalogue) gets a
    note; if nothing labelled is left, the blame goes to the item's primary skill.
    """
    kept, notes = [], []
    for d in diagnoses:
        allowed = labelled.get(d.item_id, ())
        skills = tuple(dict.fromkeys(s for s in d.skills if s in allowed))[:MAX_DIAGNOSED]
        if skills != tuple(d.skills):
            notes.append(f"{d.item_id}: teacher named {list(d.skills)}, labels {list(allowed)}")
        if not skills and allowed:
            skills = allowed[:1]
        if skills:
            kept.append(Diagnosis(d.item_id, skills, d.reason))
    return Checked(kept, notes)
