"""Learnability-aware targeting: spend the round's budget where one more example is expected to pay.

STAT weights a missing skill by how often it was missing (its MSP count). At a small budget
that puts most examples on skills the student cannot learn yet (docs/benchmarks.md: the
135M student barely moves on lcm or equations), while uniform SFT keeps improving the
learnable ones. Here each skill's weight is the expected gain of one more example:

    w(s) = missing(s) * max(above_floor(s), explore) * rate(s)

- missing(s): the round's MSP count, STAT's own signal of where the student fails;
- above_floor(s) = clip((p - f) / (1 - f), 0, 1): probe accuracy p above the skill's
  trivial floor f (always giving its most common answer), rescaled. Under a logistic
  learning curve the gain per example is rate * p~(1 - p~); the missing count stands in
  for the (1 - p~) part (finer: the teacher says which labelled skill failed), so the
  weight falls to 0 for a skill the student only guesses at and for one it has mastered;
- rate(s): how fast the skill's logit p~ moved per training example in the earlier rounds,
  shrunk towards the run-wide rate by `prior_examples` pseudo-examples (noise: 40 probe
  items a family). Round 0 has no round before it: every rate is 1, so the weight is the
  prior, unless `loop.warmup_rates` measures the warm-up's second half as one more round
  before round 0 (its half-way student's probe accuracy, and the examples it trained on after
  that point). The late starters move fastest there (bench/bench_warmup_curve.py).
- explore (`loop.explore`, default 0): the least above_floor a missing skill is weighted by.
  Without it a skill the student cannot do at all yet gets no examples, so its rate is never
  measured, however learnable it is (the frontier preset's late starters); with it such a
  skill gets a small share in round 0 and keeps one only if it then moves.

Everything comes from the store (profiles of rounds 0..r, training sets of rounds < r), so a
resumed run computes the same weights. `replay` of the budget stays uniform over the pool
against forgetting; the rest is split by these weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LOGIT_CLIP = 0.02  # p~ is clipped to [0.02, 0.98] inside the logit: 0 and 1 would be infinite


@dataclass(frozen=True)
class SkillState:
    """One skill in one profiled round, as the MSP view has it."""

    accuracy: float  # greedy probe accuracy of items labelled with the skill
    floor: float  # accuracy of always giving the skill's most common answer
    missing: int  # diagnoses naming the skill


def above_floor(state: SkillState) -> float:
    """Probe accuracy above the trivial floor, rescaled to [0, 1]."""
    if state.floor >= 1:
        return 0.0
    return min(1.0, max(0.0, (state.accuracy - state.floor) / (1 - state.floor)))


def _logit(p: float) -> float:
    p = min(1 - LOGIT_CLIP, max(LOGIT_CLIP, p))
    return math.log(p / (1 - p))


def learning_rates(profiles: Sequence[Mapping[str, SkillState]], trained: Sequence[Mapping[str, float]],
                   prior_examples: float) -> dict[str, float]:
    """Per skill, the logit gain of p~ per training example, shrunk towards the run-wide rate.

    `profiles[j]` is round j's MSP (the student before round j's training); `trained[j]`
    counts round j's training examples labelled with each skill, for every finished round
    j < len(profiles) - 1. Round j's gain is profiles[j + 1] against profiles[j]. With no
    finished round every rate is 1 (only the prior speaks). Rates are never negative: a
    fall is noise or forgetting, not a reason to train a skill less than one never trained.
    """
    skills = set(profiles[-1]) if profiles else set()
    rounds = min(len(trained), len(profiles) - 1)
    if rounds <= 0:
        return dict.fromkeys(skills, 1.0)
    gain: dict[str, float] = dict.fromkeys(skills, 0.0)
    examples: dict[str, float] = dict.fromkeys(skills, 0.0)
    for j in range(rounds):
        for skill, n in trained[j].items():
            before, after = profiles[j].get(skill), profiles[j + 1].get(skill)
            if n > 0 and before is not None and after is not None and skill in gain:
                gain[skill] += _logit(above_floor(after)) - _logit(above_floor(before))
                examples[skill] += n
    total_n = sum(examples.values())
    overall = max(0.0, sum(gain.values()) / total_n) if total_n else 0.0
    return {s: max(0.0, (gain[s] + prior_examples * overall) / (examples[s] + prior_examples)) if
            examples[s] + prior_examples > 0 else 0.0 for s in skills}


def skill_weights(profiles: Sequence[Mapping[str, SkillState]], trained: Sequence[Mapping[str, float]],
                  prior_examples: float = 100.0, explore: float = 0.0) -> dict[str, float]:
    """w(s) = missing(s) * max(above_floor(s), explore) * rate(s) for the latest round's skills,
    normalised to sum to 1; empty when no skill is worth an example (the whole budget is then
    replay). `explore` > 0 gives a skill still at its floor a share, so its rate is measured."""
    if not profiles:
        return {}
    rates = learning_rates(profiles, trained, prior_examples)
    raw = {s: st.missing * max(above_floor(st), explore) * rates.get(s, 0.0) for s, st in profiles[-1].items()}
    total = sum(raw.values())
    return {s: w / total for s, w in sorted(raw.items()) if w > 0} if total > 0 else {}
