"""System-1 / System-2 routing: which items the fast student keeps and which it escalates.

Every router scores an item by how likely System 1 is to be right, and escalates the
items scoring below a threshold:

- `confidence`: the student's own confidence feature (FS-GEN's rule: top-1 probability;
  `min_prob` by default, `mean_prob` or the top-1/top-2 `margin` as options);
- `skill`: the probe accuracy of the item's weakest labelled skill (decided before the
  student answers, so an escalated item costs System 2 only);
- `skill+confidence`: the product of the two (both estimate a chance of being right).

A fourth, `token` (FS-GEN's token-level collaboration, `workers.collab`), routes each
token rather than each item: the larger model chooses the tokens where the student's top-1
probability is below t, and its escalation is the mean share of an answer's tokens it chose.

A fifth, `learned` (`skills.learned_router`), is a logistic regression over all of those
signals at once, fitted on the probe split.

The threshold is chosen on the probe split (the lowest escalation that reaches the
target share of System 2's accuracy) and only then applied to the test split.

Routers are measured as RouteLLM (Ong et al. 2024) measures them (`gap_metrics`): PGR, the
share of the gap between System 1 and System 2 a composition recovers; APGR, its average
over escalation rates 0..1; CPT(x), the escalation needed to recover x of the gap. Two
references come from the same answers: `random` (PGR = escalation, APGR 0.5) and `oracle`
(escalates exactly the items System 1 gets wrong and System 2 gets right).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ROUTERS = ("confidence", "skill", "skill+confidence", "learned")
REFERENCES = ("random", "oracle")  # measured beside the routers, never used to answer
FEATURES = ("min_prob", "mean_prob", "margin")
CPT_SHARES = (0.5, 0.8, 0.95)


@dataclass(frozen=True)
class Routed:
    """One item with both systems' outcomes and what the routers look at."""

    item_id: str
    s1_correct: bool
    s2_correct: bool
    confidence: float  # the chosen System-1 confidence feature, in [0, 1]
    skill_accuracy: float  # probe accuracy of the item's weakest labelled skill (1.0 if unknown)
    s1_seconds: float
    s2_seconds: float
    learned: float = 1.0  # the learned router's estimate (out of fold on probe), 1.0 until fitted


@dataclass(frozen=True)
class TokenRouted:
    """One answer the two models decoded together at one threshold (FS-GEN)."""

    item_id: str
    correct: bool
    n_tokens: int
    large_tokens: int  # of n_tokens, how many the larger model chose
    seconds: float

    @property
    def large_share(self) -> float:
        return self.large_tokens / self.n_tokens if self.n_tokens else 0.0


@dataclass(frozen=True)
class Outcome:
    threshold: float
    escalation: float  # share of items sent to System 2
    accuracy: float
    seconds: float  # mean latency per item


def score(router: str, row: Routed) -> float:
    """The router's estimate that System 1 answers `row` correctly."""
    if router == "confidence":
        return row.confidence
    if router == "skill":
        return row.skill_accuracy
    if router == "skill+confidence":
        return row.confidence * row.skill_accuracy
    if router == "learned":
        return row.learned
    if router == "oracle":  # what it would escalate: only the items System 2 fixes, never one it breaks
        return 0.5 if row.s1_correct == row.s2_correct else float(row.s1_correct)
    raise ValueError(f"router {router!r} is not one of {ROUTERS}")


def escalates(router: str, row: Routed, threshold: float) -> bool:
    return score(router, row) < threshold


def outcome(router: str, rows: Sequence[Routed], threshold: float) -> Outcome:
    """Accuracy, escalation rate and mean latency of the composed solver at `threshold`.

    A confidence-based decision needs System 1's answer first (its latency is always
    paid); the skill router decides from the labels alone.
    """
    if not rows:
        return Outcome(threshold, 0.0, 0.0, 0.0)
    up = [escalates(router, r, threshold) for r in rows]
    correct = sum(r.s2_correct if e else r.s1_correct for r, e in zip(rows, up))
    seconds = sum(latency(router, r, e) for r, e in zip(rows, up))
    return Outcome(threshold, sum(up) / len(rows), correct / len(rows), seconds / len(rows))


def latency(router: str, row: Routed, escalated: bool) -> float:
    """One item's latency under the router's decision."""
    if not escalated:
        return row.s1_seconds
    return row.s2_seconds if router == "skill" else row.s1_seconds + row.s2_seconds


def thresholds(router: str, rows: Sequence[Routed]) -> list[float]:
    """Every threshold that changes a decision: 0 (escalate nothing), each distinct score
    just above itself, and above 1 (escalate everything)."""
    cuts = sorted({score(router, r) for r in rows})
    return [0.0] + [c + 1e-9 for c in cuts if 0.0 <= c < 1.0] + [1.0 + 1e-9]


