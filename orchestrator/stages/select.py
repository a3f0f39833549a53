"""STAT's step 5: the round's training set, selected from the pool (STAT-Sel, Skill-It,
embedding selection, uniform) or synthesized by the teacher (STAT-Syn), same budget for all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sgi.orchestrator import build
from sgi.orchestrator.stages.context import Context, ask_teacher, valid_labels
from sgi.orchestrator.stages.warmup import warmup_second_half
from sgi.skills import learnability, selection, synthesis
from sgi.skills.records import Item, SynthesisOutcome


class Request(NamedTuple):
    """What every strategy selects from: the round's missing pairs, its budget and seed."""

    ctx: Context
    round_: int
    pairs: Sequence[tuple[str, str]]
    budget: int
    seed: int
    embedder: Any


class Chosen(NamedTuple):
    examples: list  # selection.Selected, in training order
    note: str = ""  # shown after the counts (the learnability weights)


def build_train_set(ctx: Context, round_: int, embedder: Any = None) -> str:
    """STAT's step 5: the round's training set under the configured strategy, same budget for all."""
    cfg = ctx.cfg
    seed = cfg.seed * 1000 + round_
    request = Request(ctx, round_, ctx.store.missing_pairs(round_), cfg.train.budget, seed, embedder)
    strategy = "learnability" if cfg.loop.by_learnability else cfg.loop.strategy
    chosen = STRATEGIES[strategy](request)
    ctx.store.add_train_set(round_, cfg.loop.strategy, chosen.examples)
    reasons = defaultdict(int)
    for c in chosen.examples:
        reasons[c.reason] += 1
    counts = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    return f"{cfg.loop.strategy}: {len(chosen.examples)} examples ({counts})" + chosen.note


def _uniform(r: Request) -> Chosen:
    return Chosen(selection.uniform([i.item_id for i in r.ctx.store.items("pool")], budget=r.budget, seed=r.seed))


def _stat_sel(r: Request) -> Chosen:
    """The paper's STAT-Sel: k pool items per (difficult item, missing skill) pair."""
    by_skill = _by_skill(r.ctx, r.ctx.store.items("pool"))
    return Chosen(selection.stat_sel(r.pairs, by_skill, k=r.ctx.cfg.loop.k, budget=r.budget, seed=r.seed))


def _skill_it(r: Request) -> Chosen:
    rates = [{p.skill: p.missing_rate for p in r.ctx.store.profile(n)} for n in range(r.round_ + 1)]
    by_skill = _by_skill(r.ctx, r.ctx.store.items("pool"))
    return Chosen(selection.skill_it(rates, by_skill, eta=r.ctx.cfg.loop.eta, budget=r.budget, seed=r.seed))


def _stat_syn(r: Request) -> Chosen:
    """The paper's STAT-Syn: synthesized items per pair first, STAT-Sel on the grown pool for the rest."""
    ctx, loop = r.ctx, r.ctx.cfg.loop
    synthetic = synthesize(ctx, r.round_, synthesis.stat_syn_requests(r.pairs, per_pair=loop.syn_per_pair))
    grown = _by_skill(ctx, ctx.store.items("pool") + ctx.store.items("synthetic"))
    room = r.budget - len(synthetic)
    rest = selection.stat_sel(r.pairs, grown, k=loop.k, budget=room, seed=r.seed) if room > 0 else []
    return Chosen((synthetic + rest)[: r.budget])


def _stat_sel_syn(r: Request) -> Chosen:
    """STAT-Sel and STAT-Syn mixed, `loop.syn_share` of the budget from the latter."""
    sel = _stat_sel(r).examples
    syn = _stat_syn(r).examples
    share = 1 - r.ctx.cfg.loop.syn_share
    return Chosen(selection.mix(sel, syn, budget=r.budget, share_first=share))


def _by_learnability(r: Request) -> Chosen:
    examples, weights = _learnable_set(r.ctx, r.round_, r.pairs, r.budget, r.seed)
    return Chosen(examples, f"; learnability weights {weights}")


