"""Training sets for a round: STAT-Sel (paper rule or learnability-weighted), a Skill-It-style
mixture, and the uniform and Embed-Sel baselines.

Every builder returns exactly `budget` examples (steps x batch size), so methods are
compared on the same amount of training, and is deterministic for a seed:

    pairs = [(d.item_id, s) for d in diagnoses for s in d.skills]
    chosen = stat_sel(pairs, pool_by_skill, k=5, budget=steps * batch, seed=round_seed)

Budget rule shared by all builders: the method's own picks come first, de-duplicated
(an item picked twice is kept once, with its first cause). More picks than the budget:
a seeded random subset of them, in pick order. Fewer: the rest is filled ("fill"),
with fresh items first and repeats only once the fill's pool is used up; a training set
is a list of examples, so a repeated item is simply seen twice.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selected:
    """One training example of the round and why it is there."""

    item_id: str
    skill: str  # the skill it was chosen for ("" for uniform / embed-sel)
    cause: str  # the difficult item that caused it ("" for uniform, mixture and fill)
    reason: str  # "pair" | "fill" | "uniform" | "embed" | "synthetic" | "mixture" | "targeted" | "replay"


def stat_sel(
    pairs: Sequence[tuple[str, str]],
    pool_by_skill: Mapping[str, Sequence[str]],
    *,
    k: int = 5,
    budget: int,
    seed: int,
) -> list[Selected]:
    """STAT-Sel: k pool items per (difficult item id, missing skill) pair.

    Each pair samples k items labelled with its skill (all of them when fewer), so a
    skill missing on many items gets many examples: the MSP frequency is the weight.
    The fill draws a skill in proportion to its number of pairs, then an item of it.
    Pairs whose skill has no pool items add nothing; when no pair can add anything
    the whole set falls back to `uniform` over every pool item given.
    """
    _check(budget=budget, k=k)
    rng = random.Random(seed)
    picked: dict[str, Selected] = {}
    for cause, skill in pairs:
        pool = list(dict.fromkeys(pool_by_skill.get(skill, ())))
        for item_id in rng.sample(pool, min(k, len(pool))):
            picked.setdefault(item_id, Selected(item_id, skill, cause, "pair"))
    if not picked:
        return uniform(list(dict.fromkeys(i for ids in pool_by_skill.values() for i in ids)), budget=budget, seed=seed)

    weights = Counter(skill for _, skill in pairs if pool_by_skill.get(skill))
    skills = sorted(weights)

    def fill(n: int) -> list[Selected]:
        used = set(picked)
        decks = {s: _Deck(pool_by_skill[s], rng, used) for s in skills}
        drawn = rng.choices(skills, weights=[weights[s] for s in skills], k=n)
        return [Selected(decks[s].draw(), s, "", "fill") for s in drawn]

    return _fit(list(picked.values()), budget, rng, fill)


def weighted_sel(
    pairs: Sequence[tuple[str, str]],
    pool_by_skill: Mapping[str, Sequence[str]],
    pool_ids: Sequence[str],
    weights: Mapping[str, float],
    *,
    budget: int,
    replay: float,
    seed: int,
    synthetic: Sequence[Selected] = (),
) -> list[Selected]:
    """Learnability-aware STAT: the budget split over skills by `weights`, plus uniform replay.

    `replay` of the budget is drawn uniformly from `pool_ids` (reason "replay", against
    forgetting); the rest goes to the weighted skills that have items, by largest
    remainder of its size times the weight (`skills/learnability.py` says how the weights
    come about). A skill's share takes its `synthetic` items first (STAT-Syn), then pool
    items labelled with it, fresh ones first; each is stored with the skill and, in turn,
    one of the difficult items that named it (reason "targeted"). No weighted skill with
    items: the whole budget is replay.
    """
    _check(budget=budget)
    if not 0.0 <= replay <= 1.0:
        raise ValueError(f"replay share must be in [0, 1], got {replay}")
    if not pool_ids:
        raise ValueError("cannot build a training set: the training pool is empty")
    written: dict[str, list[Selected]] = {}
    for item in synthetic:
        written.setdefault(item.skill, []).append(item)
    usable = {s: w for s, w in weights.items() if pool_by_skill.get(s) or written.get(s)}
    n_replay = round(budget * replay) if allocate(usable, 1) else budget
    counts = allocate(usable, budget - n_replay)
    causes: dict[str, list[str]] = {}
    for cause, skill in dict.fromkeys(pairs):
        causes.setdefault(skill, []).append(cause)
    rng = random.Random(seed)
    used = {item.item_id for items in written.values() for item in items}
    chosen: list[Selected] = []
    for skill, n in counts.items():
        own = written.get(skill, [])[:n]
        chosen += own
        deck = _Deck(pool_by_skill.get(skill) or [i.item_id for i in own], rng, used)
        reasons = causes.get(skill, [""])
        chosen += [Selected(deck.draw(), skill, reasons[k % len(reasons)], "targeted") for k in range(n - len(own))]
    replay_deck = _Deck(pool_ids, rng, used)
    return chosen + [Selected(replay_deck.draw(), "", "", "replay") for _ in range(n_replay)]


def allocate(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """`total` examples split over the skills of positive weight (in name order) by largest
    remainder of total * w / sum(w); empty when no weight is positive."""
    skills = sorted(s for s, w in weights.items() if w > 0)
    if not skills or total <= 0:
        return {}
    shares = np.array([weights[s] for s in skills], dtype=float)
    counts = _largest_remainder(shares / shares.sum() * total, total)
    return {s: n for s, n in zip(skills, counts) if n > 0}


def skill_it(
    missing_rates: Sequence[Mapping[str, float]],
    pool_by_skill: Mapping[str, Sequence[str]],
    *,
    eta: float,
    budget: int,
    seed: int,
) -> list[Selected]:
    """A Skill-It-style skill mixture (Chen et al. 2023) with the MSP in place of validation loss.

    Multiplicative weights from a uniform start, one update per profiled round so far
    with that round's missing rate m_r(s): w(s) is proportional to exp(eta * sum_r m_r(s)),
    over the skills that have pool items (a skill absent from a round's MSP counts 0 there).
    The weights follow from the stored MSPs alone, so a resumed run rebuilds the same set.
    The budget is split by largest remainder of budget * w(s); each skill's share is drawn
    from its items, fresh items first (an item is not drawn twice by two skills until the
    pools run dry).
    """
    _check(budget=budget)
    if eta <= 0:
        raise ValueError(f"skill-it eta must be > 0, got {eta}")
    skills = sorted(s for s, ids in pool_by_skill.items() if ids)
    if not skills:
        raise ValueError("cannot build a training set: no skill has pool items")
    weights = skill_weights(missing_rates, skills, eta)
    counts = _largest_remainder(np.array([weights[s] for s in skills]) * budget, budget)
    rng = random.Random(seed)
    used: set[str] = set()
    chosen = []
    for skill, n in zip(skills, counts):
        deck = _Deck(pool_by_skill[skill], rng, used)
        chosen += [Selected(deck.draw(), skill, "", "mixture") for _ in range(n)]
    return chosen


def skill_weights(missing_rates: Sequence[Mapping[str, float]], skills: Sequence[str], eta: float) -> dict[str, float]:
    """The mixture `skill_it` draws by: skill -> weight (sums to 1)."""
    scores = np.array([eta * sum(rates.get(s, 0.0) for rates in missing_rates) for s in skills])
    weights = np.exp(scores - scores.max())
    return dict(zip(skills, (weights / weights.sum()).tolist()))


def uniform(pool_ids: Sequence[str], *, budget: int, seed: int) -> list[Selected]:
    """`budget` draws over the pool: without replacement until it is used up, then again."""
    _check(budget=budget)
    if not pool_ids:
        raise ValueError("cannot build a training set: the training pool is empty")
    deck = _Deck(pool_ids, random.Random(seed), set())
    return [Selected(deck.draw(), "", "", "uniform") for _ in range(budget)]


def embed_sel(
    difficult_ids: Sequence[str],
    difficult_vectors: np.ndarray,  # (n_difficult, dim), unit-norm rows
    pool_ids: Sequence[str],
    pool_vectors: np.ndarray,  # (n_pool, dim), unit-norm rows
    *,
    k: int = 5,
    budget: int,
    seed: int,
) -> list[Selected]:
    """Embed-Sel baseline: the k nearest pool items (cosine) to each difficult item;
    ties go to the earlier pool item. The fill is uniform over the pool."""
    _check(budget=budget, k=k)
    difficult_vectors, pool_vectors = np.atleast_2d(difficult_vectors), np.atleast_2d(pool_vectors)
    if len(difficult_ids) != len(difficult_vectors) or len(pool_ids) != len(pool_vectors):
        raise ValueError(
            f"embed_sel: {len(difficult_ids)} difficult ids for {len(difficult_vectors)} vectors, "
            f"{len(pool_ids)} pool ids for {len(pool_vectors)} vectors; pass one vector per id"
        )
    if not difficult_ids:
        return uniform(pool_ids, budget=budget, seed=seed)
    similarity = difficult_vectors @ pool_vectors.T  # (n_difficult, n_pool)
    picked: dict[str, Selected] = {}
    for cause, row in zip(difficult_ids, similarity):
        for j in np.argsort(-row, kind="stable")[:k]:
            picked.setdefault(pool_ids[j], Selected(pool_ids[j], "", cause, "embed"))
    rng = random.Random(seed)
    deck = _Deck(pool_ids, rng, set(picked))
    return _fit(list(picked.values()), budget, rng, lambda n: [Selected(deck.draw(), "", "", "fill") for _ in range(n)])


def mix(
    first: Sequence[Selected], second: Sequence[Selected], *, budget: int, share_first: float = 0.5
) -> list[Selected]:
    """`budget` examples, `share_first` of them from the head of `first`, the rest from
    the head of `second` (STAT-Sel + STAT-Syn). When one side is short, the other
    makes up the difference; fewer than `budget` only when both together are short."""
    _check(budget=budget)
    if not 0.0 <= share_first <= 1.0:
        raise ValueError(f"mix share_first must be in [0, 1], got {share_first}")
    n_first = min(round(budget * share_first), len(first))
    n_second = min(budget - n_first, len(second))
    n_first = min(budget - n_second, len(first))
    return list(first[:n_first]) + list(second[:n_second])


# --- helpers ----------------------------------------------------------------------------


class _Deck:
    """Draws ids without replacement, skipping ids already `used` (shared between decks so
    a multi-label item is not drawn twice by two skills); once empty, reshuffles every id
    and draws again, repeats allowed."""

    def __init__(self, ids: Iterable[str], rng: random.Random, used: set[str]) -> None:
        self.ids, self.rng, self.used = list(dict.fromkeys(ids)), rng, used
        self.cards = rng.sample(self.ids, len(self.ids))
        self.fresh = True

    def draw(self) -> str:
        while self.fresh and self.cards and self.cards[-1] in self.used:
            self.cards.pop()
        if not self.cards:
            self.fresh = False
            self.cards = self.rng.sample(self.ids, len(self.ids))
        card = self.cards.pop()
        self.used.add(card)
        return card


def _fit(
    picked: list[Selected], budget: int, rng: random.Random, fill: Callable[[int], list[Selected]]
) -> list[Selected]:
    """Exactly `budget`: a seeded subset of the picks (kept in pick order), or all picks and a fill."""
    if len(picked) >= budget:
        return [picked[i] for i in sorted(rng.sample(range(len(picked)), budget))]
    return picked + fill(budget - len(picked))


def _largest_remainder(shares: np.ndarray, total: int) -> list[int]:
    """Integer counts summing to `total`, each the floor of its share plus one for the largest remainders."""
    counts = np.floor(shares).astype(int)
    for i in np.argsort(-(shares - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def _check(*, budget: int, k: int = 1) -> None:
    if budget < 1:
        raise ValueError(f"training budget must be >= 1 example (steps x batch size), got {budget}")
    if k < 1:
        raise ValueError(f"k (items per difficult item / pair) must be >= 1, got {k}")
