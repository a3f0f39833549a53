"""GymTask on real reasoning-gym generators: split counts, cross-split de-duplication,
stable items, the binarised scorer, answer extraction and the trivial baseline."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sgi.skills.records import Item
from sgi.skills.tasks.gym import DEFAULT_PRESET, FAMILY_SPECS, PRESETS, GymTask, trivial_baseline

SMALL = dict(families={"add_sub": 5, "lcm": 3}, probe_per_family=4, test_per_family=6, general={"spell_backward": 3})


@pytest.fixture(scope="module")
def default_items() -> list[Item]:
    return GymTask().load_items()


def test_small_load_has_the_asked_counts_per_split_and_family():
    items = GymTask(**SMALL, seed=1).load_items()
    counts = Counter((i.family, i.split) for i in items)
    assert counts == {
        ("add_sub", "pool"): 5, ("add_sub", "probe"): 4, ("add_sub", "test"): 6,
        ("lcm", "pool"): 3, ("lcm", "probe"): 4, ("lcm", "test"): 6,
        ("spell_backward", "general"): 3,
    }
    assert {i.item_id for i in items if i.family == "lcm" and i.split == "test"} == {f"lcm-test-{k}" for k in range(6)}


def test_default_questions_are_unique_across_all_splits(default_items):
    # lcm with values up to 40 collides across splits unless de-duplicated.
    assert len({i.question for i in default_items}) == len(default_items)
    assert len({i.item_id for i in default_items}) == len(default_items)


def test_default_counts_follow_the_default_preset(default_items):
    counts = Counter((i.family, i.split) for i in default_items)
    preset = PRESETS[DEFAULT_PRESET]
    for family, pool in preset.families.items():
        assert (counts[(family, "pool")], counts[(family, "probe")], counts[(family, "test")]) == (pool, 40, 100)
    assert {f: counts[(f, "general")] for f in preset.general} == preset.general


def test_same_seed_gives_identical_items_and_another_seed_does_not():
    first, again = GymTask(**SMALL, seed=3).load_items(), GymTask(**SMALL, seed=3).load_items()
    assert first == again and [i.meta for i in first] == [i.meta for i in again]
    assert [i.question for i in GymTask(**SMALL, seed=4).load_items()] != [i.question for i in first]


def test_held_out_items_do_not_move_when_pool_sizes_change():
    small = GymTask(**SMALL).load_items()
    bigger = GymTask(**{**SMALL, "families": {"add_sub": 50, "lcm": 30}}).load_items()
    held_out = [i for i in small if i.split in ("test", "probe")]
    assert held_out == [i for i in bigger if i.split in ("test", "probe")]


def test_every_reference_answer_scores_correct(default_items):
    task = GymTask()
    assert all(task.is_correct(i, i.answer) for i in default_items)


def test_reference_answers_survive_a_json_round_trip(default_items):
    task = GymTask()
    for item in default_items[::25]:
        stored = Item(**{**item.__dict__, "meta": json.loads(json.dumps(item.meta))})
        assert task.is_correct(stored, stored.answer)


def test_partial_credit_is_binarised_to_false(default_items):
    task = GymTask()
    lcm = next(i for i in default_items if i.family == "lcm")
    fraction = next(i for i in default_items if i.family == "fraction_simplification")
    num, den = fraction.meta["numerator"], fraction.meta["denominator"]
    # "12" scored against "120" earns 0.67 partial credit; an unreduced fraction earns 0.1.
    assert not task.is_correct(lcm, lcm.answer + "0")
    assert not task.is_correct(fraction, f"{num}/{den}")
    assert not task.is_correct(lcm, "")


def test_extract_numbers_fractions_and_text(default_items):
    task = GymTask()
    by_family = {i.family: i for i in default_items}
    assert task.extract(by_family["fraction_simplification"], "The answer is 3/4.") == "3/4"
    assert task.extract(by_family["lcm"], "LCM(12, 18) = 36.0") == "36"
    assert task.extract(by_family["add_sub"], "**-1,204**") == "-1204"
    assert task.extract(by_family["spell_backward"], "olleh\nbecause...") == "olleh"
    assert task.extract(by_family["word_reversal"], "c, b, a\nthat is all") == "c, b, a"
    assert task.extract(by_family["lcm"], "I don't know") == ""


def test_a_scorer_that_cannot_parse_an_answer_scores_it_wrong():
    task = GymTask()
    item = GymTask(families={"prime_factorization": 1}, probe_per_family=1, test_per_family=1,
                   general={}).load_items()[0]
    assert task.is_correct(item, item.answer)
    assert not task.is_correct(item, "2 x 31")  # the generator's own scorer raises ValueError on it


def test_trivial_baseline_is_the_majority_answer_rate():
    items = [Item(f"g{k}", f"q{k}", a, "test", "gcd") for k, a in enumerate(["1", "1", "2", "3"])]
    items.append(Item("l0", "q", "12", "test", "lcm"))
    assert trivial_baseline(items) == {"gcd": 0.5, "lcm": 1.0}


def test_unknown_family_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown gym families \\['nope'\\]"):
        GymTask(families={"nope": 3})


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_loads_short_questions_of_known_families(preset):
    p = PRESETS[preset]
    items = GymTask(families=p.families, general=p.general).load_items()
    assert max(len(i.question.split()) for i in items) < 40
    assert set(FAMILY_SPECS) >= set(p.families) | set(p.general)
    assert set(p.roles) == set(p.families)  # every family says what it is for


def test_a_smaller_test_split_is_a_prefix_and_leaves_probe_and_pool_alone():
    small = GymTask(**{**SMALL, "test_per_family": 3}).load_items()
    big = GymTask(**{**SMALL, "test_per_family": 6}).load_items()
    assert [i for i in small if i.split != "test"] == [i for i in big if i.split != "test"]
    big_test = [i for i in big if i.split == "test"]
    assert [i for i in small if i.split == "test"] == [i for i in big_test if int(i.item_id.rsplit("-", 1)[1]) < 3]