def _embed_sel(r: Request) -> Chosen:
    """The pool items nearest to each difficult item's question (no skills involved)."""
    store = r.ctx.store
    items = {i.item_id: i for i in store.items()}
    difficult = [item_id for item_id, _ in store.difficult(r.round_)]
    pool = [i.item_id for i in store.items("pool")]
    return Chosen(selection.embed_sel(
        difficult, r.embedder.encode([items[i].question for i in difficult]),
        pool, r.embedder.encode([items[i].question for i in pool]),
        k=r.ctx.cfg.loop.k, budget=r.budget, seed=r.seed,
    ))


# loop.strategy -> its selection; "learnability" stands for stat-sel and stat-syn under
# `loop.weighting: learnability` (the default), which weights skills by what can still be learnt
STRATEGIES: dict[str, Callable[[Request], Chosen]] = {
    "uniform": _uniform, "stat-sel": _stat_sel, "stat-syn": _stat_syn, "stat-sel+syn": _stat_sel_syn,
    "skill-it": _skill_it, "embed-sel": _embed_sel, "learnability": _by_learnability,
}


def _learnable_set(ctx: Context, round_: int, pairs: Sequence[tuple[str, str]], budget: int,
                   seed: int) -> tuple[list, str]:
    """STAT with learnability weights (`skills/learnability.py`): the weights from the profiles
    of rounds 0..r and the training sets of rounds < r, all in the store; stat-syn writes the
    targeted share's items first, spread over each skill's difficult items. Returns the set
    and the largest weights as text (logged as an event too)."""
    cfg, store = ctx.cfg, ctx.store
    weights = _learnability_weights(ctx, round_)
    shown = ", ".join(f"{s} {w:.2f}" for s, w in sorted(weights.items(), key=lambda kv: -kv[1])[:8])
    shown = shown or "none (every skill at its floor or mastered): all replay"
    store.log(round_, "select", f"learnability weights: {shown}")
    pool = store.items("pool")
    synthetic = []
    if cfg.loop.strategy == "stat-syn":
        targeted = budget - round(budget * cfg.loop.replay) if weights else 0
        counts = selection.allocate(weights, targeted)
        synthetic = synthesize(ctx, round_, synthesis.weighted_requests(pairs, counts))
    by_skill = _by_skill(ctx, pool + store.items("synthetic") if synthetic else pool)
    chosen = selection.weighted_sel(pairs, by_skill, [i.item_id for i in pool], weights, budget=budget,
                                    replay=cfg.loop.replay, seed=seed, synthetic=synthetic)
    return chosen, shown


def rl_prompts(ctx: Context, round_: int) -> list[selection.Selected]:
    """The RL round's prompts, steps x prompts_per_step of them from the pool: uniform (the
    baseline), or by the round's profile as the supervised rounds weight it (learnability
    weights under stat-sel / stat-syn's default, else each skill's missing count) with
    `loop.replay` of them uniform."""
    cfg, store = ctx.cfg, ctx.store
    rl = cfg.loop.rl
    budget, seed = rl.steps * rl.prompts_per_step, cfg.seed * 1000 + round_
    pool = store.items("pool")
    ids = [i.item_id for i in pool]
    if rl.prompts == "uniform":
        return selection.uniform(ids, budget=budget, seed=seed)
    if cfg.loop.by_learnability:
        weights = _learnability_weights(ctx, round_)
    else:
        states = store.skill_states(round_)
        total = sum(st.missing for st in states.values())
        weights = {s: st.missing / total for s, st in sorted(states.items()) if st.missing} if total else {}
    return selection.weighted_sel(store.missing_pairs(round_), _by_skill(ctx, pool), ids, weights, budget=budget,
                                  replay=cfg.loop.replay, seed=seed)


