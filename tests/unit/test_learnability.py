"""Learnability-aware targeting on a constructed store (real DuckDB file), every weight and
count worked out by hand in the comments; the weighted builder's replay share, causes and
synthetic-first rule; and that a redone select stage rebuilds the same training set."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from sgi.orchestrator import stages
from sgi.orchestrator.config import ConfigError, load_config
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.stages.warmup import warmup_second_half
from sgi.orchestrator.store import ScoredAttempt, Store
from sgi.skills.learnability import SkillState, above_floor, learning_rates, skill_weights
from sgi.skills.records import Diagnosis, Generation, Item, Label
from sgi.skills.selection import Selected, allocate, weighted_sel
from sgi.skills.synthesis import weighted_requests

# Probe: 10 items per skill, every answer distinct (floor = 1/10). Round 0 right answers:
# A 5, B 1, C 9; round 1 (after round 0 trained 40 A and 10 C examples): A 8, B 1, C 9.
CORRECT = {0: {"A": 5, "B": 1, "C": 9}, 1: {"A": 8, "B": 1, "C": 9}}
MISSING = {0: {"A": 5, "B": 9, "C": 1}, 1: {"A": 2, "B": 9, "C": 1}}  # diagnoses naming the skill
TRAINED_0 = {"A": 40, "C": 10}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "run" / "sgi.duckdb")
    probe = [Item(f"{k}{i}", f"question {k}{i}", str(100 * ord(k) + i), "probe", k) for k in "ABC" for i in range(10)]
    pool = [Item(f"p{k}{i}", f"pool {k}{i}", str(i), "pool", k) for k in "ABC" for i in range(20)]
    s.add_items(probe + pool)
    s.add_labels([Label(i.item_id, i.family) for i in probe + pool])
    for r, right in CORRECT.items():
        s.add_attempts(r, [ScoredAttempt(Generation(i.item_id, 0, "x", 1, 0.9, 0.9), "x",
                                         int(i.item_id[1:]) < right[i.family]) for i in probe])
        wrong = [i for i in probe if int(i.item_id[1:]) >= right[i.family]]
        s.add_diagnoses(r, [Diagnosis(i.item_id, (i.family,), "r")
                            for i in wrong][: sum(MISSING[r].values())])
    s.add_train_set(0, "stat-sel", [Selected(f"p{k}{n % 20}", k, "", "targeted") for k, m in TRAINED_0.items()
                                    for n in range(m)])
    yield s
    s.close()


def _states(r: int) -> dict[str, SkillState]:
    return {k: SkillState(CORRECT[r][k] / 10, 0.1, MISSING[r][k]) for k in "ABC"}


def test_the_store_gives_the_profile_and_training_counts_the_weights_read(store):
    # the wrong items are diagnosed in order, so each skill is missing exactly its wrong count
    assert {s: (st.accuracy, st.floor, st.missing) for s, st in store.skill_states(0).items()} == {
        "A": (0.5, 0.1, 5), "B": (0.1, 0.1, 9), "C": (0.9, 0.1, 1)}
    assert store.trained_per_skill(0) == TRAINED_0
    assert store.skill_states(1)["A"].missing == 2


def test_round_0_weight_is_missing_times_accuracy_above_the_floor(store):
    # above floor: A (0.5 - 0.1) / 0.9 = 4/9, B 0 (only guesses), C 8/9; rates all 1 at round 0
    # w: A 5 * 4/9 = 20/9, B 0, C 1 * 8/9 = 8/9; normalised A 20/28 = 5/7, C 2/7
    weights = skill_weights([store.skill_states(0)], [])
    assert weights.keys() == {"A", "C"}
    assert weights["A"] == pytest.approx(5 / 7) and weights["C"] == pytest.approx(2 / 7)


def test_explore_gives_a_skill_at_its_floor_a_share_that_its_measured_rate_then_decides(store):
    # explore 0.2: A max(4/9, 0.2) = 4/9, B max(0, 0.2) = 0.2, C 8/9. w: A 5 * 4/9 = 20/9,
    # B 9 * 0.2 = 1.8, C 8/9; sum 20/9 + 1.8 + 8/9 = 4.911111: A 0.452489, B 0.366516, C 0.180995
    weights = skill_weights([store.skill_states(0)], [], explore=0.2)
    assert weights == pytest.approx({"A": 0.452489, "B": 0.366516, "C": 0.180995}, rel=1e-5)
    # round 1 (rates of the test below; B had no examples: the run-wide 0.0295181):
    # A 2 * 7/9 * 0.0316266 = 0.0491969, B 9 * 0.2 * 0.0295181 = 0.0531326, C 8/9 * 0.0268347 = 0.0238531;
    # sum 0.1261826
    weights = skill_weights([store.skill_states(0), store.skill_states(1)], [store.trained_per_skill(0)], 100, 0.2)
    assert weights == pytest.approx({"A": 0.389887, "B": 0.421078, "C": 0.189036}, rel=1e-4)
    # B trained 30 examples without moving: its rate shrinks below the run-wide one, so does its share
    rates = learning_rates([store.skill_states(0), store.skill_states(1)], [{**TRAINED_0, "B": 30}], 100)
    assert rates["B"] < rates["A"] and rates["B"] == pytest.approx(100 * 1.475907 / 80 / 130, rel=1e-5)


def test_round_1_weights_follow_the_measured_logit_gain_per_example(store):
    # A: logit(7/9) - logit(4/9) = ln(7/2) - ln(4/5) = 1.475907 over 40 examples; C: no change (8/9 both
    # rounds) over 10; run-wide rate 1.475907 / 50 = 0.0295181. Shrunk with 100 pseudo-examples:
    # rate A = (1.475907 + 2.951814) / 140 = 0.0316266, C = 2.951814 / 110 = 0.0268347, B = 0.0295181.
    rates = learning_rates([store.skill_states(0), store.skill_states(1)], [store.trained_per_skill(0)], 100)
    assert rates["A"] == pytest.approx(0.0316266, rel=1e-5)
    assert rates["C"] == pytest.approx(0.0268347, rel=1e-5)
    assert rates["B"] == pytest.approx(0.0295181, rel=1e-5)
    # w: A 2 * 7/9 * 0.0316266 = 0.0491969, C 1 * 8/9 * 0.0268347 = 0.0238531; A share 0.673469
    weights = skill_weights([store.skill_states(0), store.skill_states(1)], [store.trained_per_skill(0)], 100)
    assert weights["A"] == pytest.approx(0.673469, rel=1e-5) and weights["C"] == pytest.approx(0.326531, rel=1e-5)


def test_a_fall_is_not_a_negative_rate_and_no_measurement_means_the_prior():
    before, after = {"A": SkillState(0.6, 0.0, 3)}, {"A": SkillState(0.3, 0.0, 6)}
    assert learning_rates([before, after], [{"A": 20}], prior_examples=0) == {"A": 0.0}
    assert learning_rates([before], [], prior_examples=100) == {"A": 1.0}
    assert above_floor(SkillState(0.05, 0.2, 1)) == 0 and above_floor(SkillState(1.0, 0.2, 0)) == 1
    assert skill_weights([{"A": SkillState(0.1, 0.1, 9), "B": SkillState(1.0, 0.1, 0)}], []) == {}


HALFWAY = {"A": 2, "B": 1, "C": 8}  # right answers of the warm-up's half-way student, of 10 a skill


def _add_halfway(store):
    probe = [i for i in store.items("probe")]
    store.add_halfway_attempts([ScoredAttempt(Generation(i.item_id, 0, "x", 1, 0.9, 0.9), "x",
                                              int(i.item_id[1:]) < HALFWAY[i.family]) for i in probe])


def test_the_warm_ups_second_half_is_round_0s_measured_rate(store):
    _add_halfway(store)
    # the half-way student against round 0's floors (0.1), with no diagnoses
    assert {s: (st.accuracy, st.floor, st.missing) for s, st in store.halfway_skill_states().items()} == {
        "A": (0.2, 0.1, 0), "B": (0.1, 0.1, 0), "C": (0.8, 0.1, 0)}
    # above floor, half-way -> round 0: A 1/9 -> 4/9, B 0 -> 0, C 7/9 -> 8/9; logit gains
    # A ln(4/5) - ln(1/8) = 1.856298, B 0, C ln(8) - ln(7/2) = 0.826679; 10 examples each in the
    # second half: run-wide (1.856298 + 0.826679) / 30 = 0.0894326; with 100 pseudo-examples
    # rate A (1.856298 + 8.94326) / 110 = 0.0981778, B 8.94326 / 110 = 0.0813023, C 0.0888176
    halfway, round_0 = store.halfway_skill_states(), store.skill_states(0)
    second_half = {"A": 10.0, "B": 10.0, "C": 10.0}
    rates = learning_rates([halfway, round_0], [second_half], 100)
    assert rates == pytest.approx({"A": 0.0981778, "B": 0.0813023, "C": 0.0888176}, rel=1e-5)
    # w: A 5 * 4/9 * 0.0981778 = 0.218173, B 9 * 0, C 1 * 8/9 * 0.0888176 = 0.0789490:
    # A 0.734288, C 0.265712 (rate 1 for both: 5/7 and 2/7)
    assert skill_weights([halfway, round_0], [second_half], 100) == pytest.approx(
        {"A": 0.734288, "C": 0.265712}, rel=1e-5)


def test_round_0_under_warmup_rates_counts_the_warm_ups_second_half(store, tmp_path):
    _add_halfway(store)
    cfg = load_config(overrides=["loop.warmup_rates=true", "warmup.steps=6", "warmup.batch_size=5",
                                 "train.steps=4", "train.batch_size=4", f"runs_dir={tmp_path}"])
    ctx = stages.Context(cfg=cfg, task=None, store=store, teacher=None, reporter=Reporter(quiet=True))
    second_half = warmup_second_half(ctx)
    # 30 warm-up draws of the pool (one label each), trained half after step 3: 15 expected in all
    assert sum(second_half.values()) == pytest.approx(15) and second_half.keys() <= {"A", "B", "C"}
    drawn = Counter(q.split()[1][0] for q, _ in stages.warmup_examples(ctx))  # "pool A3" -> A
    assert second_half == {k: n / 2 for k, n in drawn.items()}
    stages.build_train_set(ctx, 0)
    expected = skill_weights([store.halfway_skill_states(), store.skill_states(0)], [second_half], 100)
    shown = ", ".join(f"{s} {w:.2f}" for s, w in sorted(expected.items(), key=lambda kv: -kv[1]))
    assert any(f"learnability weights: {shown}" == m for (m,) in store.db.execute(
        "SELECT message FROM events WHERE stage = 'select'").fetchall())
    off = load_config(overrides=["warmup.steps=6", "train.steps=4", "train.batch_size=4", f"runs_dir={tmp_path}"])
    assert not off.loop.warmup_rates  # off by default: round 0's rates are 1


def test_budget_splits_into_replay_and_weighted_skills_with_their_causes(store):
    # budget 16, replay 0.25: 4 replay; 12 targeted by 5/7 : 2/7 = 8.57 : 3.43 -> A 9, C 3
    weights = skill_weights([store.skill_states(0)], [])
    assert allocate(weights, 12) == {"A": 9, "C": 3}
    pairs = store.missing_pairs(0)
    by_skill = {k: [f"p{k}{i}" for i in range(20)] for k in "ABC"}
    chosen = weighted_sel(pairs, by_skill, [i for ids in by_skill.values() for i in ids], weights, budget=16,
                          replay=0.25, seed=0)
    assert Counter((c.reason, c.skill) for c in chosen) == {("targeted", "A"): 9, ("targeted", "C"): 3,
                                                            ("replay", ""): 4}
    a_causes = [c.cause for c in chosen if c.skill == "A"]
    assert a_causes == ["A5", "A6", "A7", "A8", "A9"] * 1 + ["A5", "A6", "A7", "A8"]  # round-robin over A's pairs
    assert all(c.item_id in by_skill[c.skill] for c in chosen if c.reason == "targeted")
    assert len({c.item_id for c in chosen}) == 16  # fresh items first: 60 in the pool, no repeats


def test_synthetic_items_come_first_and_no_weight_means_all_replay():
    syn = [Selected("s1", "A", "d1", "synthetic"), Selected("s2", "A", "d1", "synthetic")]
    chosen = weighted_sel([("d1", "A")], {"A": ["a1", "a2"]}, ["a1", "a2", "b1"], {"A": 1.0}, budget=4,
                          replay=0.5, seed=1, synthetic=syn)
    assert [c.reason for c in chosen] == ["synthetic", "synthetic", "replay", "replay"]
    assert [c.reason for c in weighted_sel([], {}, ["a", "b"], {}, budget=3, replay=0.2, seed=0)] == ["replay"] * 3
    with pytest.raises(ValueError, match="replay share"):
        weighted_sel([], {}, ["a"], {}, budget=1, replay=1.5, seed=0)


def test_synthesis_requests_spread_a_skills_count_over_its_difficult_items():
    pairs = [("d1", "A"), ("d2", "A"), ("d3", "B"), ("d1", "A")]
    assert weighted_requests(pairs, {"A": 5, "B": 2, "C": 4}) == [("A", "d1", 3), ("A", "d2", 2), ("B", "d3", 2)]


def test_learnability_weighting_is_the_stat_default_and_needs_a_stat_strategy():
    assert load_config().loop.by_learnability  # stat-sel, weighting unset
    assert load_config(overrides=["loop.strategy=stat-syn"]).loop.by_learnability
    assert not load_config(overrides=["loop.weighting=paper"]).loop.by_learnability
    assert not load_config(overrides=["loop.strategy=skill-it"]).loop.by_learnability  # unset: not an error
    assert load_config(overrides=["loop.weighting=learnability", "loop.strategy=stat-syn"]).loop.by_learnability
    with pytest.raises(ConfigError, match="weighting 'learnability' applies to strategy stat-sel or stat-syn"):
        load_config(overrides=["loop.weighting=learnability", "loop.strategy=uniform"])


def test_a_redone_select_stage_rebuilds_the_same_training_set(store, tmp_path):
    cfg = load_config(overrides=["loop.weighting=learnability", "train.steps=4", "train.batch_size=4",
                                 f"runs_dir={tmp_path}"])
    ctx = stages.Context(cfg=cfg, task=None, store=store, teacher=None, reporter=Reporter(quiet=True))
    stages.build_train_set(ctx, 1)
    first = store.train_set(1)
    store.reset_stages([(1, "select")])
    assert store.train_set(1) == []
    stages.build_train_set(ctx, 1)
    assert store.train_set(1) == first and len(first) == 16
    assert Counter(row[5] for row in first) == {"targeted": 12, "replay": 4}
    assert any("learnability weights: A 0.67, C 0.33" in m for *_, m in store.db.execute(
        "SELECT round, stage, message FROM events").fetchall())
    assert math.isclose(sum(1 for row in first if row[3] == "A") / 12, 8 / 12)  # A 0.673 of 12 -> 8


def test_every_configured_strategy_has_a_selection():
    from typing import get_args

    from sgi.orchestrator.config import LoopConfig
    from sgi.orchestrator.stages.select import STRATEGIES

    assert set(get_args(LoopConfig.model_fields["strategy"].annotation)) | {"learnability"} == set(STRATEGIES)


# each pool strategy's own reasons: the paper's STAT-Sel takes k items per (difficult item,
# missing skill) pair, then fills; Skill-It mixes skills by its weights; uniform ignores skills
REASONS = {"uniform": {"uniform"}, "stat-sel": {"pair", "fill"}, "skill-it": {"mixture"}}


@pytest.mark.parametrize("strategy", sorted(REASONS))
def test_pool_strategies_fill_the_budget_under_their_own_name(store, tmp_path, strategy):
    cfg = load_config(overrides=[f"loop.strategy={strategy}", "loop.weighting=paper", "train.steps=4",
                                 "train.batch_size=4", f"runs_dir={tmp_path}"])
    ctx = stages.Context(cfg=cfg, task=None, store=store, teacher=None, reporter=Reporter(quiet=True))
    detail = stages.build_train_set(ctx, 1)
    chosen = store.train_set(1)
    assert len(chosen) == 16 and detail.startswith(f"{strategy}: 16 examples")
    assert store.db.execute("SELECT DISTINCT strategy FROM train_sets WHERE round = 1").fetchall() == [(strategy,)]
    reasons = {row.reason for row in chosen}
    assert reasons <= REASONS[strategy] and reasons & (REASONS[strategy] - {"fill"})


def _context(store, *overrides: str):
    from sgi.orchestrator import stages
    from sgi.orchestrator.config import load_config
    from sgi.orchestrator.progress import Reporter

    cfg = load_config(None, ["loop.rl.enabled=true", "loop.rl.steps=4", "loop.rl.prompts_per_step=4", *overrides])
    return stages.Context(cfg=cfg, task=None, store=store, teacher=None, reporter=Reporter(quiet=True))


def test_rl_prompts_follow_the_rl_rounds_profile_like_a_training_set(store):
    from sgi.orchestrator.stages.select import rl_prompts

    # RL after round 0 (the RL round is 1): the weights of the round-1 test above, A 0.673469 : C 0.326531;
    # 4 steps x 4 prompts = 16, replay 0.25 -> 4 replay, 12 targeted: 8.08 : 3.92 -> A 8, C 4
    chosen = rl_prompts(_context(store), 1)
    assert Counter((c.reason, c.skill) for c in chosen) == {("targeted", "A"): 8, ("targeted", "C"): 4,
                                                            ("replay", ""): 4}
    assert rl_prompts(_context(store), 1) == chosen  # from the store alone: a resumed round draws the same
    # the paper's rule: each skill by its missing count in the RL round's profile (A 2, B 9, C 1 of 12)
    paper = rl_prompts(_context(store, "loop.weighting=paper"), 1)
    assert Counter(c.skill for c in paper if c.reason == "targeted") == {"A": 2, "B": 9, "C": 1}
    uniform = rl_prompts(_context(store, "loop.rl.prompts=uniform"), 1)
    assert len(uniform) == 16 and {c.reason for c in uniform} == {"uniform"}
