"""The rows the store's reads return and its writers take, with their fields named (they are
still tuples, so a row unpacks as before). One class per query or table; the field order is
the query's column order, or the table's after the columns a writer is given as arguments."""

from __future__ import annotations

from typing import NamedTuple


class LedgerRow(NamedTuple):
    round: int
    stage: str
    status: str
    seconds: float | None
    detail: str | None


class AttemptRow(NamedTuple):
    item_id: str
    sample: int  # 0: the greedy answer; 1..k: samples
    output: str
    extracted: str
    correct: bool
    n_tokens: int
    mean_prob: float
    min_prob: float


class ProfileRow(NamedTuple):
    """A skill's line of a round's Missing-Skill-Profile."""

    skill: str
    attempts: int
    correct: int
    missing: int
    missing_rate: float
    share: float
    accuracy: float
    floor: float


class TrainRow(NamedTuple):
    item_id: str
    question: str
    answer: str
    skill: str
    cause: str  # the difficult item whose missing skill chose it ('' for replay and baselines)
    reason: str


class RoundSummary(NamedTuple):
    round: int
    test_accuracy: float | None
    weakest_accuracy: float | None
    general_accuracy: float | None
    train_examples: int
    seconds: float | None


class SkillEval(NamedTuple):
    skill: str
    items: int
    correct: int
    accuracy: float


class SynthesizedRow(NamedTuple):
    skill: str
    cause: str
    item_id: str
    kept: bool


class TokenRow(NamedTuple):
    threshold: float
    item_id: str
    split: str
    correct: bool
    n_tokens: int
    large_tokens: int
    seconds: float


class ComposeRow(NamedTuple):
    """What the routers read per item: both systems' outcomes and System 1's signals."""

    item_id: str
    split: str
    s1_correct: bool
    s2_correct: bool
    confidence: float
    weakest_accuracy: float  # probe accuracy of the item's weakest labelled skill
    s1_seconds: float
    s2_seconds: float
    s1_tokens: int
    s2_tokens: int


class SignalRow(NamedTuple):
    """What the learned router reads of one System-1 answer."""

    item_id: str
    split: str
    min_prob: float | None
    mean_prob: float | None
    margin: float | None
    n_tokens: int
    question_chars: int
    skills: list[str]


class MetricsRow(NamedTuple):
    """RouteLLM's measures of one router (or reference) on one split of a round."""

    round: int
    router: str
    split: str
    system1_accuracy: float
    system2_accuracy: float
    apgr: float | None
    cpt50: float | None
    cpt80: float | None
    cpt95: float | None


class ComposeSummary(NamedTuple):
    round: int
    router: str
    system2: str
    items: int
    system1_accuracy: float
    system2_accuracy: float
    composed_accuracy: float
    escalation: float
    system1_seconds: float
    system2_seconds: float
    composed_seconds: float
    threshold: float | None


class CurvePoint(NamedTuple):
    round: int
    router: str
    split: str
    threshold: float
    escalation: float
    accuracy: float
    seconds: float
    chosen: bool


class TeacherUsage(NamedTuple):
    round: int
    stage: str
    template: str
    calls: int
    errors: int
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float | None


class RLStep(NamedTuple):
    step: int
    reward: float  # mean over the step's completions: correct + format_weight x format
    reward_std: float | None
    correct: float | None  # share the task's checker accepted
    format: float | None  # share that were the answer alone
    kl: float | None  # from the model RL started from
    loss: float | None
    completion_tokens: float | None  # mean completion length


# What the writers take (each after the arguments it is called with: round, solver, ...).


class DifficultyRow(NamedTuple):
    item_id: str
    difficult: bool
    reason: str
    agreement: int  # samples that agreed with the greedy answer


class SolutionRow(NamedTuple):
    """One solver's answer to one item (System 1 or 2), for `add_solutions`."""

    item_id: str
    output: str
    extracted: str
    correct: bool
    n_tokens: int
    seconds: float
    mean_prob: float | None  # System 1's confidence signals; None for System 2
    min_prob: float | None
    margin: float | None


class TokenSolutionRow(NamedTuple):
    """One item decoded by the student and the larger model together, for `add_token_solutions`."""

    item_id: str
    output: str
    extracted: str
    correct: bool
    n_tokens: int
    large_tokens: int  # of n_tokens, chosen by the larger model
    seconds: float


class RouteRow(NamedTuple):
    """Where a router sent one test item, and why, for `add_routes`."""

    router: str
    item_id: str
    system2: str  # the System-2 solver's key
    s2_round: int  # where its answers are stored
    system: int  # 1 or 2
    reason: str
    score: float
    threshold: float
    correct: bool
    seconds: float
    tokens: int