def _learnability_weights(ctx: Context, round_: int) -> dict[str, float]:
    """`learnability.skill_weights` from the store: the profiles of rounds 0..r and the
    training sets of rounds < r (so a resumed round computes the same weights), led, under
    `loop.warmup_rates`, by the warm-up's second half as one more measured round: its
    half-way student's probe accuracy and the examples it trained on after it."""
    store, loop = ctx.store, ctx.cfg.loop
    profiles = [store.skill_states(r) for r in range(round_ + 1)]
    trained: list[Mapping[str, float]] = [store.trained_per_skill(r) for r in range(round_)]
    if build.halfway_step(ctx.cfg):
        profiles.insert(0, store.halfway_skill_states())
        trained.insert(0, warmup_second_half(ctx))
    return learnability.skill_weights(profiles, trained, loop.prior_examples, loop.explore)


def _by_skill(ctx: Context, items: Sequence[Item]) -> dict[str, list[str]]:
    labels = ctx.store.labels()
    by_skill: dict[str, list[str]] = defaultdict(list)
    for item in items:
        for skill in labels.get(item.item_id, ()):
            by_skill[skill].append(item.item_id)
    return by_skill


def synthesize(ctx: Context, round_: int, requests: Sequence[tuple[str, str, int]]) -> list:
    """STAT-Syn: new items per request (skill, difficult item, how many), kept only when verified.

    Kept items join the store as split 'synthetic', labelled by the teacher, and stay
    there for later rounds beside the real pool (never replacing it). Each request is
    written when it finishes (its candidates last, as the marker that it is done), so a
    resumed stage asks the teacher only for the requests it has not answered.
    """
    cfg, store = ctx.cfg, ctx.store
    known = _known_questions(store)
    real_by_skill = _by_skill(ctx, store.items("pool"))
    items = {i.item_id: i for i in store.items("pool")}
    catalogue = store.catalogue()
    names = {s.name for s in catalogue}
    described = {s.name: s.description for s in catalogue}
    answered = {(r.skill, r.cause) for r in store.synthesized(round_)}
    with ctx.reporter.bar(f"round {round_}: synthesizing", len(requests)) as advance:
        for n, (skill, cause, count) in enumerate(requests):
            references = [items[i] for i in sorted(real_by_skill.get(skill, ()))[:3]]
            if references and (skill, cause) not in answered:
                seed = cfg.seed * 100_003 + round_ * 10_007 + n
                written = ctx.teacher.synthesize(skill, references, count, seed, avoid=known,
                                                 description=described.get(skill, ""))
                kept = synthesis.novel([c for c in written if synthesis.keep(c)], known)
                kept_ids = {c.item.item_id for c in kept}
                if kept:
                    store.add_items([c.item for c in kept])
                    new_items = [c.item for c in kept]
                    labels = ask_teacher(ctx, round_, "select", new_items, "label", new_items, catalogue)
                    store.add_labels(valid_labels(ctx, labels or [], names))
                store.add_synthesized(round_, [SynthesisOutcome(c, skill, cause, c.item.item_id in kept_ids)
                                               for c in written])
                known |= {c.item.question for c in kept}
            advance(1)
    order = {(skill, cause): n for n, (skill, cause, _) in enumerate(requests)}
    rows = store.synthesized(round_)
    kept_rows = sorted((r for r in rows if r.kept), key=lambda r: (order.get((r.skill, r.cause), len(order)), r.item_id))
    store.log(round_, "select", f"synthesized {len(rows)} candidates, kept {len(kept_rows)}")
    return [selection.Selected(r.item_id, r.skill, r.cause, "synthetic") for r in kept_rows]


def _known_questions(store: Any) -> set[str]:
    """Questions a new synthetic item must not repeat: the real items and every kept synthetic one.

    A synthetic item whose request was killed before its candidates were recorded is left
    out, so the redone request finds it novel again and keeps it exactly as before.
    """
    recorded = {r.item_id for r in store.synthesized(None) if r.kept}
    return {i.question for i in store.items() if i.split != "synthetic" or i.item_id in recorded}