def grid(router: str, rows: Sequence[Routed], points: int = 21) -> list[float]:
    """About `points` thresholds spread evenly over escalation rates 0..1 (for plotting)."""
    ranked = sorted(score(router, r) for r in rows)
    if not ranked:
        return [0.0]
    picks = {ranked[min(len(ranked) - 1, round(k * len(ranked) / (points - 1)))] for k in range(points - 1)}
    return sorted({0.0, *(p + 1e-9 for p in picks if p < 1.0), 1.0 + 1e-9})


def curve(router: str, rows: Sequence[Routed], cuts: Sequence[float]) -> list[Outcome]:
    """The composed solver at each threshold, least escalation first."""
    return sorted((outcome(router, rows, t) for t in cuts), key=lambda o: (o.escalation, o.threshold))


def choose_threshold(router: str, probe: Sequence[Routed], target: float) -> Outcome:
    """On the probe split: the lowest escalation whose accuracy reaches `target` x System 2's
    accuracy; if none does, the most accurate threshold (least escalation among ties)."""
    s2 = sum(r.s2_correct for r in probe) / len(probe) if probe else 0.0
    return pick(curve(router, probe, thresholds(router, probe)), target * s2)


def pick(points: Sequence[Outcome], accuracy: float) -> Outcome:
    """The least escalation reaching `accuracy`; if none does, the most accurate point
    (least escalation among ties). `points` are sorted by escalation."""
    reaching = [p for p in points if p.accuracy >= accuracy]
    if reaching:
        return reaching[0]
    return max(points, key=lambda p: (p.accuracy, -p.escalation))


def token_outcome(threshold: float, rows: Sequence[TokenRouted]) -> Outcome:
    """The token-level composition at one threshold: its escalation is the mean share of
    an answer's tokens the larger model chose."""
    if not rows:
        return Outcome(threshold, 0.0, 0.0, 0.0)
    n = len(rows)
    return Outcome(threshold, sum(r.large_share for r in rows) / n, sum(r.correct for r in rows) / n,
                   sum(r.seconds for r in rows) / n)


@dataclass(frozen=True)
class GapMetrics:
    """RouteLLM's measures of one router on one split; None where System 2 is no better than
    System 1 (there is no gap to recover)."""

    router: str
    system1_accuracy: float
    system2_accuracy: float
    apgr: float | None  # PGR averaged over escalation rates 0..1 (random: 0.5)
    cpt: dict[float, float | None]  # share of the gap -> escalation needed to recover it (random: the share)


def pgr(accuracy: float, s1: float, s2: float) -> float | None:
    """Performance gap recovered: 0 at System 1's accuracy, 1 at System 2's."""
    return (accuracy - s1) / (s2 - s1) if s2 > s1 else None


def full_curve(router: str, rows: Sequence[Routed]) -> list[tuple[float, float]]:
    """(escalation, accuracy) at every threshold that changes a decision, from escalating
    nothing to everything; tied scores move together (their average over tie orders lies
    on the straight line between the two points, which is how the curve is read)."""
    if router == "random":  # the expectation over random orders: a straight line
        s1, s2 = _accuracies(rows)
        return [(0.0, s1), (1.0, s2)]
    points = {o.escalation: o.accuracy for o in curve(router, rows, thresholds(router, rows))}
    return sorted(points.items())  # thresholds escalating the same items give one point


def gap_metrics(router: str, rows: Sequence[Routed], shares: Sequence[float] = CPT_SHARES) -> GapMetrics:
    """APGR (trapezoids over escalation 0..1) and CPT(x) (the first crossing of
    s1 + x (s2 - s1), read between curve points as RouteLLM reads it) of `router` on `rows`."""
    s1, s2 = _accuracies(rows)
    if s2 <= s1 or not rows:
        return GapMetrics(router, s1, s2, None, dict.fromkeys(shares))
    points = full_curve(router, rows)
    area = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(points, points[1:]))
    return GapMetrics(router, s1, s2, (area - s1) / (s2 - s1), {x: _crossing(points, s1 + x * (s2 - s1))
                                                               for x in shares})


def _crossing(points: Sequence[tuple[float, float]], accuracy: float) -> float | None:
    if points[0][1] >= accuracy - 1e-12:
        return points[0][0]
    for (e0, a0), (e1, a1) in zip(points, points[1:]):
        if a1 >= accuracy - 1e-12:
            return e0 + (e1 - e0) * (accuracy - a0) / (a1 - a0)
    return None


def _accuracies(rows: Sequence[Routed]) -> tuple[float, float]:
    n = len(rows) or 1
    return sum(r.s1_correct for r in rows) / n, sum(r.s2_correct for r in rows) / n
