"""Router decisions and threshold choice on constructed inputs (no models)."""

from __future__ import annotations

import pytest

from sgi.skills.routing import (
    Routed,
    TokenRouted,
    choose_threshold,
    curve,
    escalates,
    full_curve,
    gap_metrics,
    grid,
    outcome,
    pgr,
    pick,
    score,
    thresholds,
    token_outcome,
)


def row(i, s1, s2, confidence, skill=1.0, s1_seconds=0.1, s2_seconds=1.0):
    return Routed(f"i{i}", s1, s2, confidence, skill, s1_seconds, s2_seconds)


def test_each_router_reads_its_own_signal():
    r = row(0, True, True, confidence=0.4, skill=0.5)
    assert score("confidence", r) == 0.4 and score("skill", r) == 0.5 and score("skill+confidence", r) == 0.2
    assert escalates("confidence", r, 0.5) and not escalates("confidence", r, 0.4)  # strictly below escalates
    assert not escalates("skill", r, 0.5) and escalates("skill", r, 0.51)
    assert escalates("skill+confidence", r, 0.25) and not escalates("skill+confidence", r, 0.2)
    with pytest.raises(ValueError, match="not one of"):
        score("random", r)


def test_outcome_counts_accuracy_escalation_and_latency():
    rows = [row(0, True, True, 0.9), row(1, False, True, 0.3), row(2, False, False, 0.2), row(3, True, False, 0.8)]
    nothing = outcome("confidence", rows, 0.0)
    assert (nothing.escalation, nothing.accuracy) == (0.0, 0.5) and nothing.seconds == pytest.approx(0.1)
    half = outcome("confidence", rows, 0.5)  # the two unsure ones go up: one is fixed
    assert (half.escalation, half.accuracy) == (0.5, 0.75)
    assert half.seconds == pytest.approx((0.1 * 4 + 1.0 * 2) / 4)  # System 1 is paid before escalating
    everything = outcome("confidence", rows, 1.1)
    assert (everything.escalation, everything.accuracy) == (1.0, 0.5)


def test_the_skill_router_skips_system_1_for_escalated_items():
    rows = [row(0, True, True, 0.9, skill=0.9), row(1, False, True, 0.9, skill=0.1)]
    assert outcome("skill", rows, 0.5).seconds == pytest.approx((0.1 + 1.0) / 2)
    assert outcome("skill+confidence", rows, 0.5).seconds == pytest.approx((0.1 + 1.1) / 2)


def test_threshold_is_the_least_escalation_reaching_the_target():
    # System 2 is right on all 10; System 1 on the 6 confident ones only.
    rows = [row(i, i < 6, True, confidence=1.0 - i / 10) for i in range(10)]
    chosen = choose_threshold("confidence", rows, target=0.95)
    assert chosen.accuracy == 1.0 and chosen.escalation == pytest.approx(0.4)
    loose = choose_threshold("confidence", rows, target=0.8)  # 0.8 x 1.0: two escalations suffice
    assert loose.accuracy == pytest.approx(0.8) and loose.escalation == pytest.approx(0.2)


def test_unreachable_target_takes_the_most_accurate_cheapest_point():
    rows = [row(0, True, False, 0.9), row(1, False, False, 0.1), row(2, True, False, 0.5)]
    chosen = choose_threshold("confidence", rows, target=0.95)  # System 2 is useless here
    assert chosen.escalation == 0.0 and chosen.accuracy == pytest.approx(2 / 3)


def test_curves_run_from_no_escalation_to_all():
    rows = [row(i, i % 2 == 0, True, confidence=i / 20) for i in range(20)]
    for cuts in (thresholds("confidence", rows), grid("confidence", rows, points=5)):
        points = curve("confidence", rows, cuts)
        assert points[0].escalation == 0.0 and points[-1].escalation == 1.0
        assert [p.escalation for p in points] == sorted(p.escalation for p in points)
    assert len(grid("confidence", rows, points=5)) <= 6


def test_token_outcome_counts_the_share_of_each_answers_tokens_the_larger_model_chose():
    rows = [TokenRouted("a", True, 10, 0, 0.2), TokenRouted("b", False, 4, 4, 0.6), TokenRouted("c", True, 5, 1, 0.4)]
    o = token_outcome(0.5, rows)
    assert o.escalation == pytest.approx((0 + 1 + 0.2) / 3) and o.accuracy == pytest.approx(2 / 3)
    assert o.seconds == pytest.approx(0.4) and o.threshold == 0.5
    assert token_outcome(0.5, [TokenRouted("empty", False, 0, 0, 0.1)]).escalation == 0.0
    points = [token_outcome(t, r) for t, r in ((0.0, rows[:1]), (0.5, rows), (0.9, rows[1:]))]
    assert pick(points, accuracy=0.6).threshold == 0.0  # least escalation reaching it
    assert pick(points, accuracy=1.1).threshold == 0.0  # none reaches: the most accurate, cheapest first


# RouteLLM's measures, hand-computed on five items: System 1 right on a, b (0.4); System 2
# on a, c, d (0.6); the confidence router escalates e, d, c, b, a in that order.
def flat(points):
    return [x for p in points for x in p]


FIVE = [row("a", True, True, 0.9), row("b", True, False, 0.8), row("c", False, True, 0.6),
        row("d", False, True, 0.4), row("e", False, False, 0.2)]


def test_the_confidence_router_is_measured_by_its_whole_curve():
    assert flat(full_curve("confidence", FIVE)) == pytest.approx(
        flat([(0.0, 0.4), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.6), (1.0, 0.6)]))
    m = gap_metrics("confidence", FIVE)
    assert (m.system1_accuracy, m.system2_accuracy) == pytest.approx((0.4, 0.6))
    # area 0.2 x (0.4 + 0.5 + 0.7 + 0.7 + 0.6) = 0.58; (0.58 - 0.4) / 0.2
    assert m.apgr == pytest.approx(0.9)
    # 0.5, 0.56 and 0.59 are first reached between escalation 0.2 (0.4) and 0.4 (0.6)
    assert m.cpt == pytest.approx({0.5: 0.3, 0.8: 0.36, 0.95: 0.39})
    assert pgr(0.8, 0.4, 0.6) == pytest.approx(2.0)  # better than System 2: System 1 was right where it was not


def test_the_oracle_escalates_what_system_2_fixes_and_the_random_router_is_a_straight_line():
    oracle = gap_metrics("oracle", FIVE)
    # c, d first (0.8 at 40%), then a and e change nothing, b last (System 2 breaks it)
    assert flat(full_curve("oracle", FIVE)) == pytest.approx(flat([(0.0, 0.4), (0.4, 0.8), (0.8, 0.8), (1.0, 0.6)]))
    assert oracle.apgr == pytest.approx((0.24 + 0.32 + 0.14 - 0.4) / 0.2)
    assert oracle.cpt == pytest.approx({0.5: 0.1, 0.8: 0.16, 0.95: 0.19})
    rand = gap_metrics("random", FIVE)
    assert rand.apgr == pytest.approx(0.5) and rand.cpt == pytest.approx({0.5: 0.5, 0.8: 0.8, 0.95: 0.95})


def test_no_gap_to_recover_has_no_pgr():
    rows = [row(0, True, False, 0.9), row(1, False, False, 0.1)]  # System 2 is worse
    m = gap_metrics("confidence", rows)
    assert m.apgr is None and m.cpt == {0.5: None, 0.8: None, 0.95: None}
    assert pgr(0.5, 0.5, 0.5) is None and gap_metrics("oracle", []).apgr is None
