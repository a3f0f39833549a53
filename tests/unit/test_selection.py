"""Training-set builders on tiny hand-made pools: STAT-Sel's per-pair sampling, cross-pair
de-duplication, the exact budget (trim or MSP-proportional fill), the Skill-It-style
mixture, and the uniform, Embed-Sel and mix baselines."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sgi.skills.selection import Selected, embed_sel, mix, skill_it, skill_weights, stat_sel, uniform

POOL = {"A": ["a1", "a2", "a3"], "B": ["b1"], "C": []}
PAIRS = [("d1", "A"), ("d2", "A"), ("d3", "B"), ("d4", "C")]


def test_pairs_exactly_filling_the_budget_are_taken_whole():
    # d1/A takes all 3 A items (k=5 > 3); d2/A adds nothing new; d3/B takes b1; C has no pool.
    chosen = stat_sel(PAIRS, POOL, k=5, budget=4, seed=0)
    assert sorted((s.item_id, s.skill, s.cause, s.reason) for s in chosen) == [
        ("a1", "A", "d1", "pair"), ("a2", "A", "d1", "pair"), ("a3", "A", "d1", "pair"), ("b1", "B", "d3", "pair"),
    ]


def test_k_limits_each_pair_and_duplicates_keep_their_first_cause():
    chosen = stat_sel([("d1", "A"), ("d2", "A")], POOL, k=2, budget=3, seed=3)
    pair = [s for s in chosen if s.reason == "pair"]
    # two pairs of A with k=2 over 3 A items: d1 picks 2, d2 picks 2 of which >= 1 is new.
    assert [s.cause for s in pair][:2] == ["d1", "d1"] and len(pair) == 3
    assert {s.item_id for s in pair} == {"a1", "a2", "a3"}
    shared = stat_sel([("d1", "A"), ("d2", "B")], {"A": ["x"], "B": ["x", "y"]}, k=5, budget=2, seed=0)
    assert [(s.item_id, s.skill, s.cause) for s in shared] == [("x", "A", "d1"), ("y", "B", "d2")]


def test_fewer_picks_are_filled_to_the_exact_budget_from_the_missing_skills():
    chosen = stat_sel(PAIRS, POOL, k=5, budget=10, seed=1)
    assert len(chosen) == 10
    assert [s.reason for s in chosen] == ["pair"] * 4 + ["fill"] * 6
    for s in chosen[4:]:
        assert s.cause == "" and s.skill in ("A", "B") and s.item_id in POOL[s.skill]  # never C: no pool


def test_fill_is_proportional_to_pair_counts():
    pairs = [("d1", "A"), ("d2", "A"), ("d3", "B")]  # A missing twice as often as B
    chosen = stat_sel(pairs, {"A": ["a"], "B": ["b"]}, k=1, budget=3002, seed=7)
    fill = Counter(s.skill for s in chosen if s.reason == "fill")
    assert sum(fill.values()) == 3000
    assert abs(fill["A"] - 2000) < 100  # binomial sd ~26


def test_fill_uses_fresh_items_before_repeating():
    pool = {"A": [f"a{i}" for i in range(10)]}
    assert len({s.item_id for s in stat_sel([("d", "A")], pool, k=2, budget=10, seed=0)}) == 10
    counts = Counter(s.item_id for s in stat_sel([("d", "A")], pool, k=2, budget=25, seed=0))
    assert set(counts.values()) <= {2, 3} and sum(counts.values()) == 25
    # a multi-label item picked for A is not drawn again as B's first fill
    picks = stat_sel([("d", "A"), ("e", "B")], {"A": ["x"], "B": ["x", "y"]}, k=1, budget=3, seed=0)
    assert Counter(s.item_id for s in picks)["y"] >= 1


def test_more_picks_than_budget_keep_a_seeded_subset_in_pick_order():
    pool = {s: [f"{s}{i}" for i in range(20)] for s in "ABC"}
    pairs = [("d1", "A"), ("d2", "B"), ("d3", "C")]  # 3 disjoint pairs x k=5: 15 distinct picks
    everything = stat_sel(pairs, pool, k=5, budget=15, seed=4)
    assert [s.reason for s in everything] == ["pair"] * 15
    trimmed = stat_sel(pairs, pool, k=5, budget=6, seed=4)
    assert len(trimmed) == 6 and len({s.item_id for s in trimmed}) == 6
    assert all(s.reason == "pair" for s in trimmed)
    assert trimmed == stat_sel(pairs, pool, k=5, budget=6, seed=4)
    subsets = {tuple(s.item_id for s in stat_sel(pairs, pool, k=5, budget=6, seed=seed)) for seed in range(5)}
    assert len(subsets) > 1


def test_deterministic_for_a_seed():
    pool = {"A": [f"a{i}" for i in range(30)], "B": [f"b{i}" for i in range(30)]}
    pairs = [("d1", "A"), ("d2", "B")]
    assert stat_sel(pairs, pool, k=3, budget=20, seed=5) == stat_sel(pairs, pool, k=3, budget=20, seed=5)
    assert stat_sel(pairs, pool, k=3, budget=20, seed=5) != stat_sel(pairs, pool, k=3, budget=20, seed=6)


def test_no_usable_pairs_fall_back_to_uniform_and_empty_pools_are_refused():
    for pairs in ([], [("d", "C")]):
        chosen = stat_sel(pairs, POOL, budget=6, seed=0)
        assert len(chosen) == 6 and {s.reason for s in chosen} == {"uniform"}
        assert {s.item_id for s in chosen} == {"a1", "a2", "a3", "b1"}
    with pytest.raises(ValueError, match="pool is empty"):
        stat_sel([("d", "A")], {"A": []}, budget=3, seed=0)
    with pytest.raises(ValueError, match="budget"):
        stat_sel(PAIRS, POOL, budget=0, seed=0)


def test_uniform_cycles_the_pool():
    pool = ["p0", "p1", "p2", "p3", "p4"]
    chosen = uniform(pool, budget=12, seed=2)
    assert len(chosen) == 12 and {(s.skill, s.cause, s.reason) for s in chosen} == {("", "", "uniform")}
    assert sorted(s.item_id for s in chosen[:5]) == pool  # without replacement until used up
    assert set(Counter(s.item_id for s in chosen).values()) <= {2, 3}
    assert chosen == uniform(pool, budget=12, seed=2)
    with pytest.raises(ValueError, match="pool is empty"):
        uniform([], budget=3, seed=0)


def _unit(degrees: list[float]) -> np.ndarray:
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


POOL_IDS = ["p0", "p30", "p60", "p90", "p120"]
POOL_VECTORS = _unit([0, 30, 60, 90, 120])
DIFFICULT_IDS = ["d10", "d80", "d20"]
DIFFICULT_VECTORS = _unit([10, 80, 20])


def test_embed_sel_takes_the_nearest_pool_items():
    # d10 -> p0 (10 deg), p30 (20); d80 -> p90 (10), p60 (20); d20 -> p30, p0: already taken.
    chosen = embed_sel(DIFFICULT_IDS, DIFFICULT_VECTORS, POOL_IDS, POOL_VECTORS, k=2, budget=4, seed=0)
    assert [(s.item_id, s.cause, s.reason) for s in chosen] == [
        ("p0", "d10", "embed"), ("p30", "d10", "embed"), ("p90", "d80", "embed"), ("p60", "d80", "embed"),
    ]


def test_embed_sel_fills_with_unused_items_first_and_trims():
    chosen = embed_sel(DIFFICULT_IDS, DIFFICULT_VECTORS, POOL_IDS, POOL_VECTORS, k=2, budget=7, seed=0)
    assert [s.reason for s in chosen] == ["embed"] * 4 + ["fill"] * 3
    assert chosen[4].item_id == "p120" and chosen[4].cause == ""
    trimmed = embed_sel(DIFFICULT_IDS, DIFFICULT_VECTORS, POOL_IDS, POOL_VECTORS, k=2, budget=3, seed=0)
    assert len(trimmed) == 3 and {s.item_id for s in trimmed} <= {"p0", "p30", "p60", "p90"}
    with pytest.raises(ValueError, match="one vector per id"):
        embed_sel(DIFFICULT_IDS[:2], DIFFICULT_VECTORS, POOL_IDS, POOL_VECTORS, budget=3, seed=0)


def _items(reason: str, n: int) -> list[Selected]:
    return [Selected(f"{reason}{i}", "A", "d", reason) for i in range(n)]


def test_mix_takes_shares_and_makes_up_a_short_side():
    sel, syn = _items("pair", 10), _items("synthetic", 10)
    assert Counter(s.reason for s in mix(sel, syn, budget=8, share_first=0.25)) == {"pair": 2, "synthetic": 6}
    assert mix(sel, syn, budget=8) == sel[:4] + syn[:4]
    assert mix(sel, syn[:3], budget=8) == sel[:5] + syn[:3]  # few synthetic items survived
    assert mix(sel[:2], syn[:3], budget=8) == sel[:2] + syn[:3]
    with pytest.raises(ValueError, match="share_first"):
        mix(sel, syn, budget=8, share_first=1.5)


def test_skill_it_weights_grow_with_the_summed_missing_rates():
    # A missed half the time in both rounds, B never: scores 2*(0.5+0.5)=2 and 0, so
    # w(A) = e^2 / (e^2 + 1) = 0.8808; 10 examples -> 8.81 / 1.19 -> 9 A, 1 B.
    rates = [{"A": 0.5, "B": 0.0}, {"A": 0.5}]
    pool = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2"], "C": []}
    assert skill_weights(rates, ["A", "B"], eta=2.0) == pytest.approx({"A": 0.8808, "B": 0.1192}, abs=1e-4)
    chosen = skill_it(rates, pool, eta=2.0, budget=10, seed=0)
    assert Counter(s.skill for s in chosen) == {"A": 9, "B": 1}
    assert {(s.cause, s.reason) for s in chosen} == {("", "mixture")}
    assert {s.item_id for s in chosen if s.skill == "A"} == {"a1", "a2", "a3"}  # every A item before repeats
    assert chosen == skill_it(rates, pool, eta=2.0, budget=10, seed=0)


def test_skill_it_starts_uniform_and_splits_by_largest_remainder():
    # No profile yet: equal weights; 7 / 3 = 2.33 each, the one left over goes to the first skill.
    pool = {"B": ["b1", "b2", "b3"], "A": ["a1", "a2", "a3"], "D": ["d1", "d2"], "E": []}
    chosen = skill_it([], pool, eta=2.0, budget=7, seed=1)
    assert Counter(s.skill for s in chosen) == {"A": 3, "B": 2, "D": 2}
    assert len({s.item_id for s in chosen}) == 7  # fresh items across skills first


def test_skill_it_does_not_draw_an_item_twice_while_fresh_ones_remain():
    chosen = skill_it([{"A": 1.0, "B": 1.0}], {"A": ["x", "y"], "B": ["x", "z"]}, eta=1.0, budget=3, seed=0)
    assert sorted(s.item_id for s in chosen) == ["x", "y", "z"]


def test_skill_it_refuses_bad_arguments():
    with pytest.raises(ValueError, match="no skill has pool items"):
        skill_it([{"A": 1.0}], {"A": []}, eta=1.0, budget=3, seed=0)
    with pytest.raises(ValueError, match="eta must be > 0"):
        skill_it([], {"A": ["a"]}, eta=0.0, budget=3, seed=0)
