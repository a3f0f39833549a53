"""EmbedTeacher with the real all-MiniLM-L6-v2 embedder on questions of known structure:
three unlike kinds (fraction simplification, spelling, temperature conversion), 8 each."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sgi.skills.embed_teacher import EmbedTeacher
from sgi.skills.records import Case, Item
from sgi.workers.embedder import Embedder

FRACTION = [
    "Simplify the fraction {a}/{b} to lowest terms.",
    "Reduce {a}/{b} to its simplest form.",
    "Write the fraction {a}/{b} in lowest terms.",
    "What is {a}/{b} simplified?",
]
SPELLING = [
    "Spell the word '{w}' backwards.",
    "How do you spell '{w}' in reverse, letter by letter?",
    "Write the letters of the word '{w}' in reverse order.",
    "Spell '{w}' from its last letter to its first.",
]
TEMPERATURE = [
    "Convert {c} degrees Celsius to Fahrenheit.",
    "What is {c} °C in degrees Fahrenheit?",
    "A thermometer reads {c} degrees Celsius. What is the temperature in Fahrenheit?",
    "Change a temperature of {c} Celsius into Fahrenheit.",
]
WORDS = ["apple", "garden", "window", "pencil", "rocket", "silver", "bottle", "forest"]
FRACTIONS = [(6, 8), (10, 15), (12, 16), (9, 27), (14, 21), (8, 20), (18, 24), (25, 35)]
DEGREES = [0, 10, 25, 37, 40, 100, -5, 15]


def three_kinds() -> list[Item]:
    items = []
    for n in range(8):
        a, b = FRACTIONS[n]
        items.append(Item(f"frac-{n}", FRACTION[n % 4].format(a=a, b=b), "x", "pool"))
        items.append(Item(f"spell-{n}", SPELLING[n % 4].format(w=WORDS[n]), "x", "pool"))
        items.append(Item(f"temp-{n}", TEMPERATURE[n % 4].format(c=DEGREES[n]), "x", "pool"))
    return items


@pytest.fixture(scope="module")
def embed():
    return Embedder().encode


@pytest.fixture(scope="module")
def built(embed):
    teacher = EmbedTeacher(embed, n_skills=None, seed=0)
    items = three_kinds()
    return teacher, items, teacher.build_catalogue(items)


def test_embedder_gives_unit_rows_and_batches_consistently():
    embedder = Embedder(batch_size=4)
    texts = [item.question for item in three_kinds()[:10]]
    vectors = embedder.encode(texts)
    assert vectors.shape == (10, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(Embedder(batch_size=64).encode(texts[:3]), vectors[:3], atol=1e-5)
    assert Embedder().encode([]).shape == (0, 384)


def test_auto_k_recovers_the_three_kinds(built):
    teacher, items, catalogue = built
    assert len(catalogue) == 3
    labels = teacher.label(items, catalogue)
    primary = {}
    for label in labels:
        primary.setdefault(label.item_id, label.skill)  # labels come nearest-first per item
    # Purity: each cluster's share of its majority kind, over all items.
    by_skill: dict[str, Counter] = {}
    for item_id, skill in primary.items():
        by_skill.setdefault(skill, Counter())[item_id.split("-")[0]] += 1
    purity = sum(counts.most_common(1)[0][1] for counts in by_skill.values()) / len(items)
    assert purity >= 0.9, by_skill


def test_names_and_descriptions_use_distinctive_words(built):
    teacher, items, catalogue = built
    kind_words = {"frac": {"fraction", "simplify", "simplified", "lowest", "reduce", "terms", "simplest"},
                  "spell": {"spell", "letter", "letters", "reverse", "backwards", "word"},
                  "temp": {"celsius", "fahrenheit", "degrees", "temperature", "convert", "thermometer"}}
    named = set()
    for skill in catalogue:
        words = set(skill.name.split("-"))
        kinds = [kind for kind, vocab in kind_words.items() if words & vocab]
        assert len(kinds) == 1, skill
        named.add(kinds[0])
        assert skill.description.endswith("(8 items)") and "," in skill.description
    assert named == {"frac", "spell", "temp"}
    assert len({s.name for s in catalogue}) == 3


def test_labels_are_one_to_five_per_item_with_similarity_scores(built, embed):
    teacher, items, catalogue = built
    labels = teacher.label(items, catalogue)
    per_item = Counter(label.item_id for label in labels)
    assert set(per_item) == {item.item_id for item in items}
    assert all(1 <= n <= 5 for n in per_item.values())
    assert all(-1.0 <= label.score <= 1.0 for label in labels)

    # A low threshold makes items multi-label, capped at max_labels.
    loose = EmbedTeacher(embed, n_skills=None, threshold=-1.0, max_labels=2, seed=0)
    loose_catalogue = loose.build_catalogue(items)
    assert Counter(l.item_id for l in loose.label(items, loose_catalogue)) == Counter({i.item_id: 2 for i in items})


def test_label_works_on_new_items_after_build(built):
    teacher, _, catalogue = built
    new = [
        Item("new-frac", "Simplify 20/30 to lowest terms.", "2/3", "test"),
        Item("new-temp", "Convert 50 degrees Celsius to Fahrenheit.", "122", "test"),
    ]
    first = {label.item_id: label.skill for label in reversed(teacher.label(new, catalogue))}
    skill_of = {s.name: s.description for s in catalogue}
    assert "fraction" in skill_of[first["new-frac"]] and "celsius" in skill_of[first["new-temp"]]


def test_deterministic_for_a_fixed_seed(built, embed):
    teacher, items, catalogue = built
    again = EmbedTeacher(embed, n_skills=None, seed=0)
    assert again.build_catalogue(items) == catalogue
    assert again.label(items, catalogue) == teacher.label(items, catalogue)


def test_fixed_k_and_tiny_inputs(embed):
    items = three_kinds()
    assert len(EmbedTeacher(embed, n_skills=2, seed=0).build_catalogue(items)) == 2
    one = [Item("only", "Spell 'cat' backwards.", "tac", "pool")]
    teacher = EmbedTeacher(embed, seed=0)
    catalogue = teacher.build_catalogue(one)
    assert len(catalogue) == 1 and [l.skill for l in teacher.label(one, catalogue)] == [catalogue[0].name]
    with pytest.raises(ValueError, match="build_catalogue"):
        EmbedTeacher(embed).label(one, catalogue)


def test_diagnosis_blames_the_skill_the_student_fails_more(built):
    teacher, items, catalogue = built
    a, b = catalogue[0].name, catalogue[1].name
    case = Case(item=items[0], output="wrong", extracted="1", skills=(a, b))
    [weak_b] = teacher.diagnose([case], {a: 0.9, b: 0.2})
    assert weak_b.skills[0] == b and a not in weak_b.skills  # a carries 0.1 / 0.9 of the blame
    assert "failure rate" in weak_b.reason and f"{b} 0.80" in weak_b.reason
    [weak_a] = teacher.diagnose([case], {a: 0.3, b: 0.6})
    assert weak_a.skills == (a, b)  # both carry >= 20% of the blame, weakest first

    unlabelled = Case(item=Item("t", "Convert 12 degrees Celsius to Fahrenheit.", "53.6", "test"), output="", extracted="", skills=())
    [nearest] = teacher.diagnose([unlabelled], {})
    assert 1 <= len(nearest.skills) <= 3 and "nearest skill" in nearest.reason
    assert "celsius" in {s.name: s.description for s in catalogue}[nearest.skills[0]]
