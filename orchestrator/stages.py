"""The stages of a round. Each reads its inputs from the store and writes its outputs there.

Reading inputs back from the store (not from the previous stage's return value) is what
lets a killed run resume at any stage. Work is written per batch, so a stage that was
interrupted redoes at most one batch, and idempotent inserts make that harmless.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sgi.orchestrator.answers import AnswerCache
from sgi.orchestrator.config import RunConfig
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.rows import ComposeRow
from sgi.orchestrator.store import ScoredAttempt, Store
from sgi.skills import checks
from sgi.skills.difficulty import judge
from sgi.skills.interfaces import Task, Teacher, TeacherOutputError
from sgi.skills.prompts import skill_exemplars, student_prompt
from sgi.skills.records import Case, Diagnosis, Generation, Item, Label, Skill
from sgi.skills.runs import SETUP_ROUND, StoreError, round_label
from sgi.skills.solvers import system2_label



@dataclass
class Context:
    """What every stage may use: the config, the task, the engines and the store."""

    cfg: RunConfig
    task: Task
    store: Store  # or a Remote to the store actor, which answers the same methods
    teacher: Teacher  # or a Remote to the teacher actor
    reporter: Reporter


def load_task(ctx: Context) -> str:
    items = ctx.task.load_items()
    if not items:
        raise StoreError(f"task {ctx.task.name!r} produced no items")
    ctx.store.add_items(items)
    skipped = getattr(ctx.task, "skipped", [])  # file tasks with on_bad_row: skip
    for where, problem in skipped:
        ctx.store.log(SETUP_ROUND, "task", f"skipped row {where}: {problem}")
    counts = ", ".join(f"{split} {n}" for split, n in ctx.store.split_counts().items())
    return counts + (f"; {len(skipped)} bad rows skipped (see events)" if skipped else "")


def label_items(ctx: Context) -> str:
    """The teacher's catalogue and 1-5 skills per item (or the labels supplied with the data).

    The catalogue is written first, then labels per batch; a resumed stage labels only the
    items that have none yet.
    """
    items = ctx.store.items()
    if all(item.skills for item in items):
        names = sorted({s for item in items for s in item.skills})
        catalogue = [Skill(name, "supplied with the data") for name in names]
        labels = [Label(item.item_id, s) for item in items for s in item.skills]
        ctx.store.add_skills(catalogue, "supplied")
        ctx.store.add_labels(_valid_labels(ctx, labels, set(names)))
    else:
        catalogue = ctx.store.catalogue()
        if not catalogue:
            ctx.reporter.note(f"  building the skill catalogue from {len(items)} items")
            catalogue = ask_teacher(ctx, SETUP_ROUND, "label", items, "build_catalogue", items)
            if not catalogue:  # nothing can be labelled without one: stop here, resumable
                raise TeacherOutputError("the teacher could not build a skill catalogue (the reason is in the "
                                         "run's events: sgi status); `sgi resume` asks again")
            ctx.store.add_skills(catalogue, ctx.cfg.teacher.kind)
        names = {s.name for s in catalogue}
        done = set(ctx.store.labels())
        todo = [item for item in items if item.item_id not in done]
        with ctx.reporter.bar("labelling items", len(items)) as advance:
            advance(len(items) - len(todo))
            for batch in _batches(todo, ctx.cfg.teacher.batch_size):
                labels = ask_teacher(ctx, SETUP_ROUND, "label", batch, "label", batch, catalogue)
                ctx.store.add_labels(_valid_labels(ctx, labels or [], names))
                advance(len(batch))
    labelled = ctx.store.labels()
    unlabelled = len(items) - len(labelled)
    n_labels = sum(len(v) for v in labelled.values())
    return f"{len(catalogue)} skills, {n_labels} labels" + (f", {unlabelled} items unlabelled" if unlabelled else "")


def ask_teacher(ctx: Context, round_: int, stage: str, items: Sequence[Item], method: str, *args: Any) -> Any:
    """`ctx.teacher.<method>(*args)`, retried while its output is unusable.

    After `teacher.max_retries` retries the batch is given up: an event names its items
    and the error, and None is returned so the stage goes on without them (they stay
    unlabelled or undiagnosed) instead of crashing the run.
    """
    for attempt in range(ctx.cfg.teacher.max_retries + 1):
        try:
            return getattr(ctx.teacher, method)(*args)
        except TeacherOutputError as err:
            problem = f"{err}"
    ids = ", ".join(i.item_id for i in items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
    ctx.store.log(round_, stage, f"teacher error after {attempt + 1} tries on {ids}: {problem}")
    return None


def _valid_labels(ctx: Context, labels: Sequence[Label], names: set[str]) -> list[Label]:
    """The teacher's labels that checks.check_labels keeps; what it drops goes to the events."""
    checked = checks.check_labels(labels, names)
    for note in checked.notes:
        ctx.store.log(SETUP_ROUND, "label", note)
    return checked.kept


def warmup_examples(ctx: Context) -> list[tuple[str, str]]:
    """Uniform sample of the pool, budget = steps x batch size, fixed by the seed."""
    w = ctx.cfg.warmup
    pool = ctx.store.items("pool")
    rng = random.Random(ctx.cfg.seed)
    chosen = [rng.choice(pool) for _ in range(w.steps * w.batch_size)]
    return [(item.question, item.answer) for item in chosen]


def warmup_dir(base_model: Path, examples: list[tuple[str, str]], args: dict[str, Any], cache: Path) -> Path:
    """Cache folder of a warm-up, keyed by everything that changes its weights."""
    key = json.dumps({"model": str(base_model), "examples": examples, "args": args}, sort_keys=True)
    return cache / "warmup" / hashlib.sha256(key.encode()).hexdigest()[:16]


def answer_probe(ctx: Context, round_: int, student: Any, answers: AnswerCache | None = None) -> str:
    """Batched student answers on the probe split with confidences, scored, written per batch."""
    items = ctx.store.items("probe")
    samples = ctx.cfg.difficulty.samples if ctx.cfg.difficulty.consistency else 0
    done = ctx.store.attempted_ids(round_)
    answered = _answer(ctx, f"round {round_}: student answers", items, done, student, samples,
                       lambda scored, _: ctx.store.add_attempts(round_, scored), answers)
    detail = f"{len(items)} items, {len(items) - len(done)} answered now" + answered.cached_note()
    if answered.overhead is not None:
        detail += f" by {len(student.engines)} student actors ({answered.overhead:.1%} of their time not generating)"
    return detail


def evaluate(ctx: Context, round_: int, student: Any, answers: AnswerCache | None = None) -> str:
    """Greedy answers on the held-out test and general splits (round -1: the warm-up student)."""
    items = ctx.store.items("test") + ctx.store.items("general")
    done = ctx.store.evaluated_ids(round_)
    title = "warm-up student: held-out" if round_ == SETUP_ROUND else f"round {round_}: held-out eval"
    answered = _answer(ctx, title, items, done, student, 0, lambda scored, _: ctx.store.add_evals(round_, scored),
                       answers)
    row = next((r for r in ctx.store.round_summary() if r.round == round_), None)
    shown = (("test", row.test_accuracy), ("general", row.general_accuracy)) if row else ()
    scores = [f"{split} {acc:.3f}" for split, acc in shown if acc is not None]
    return (", ".join(scores) or f"{len(items)} items") + answered.cached_note()


class Answered(NamedTuple):
    cached: int  # answers taken from the warm-up student's cache
    overhead: float | None  # the student pool's orchestration overhead, when it has several engines

    def cached_note(self) -> str:
        return f" ({self.cached} from the warm-up student's answer cache)" if self.cached else ""


def _answer(ctx: Context, title: str, items: Sequence[Item], done: set[str], student: Any, samples: int,
            record: Any, answers: AnswerCache | None = None) -> Answered:
    """Answer `items` not in `done` in batches spread over the student pool; score and
    `record(scored, seconds per item)` each batch as it arrives (whole batches only).
    With `answers` (the warm-up student's cache), greedy answers given in an earlier run are
    taken from it, with the seconds they took then, and new ones are added to it.
    """
    todo = [item for item in items if item.item_id not in done]
    prompts = _prompts(ctx, todo)
    by_id = {i.item_id: i for i in todo}

    def scored(generations: Sequence[Generation]) -> list[ScoredAttempt]:
        out = []
        for g in generations:
            extracted = ctx.task.extract(by_id[g.item_id], g.text)
            out.append(ScoredAttempt(g, extracted, ctx.task.is_correct(by_id[g.item_id], extracted)))
        return out

    answers = answers if samples == 0 else None  # sampled answers are never cached
    hits: dict = {}
    with ctx.reporter.bar(title, len(items)) as advance:
        advance(len(items) - len(todo))
        if answers is not None:
            hits = answers.lookup([i.item_id for i in todo], prompts)
            for seconds, batch in itertools.groupby(sorted(hits.values(), key=lambda h: h.seconds), lambda h: h.seconds):
                generations = [h.generation for h in batch]  # one batch of the run that answered them
                record(scored(generations), seconds)
                advance(len(generations))
            todo, prompts = [i for i in todo if i.item_id not in hits], [p for i, p in zip(todo, prompts)
                                                                       if i.item_id not in hits]
        batch_size = ctx.cfg.student.batch_size
        batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        texts = [prompts[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        calls = [(([i.item_id for i in batch], text), {"samples": samples, "temperature": ctx.cfg.difficulty.temperature})
                 for batch, text in zip(batches, texts)]
        if not batches:
            return Answered(len(hits), None)  # nothing to answer: the student is not even loaded
        mark = student.mark()
        for n, seconds, generations in student.imap("generate", calls):
            record(scored(generations), seconds / len(batches[n]))
            if answers is not None:
                answers.add(texts[n], generations, seconds / len(batches[n]))
            advance(len(batches[n]))
    return Answered(len(hits), student.overhead(mark) if len(student.engines) > 1 else None)


def _prompts(ctx: Context, items: Sequence[Item]) -> list[str]:
    k = ctx.cfg.student.kshot
    if k == 0:
        return [student_prompt(i.question) for i in items]
    labels = ctx.store.labels()
    pool_by_skill: dict[str, list[Item]] = defaultdict(list)
    for p in ctx.store.items("pool"):
        for skill in labels.get(p.item_id, ()):
            pool_by_skill[skill].append(p)
    return [student_prompt(i.question, skill_exemplars(i, labels.get(i.item_id, ()), pool_by_skill, k)) for i in items]


def mark_difficult(ctx: Context, round_: int) -> str:
    by_item: dict[str, dict[int, tuple[str, bool]]] = defaultdict(dict)
    for a in ctx.store.attempts(round_):
        by_item[a.item_id][a.sample] = (a.extracted, a.correct)
    rows = []
    for item_id, samples in by_item.items():
        sampled = [extracted for s, (extracted, _) in samples.items() if s > 0]
        v = judge(samples[0][1], sampled, ctx.cfg.difficulty.min_agree)
        rows.append((item_id, v.difficult, v.reason, v.agreement))
    ctx.store.add_difficulty(round_, rows)
    return f"{sum(r[1] for r in rows)} of {len(rows)} difficult"


def diagnose(ctx: Context, round_: int) -> str:
    """The teacher names 1-3 catalogue skills each difficult item failed to apply."""
    difficult = ctx.store.difficult(round_)
    done = ctx.store.diagnosed_ids(round_)
    todo = [item_id for item_id, _ in difficult if item_id not in done]
    if not todo:
        return f"{len(difficult)} difficult items, nothing left to diagnose"
    items = {i.item_id: i for i in ctx.store.items()}
    labels = ctx.store.labels()
    greedy = {a.item_id: a for a in ctx.store.attempts(round_) if a.sample == 0}
    accuracy = ctx.store.skill_accuracy(round_)
    catalogue = ctx.store.catalogue()
    cases = [
        Case(items[i], output=greedy[i].output, extracted=greedy[i].extracted, skills=labels.get(i, ()))
        for i in todo
    ]
    with ctx.reporter.bar(f"round {round_}: diagnosing", len(difficult)) as advance:
        advance(len(difficult) - len(todo))
        for batch in _batches(cases, ctx.cfg.teacher.batch_size):
            diagnoses = ask_teacher(ctx, round_, "diagnose", [c.item for c in batch], "diagnose", batch, accuracy,
                                    catalogue)
            ctx.store.add_diagnoses(round_, _valid_diagnoses(ctx, round_, diagnoses or [], batch))
            advance(len(batch))
    return f"{len(difficult)} difficult items diagnosed"


def _valid_diagnoses(ctx: Context, round_: int, diagnoses: Sequence[Diagnosis], cases: Sequence[Case]) -> list[Diagnosis]:
    """The teacher's diagnoses that checks.check_diagnoses keeps; what it changed goes to the events."""
    checked = checks.check_diagnoses(diagnoses, {c.item.item_id: c.skills for c in cases})
    for note in checked.notes:
        ctx.store.log(round_, "diagnose", note)
    return checked.kept


def _batches(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]



def build_train_set(ctx: Context, round_: int, embedder: Any = None) -> str:
    """STAT's step 5: the round's training set under the configured strategy, same budget for all."""
    from sgi.skills import selection

    cfg, store = ctx.cfg, ctx.store
    strategy, budget, seed = cfg.loop.strategy, cfg.train.budget, cfg.seed * 1000 + round_
    pairs = store.missing_pairs(round_)
    real_by_skill = _by_skill(ctx, store.items("pool"))
    if strategy == "uniform":
        chosen = selection.uniform([i.item_id for i in store.items("pool")], budget=budget, seed=seed)
    elif strategy == "embed-sel":
        chosen = _embed_sel(ctx, round_, embedder, budget, seed)
    elif cfg.loop.by_learnability:  # stat-sel or stat-syn
        chosen, weights = _learnable_set(ctx, round_, pairs, budget, seed)
    elif strategy == "stat-sel":
        chosen = selection.stat_sel(pairs, real_by_skill, k=cfg.loop.k, budget=budget, seed=seed)
    elif strategy == "skill-it":
        rates = [{p.skill: p.missing_rate for p in store.profile(r)} for r in range(round_ + 1)]
        chosen = selection.skill_it(rates, real_by_skill, eta=cfg.loop.eta, budget=budget, seed=seed)
    else:  # stat-syn, stat-sel+syn
        from sgi.skills import synthesis

        synthetic = synthesize(ctx, round_, synthesis.stat_syn_requests(pairs, per_pair=cfg.loop.syn_per_pair))
        grown = _by_skill(ctx, store.items("pool") + store.items("synthetic"))
        room = budget - len(synthetic)
        rest = selection.stat_sel(pairs, grown, k=cfg.loop.k, budget=room, seed=seed) if room > 0 else []
        chosen = (synthetic + rest)[:budget]
        if strategy == "stat-sel+syn":
            sel = selection.stat_sel(pairs, real_by_skill, k=cfg.loop.k, budget=budget, seed=seed)
            chosen = selection.mix(sel, chosen, budget=budget, share_first=1 - cfg.loop.syn_share)
    store.add_train_set(round_, strategy, chosen)
    reasons = defaultdict(int)
    for c in chosen:
        reasons[c.reason] += 1
    detail = f"{strategy}: {len(chosen)} examples (" + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) + ")"
    return detail + (f"; learnability weights {weights}" if cfg.loop.by_learnability else "")


def _learnable_set(ctx: Context, round_: int, pairs: Sequence[tuple[str, str]], budget: int,
                   seed: int) -> tuple[list, str]:
    """STAT with learnability weights (`skills/learnability.py`): the weights from the profiles
    of rounds 0..r and the training sets of rounds < r, all in the store; stat-syn writes the
    targeted share's items first, spread over each skill's difficult items. Returns the set
    and the largest weights as text (logged as an event too)."""
    from sgi.skills import learnability, selection, synthesis

    cfg, store = ctx.cfg, ctx.store
    weights = learnability.skill_weights([store.skill_states(r) for r in range(round_ + 1)],
                                         [store.trained_per_skill(r) for r in range(round_)], cfg.loop.prior_examples)
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


def _by_skill(ctx: Context, items: Sequence[Item]) -> dict[str, list[str]]:
    labels = ctx.store.labels()
    by_skill: dict[str, list[str]] = defaultdict(list)
    for item in items:
        for skill in labels.get(item.item_id, ()):
            by_skill[skill].append(item.item_id)
    return by_skill


def _embed_sel(ctx: Context, round_: int, embedder: Any, budget: int, seed: int) -> list:
    from sgi.skills import selection

    items = {i.item_id: i for i in ctx.store.items()}
    difficult = [item_id for item_id, _ in ctx.store.difficult(round_)]
    pool = [i.item_id for i in ctx.store.items("pool")]
    return selection.embed_sel(
        difficult, embedder.encode([items[i].question for i in difficult]),
        pool, embedder.encode([items[i].question for i in pool]),
        k=ctx.cfg.loop.k, budget=budget, seed=seed,
    )


def synthesize(ctx: Context, round_: int, requests: Sequence[tuple[str, str, int]]) -> list:
    """STAT-Syn: new items per request (skill, difficult item, how many), kept only when verified.

    Kept items join the store as split 'synthetic', labelled by the teacher, and stay
    there for later rounds beside the real pool (never replacing it). Each request is
    written when it finishes (its candidates last, as the marker that it is done), so a
    resumed stage asks the teacher only for the requests it has not answered.
    """
    from sgi.skills import selection, synthesis

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
                    store.add_labels(_valid_labels(ctx, labels or [], names))
                store.add_synthesized(round_, [(c, skill, cause, c.item.item_id in kept_ids) for c in written])
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


def train(ctx: Context, round_: int, base: Path, out: Path, fit: Callable[..., dict[str, Any]]) -> str:
    """Fine-tune from the current checkpoint on the round's training set (LoRA by default),
    through `fit` (Engines.fit, the warm-up's path too).

    The trainer saves its state every `train.state_every` steps and continues from it, so
    a killed or stopped run resumes mid-training and ends with the same weights.
    """
    from sgi.orchestrator import build

    examples = [(row.question, row.answer) for row in ctx.store.train_set(round_)]
    metrics = fit(f"round {round_}: training steps", base, examples, out, build.train_args(ctx.cfg))
    ctx.store.add_checkpoint(round_, str(out / "merged"), str(base), metrics)
    return f"{metrics['steps']} steps on {len(examples)} examples, final loss {metrics['final_loss']:.3f}"


# --- compose: System 1 + System 2 -----------------------------------------------------------

def compose(ctx: Context, round_: int, system1: Any, system2: Any, s2_round: int, collab: Any = None,
            answers: AnswerCache | None = None) -> str:
    """The composed solver of round `round_`'s student: both systems answer the probe and
    test items, each router's threshold is chosen on probe and applied to test, and the
    routes and the accuracy-vs-escalation curves are written; with `collab` (a
    `TokenCollaboration`) the token router too. Resumable per batch."""
    from sgi.skills import routing

    cfg = ctx.cfg.compose
    items = compose_items(ctx, "probe") + compose_items(ctx, "test")
    done = ctx.store.solved_ids(round_, "system1")
    _answer(ctx, f"{round_label(round_, 'warm-up student')}: System 1 (student)", items, done, system1, 0,
            lambda scored, seconds: ctx.store.add_solutions(round_, "system1", [
                (a.generation.item_id, a.generation.text, a.extracted, a.correct, a.generation.n_tokens, seconds,
                 a.generation.mean_prob, a.generation.min_prob, a.generation.margin) for a in scored]), answers)
    key = system2_key(ctx.cfg)
    _solve_system2(ctx, items, system2, key, s2_round)
    rows = ctx.store.compose_rows(round_, s2_round, key, cfg.feature)
    by_split = defaultdict(list)
    tokens = {}
    for r in rows:
        by_split[r.split].append(routing.Routed(r.item_id, r.s1_correct, r.s2_correct, r.confidence,
                                                r.weakest_accuracy, r.s1_seconds, r.s2_seconds))
        tokens[r.item_id] = (r.s1_tokens, r.s2_tokens)
    probe, test = by_split["probe"], by_split["test"]
    if not probe or not test:
        raise StoreError(f"compose needs probe and test items answered by both systems (probe {len(probe)}, "
                         f"test {len(test)})")
    parts = []
    for router in cfg.routers:
        chosen = routing.choose_threshold(router, probe, cfg.target)
        ctx.store.add_routes(round_, [_route(router, r, chosen.threshold, cfg, key, s2_round, tokens[r.item_id])
                                      for r in test])
        # the chosen point first: a grid point at the same threshold is then the duplicate ignored
        curve = [(split, routing.outcome(router, rows_, chosen.threshold)) for split, rows_ in
                 (("probe", probe), ("test", test))]
        curve += [("probe", o) for o in routing.curve(router, probe, routing.grid(router, probe))]
        curve += [("test", o) for o in routing.curve(router, test, routing.grid(router, test))]
        ctx.store.add_compose_curve(round_, [
            (router, split, o.threshold, o.escalation, o.accuracy, o.seconds, o.threshold == chosen.threshold)
            for split, o in curve])
        at = routing.outcome(router, test, chosen.threshold)
        parts.append(f"{router} {at.accuracy:.3f} at {at.escalation:.0%}")
    if collab is not None:
        parts.append(_compose_tokens(ctx, round_, collab, items, rows))
    s1_acc = sum(r.s1_correct for r in test) / len(test)
    s2_acc = sum(r.s2_correct for r in test) / len(test)
    return (f"test: System 1 {s1_acc:.3f}, System 2 {system2_label(cfg.system2)} {s2_acc:.3f}; composed "
            + ", ".join(parts))


ALONE = float("inf")  # token_solutions' threshold for the larger model alone


def _compose_tokens(ctx: Context, round_: int, collab: Any, items: Sequence[Item], rows: Sequence[ComposeRow]) -> str:
    """FS-GEN's token router: the student and the larger model decode together at each
    configured threshold (the larger model alone once per run); the threshold is chosen on
    probe against the larger model's own probe accuracy, then applied to test."""
    from sgi.skills import routing

    key = token_model_key(ctx.cfg)
    for round_at, threshold in [(SETUP_ROUND, ALONE), *((round_, t) for t in ctx.cfg.compose.token.thresholds)]:
        _solve_tokens(ctx, items, collab, key, round_at, threshold)
    by_split: dict[str, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:  # t = 0: the student alone
        by_split[r.split][0.0].append(routing.TokenRouted(r.item_id, r.s1_correct, r.s1_tokens, 0, r.s1_seconds))
    for t in ctx.store.token_rows(round_, key):
        by_split[t.split][t.threshold].append(routing.TokenRouted(t.item_id, t.correct, t.n_tokens, t.large_tokens,
                                                                  t.seconds))
    points = {split: sorted((routing.token_outcome(t, r) for t, r in at.items()),
                            key=lambda o: (o.escalation, o.threshold)) for split, at in by_split.items()}
    alone = next(o for o in points["probe"] if o.threshold == ALONE)
    chosen = routing.pick(points["probe"], ctx.cfg.compose.target * alone.accuracy).threshold
    ctx.store.add_routes(round_, [_token_route(r, chosen, key) for r in by_split["test"][chosen]])
    ctx.store.add_compose_curve(round_, [("token", split, _curve_threshold(o.threshold), o.escalation, o.accuracy,
                                          o.seconds, o.threshold == chosen) for split, at in points.items() for o in at])
    at = next(o for o in points["test"] if o.threshold == chosen)
    return f"token {at.accuracy:.3f} at {at.escalation:.0%} of tokens (t = {chosen:g})"


def _solve_tokens(ctx: Context, items: Sequence[Item], collab: Any, key: str, round_: int, threshold: float) -> None:
    def solve(batch: Sequence[Item]) -> None:
        by_id = {i.item_id: i for i in batch}
        solved = collab.generate(list(by_id), _prompts(ctx, batch), threshold)
        answers = {s.item_id: ctx.task.extract(by_id[s.item_id], s.text) for s in solved}
        ctx.store.add_token_solutions(round_, key, threshold, [
            (s.item_id, s.text, answers[s.item_id], ctx.task.is_correct(by_id[s.item_id], answers[s.item_id]),
             s.n_tokens, s.large_tokens, s.seconds) for s in solved])

    label = "larger model alone" if threshold == ALONE else f"token-level with the larger model, t = {threshold:g}"
    _resumable(ctx, f"{round_label(round_, 'warm-up student')}: {label}", items, ctx.store.token_solved_ids(round_, key, threshold),
               solve)


def _curve_threshold(threshold: float) -> float:
    """The larger model alone is drawn as the other routers' "escalate everything" point (a
    finite number: the report's figures travel as JSON)."""
    return 1.0 + 1e-9 if threshold == ALONE else threshold


def _token_route(row: Any, threshold: float, key: str) -> tuple:
    if threshold == ALONE:
        reason = "the larger model alone"
    elif threshold == 0:
        reason = "the student alone"
    else:
        reason = f"{row.large_tokens} of {row.n_tokens} tokens from the larger model (student top-1 < {threshold:g})"
    return ("token", row.item_id, key, SETUP_ROUND, 2 if row.large_tokens else 1, reason, 1 - row.large_share,
            threshold, row.correct, row.seconds, row.n_tokens)


def token_model_key(cfg: Any) -> str:
    """What the larger model's answers are stored under: a digest of what shapes them."""
    settings = {"model": cfg.compose.token.model, "system_prompt": cfg.student.system_prompt,
                "max_new_tokens": cfg.student.max_new_tokens, "kshot": cfg.student.kshot}
    return f"larger-model@{_digest(settings)}"


def _digest(settings: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def system2_key(cfg: Any) -> str:
    """What System 2's answers are stored under: the solver and a digest of the settings that
    shape them, so a composition with another writer model, other exemplars or another
    teacher never reuses answers given under the old ones."""
    c = cfg.compose
    if c.system2 == "oracle":
        return "oracle"
    if c.system2 == "program":
        shots = c.program.shots
        settings = {**c.program.model_dump(mode="json"), "writer": c.program.model or cfg.student.model,
                    "shots": hashlib.sha1(Path(shots).read_bytes()).hexdigest() if shots else None}
    elif c.system2 == "teacher":
        settings = cfg.teacher.model_dump(mode="json")
    else:
        settings = c.self_consistency.model_dump(mode="json")
    return f"{c.system2}@{_digest(settings)}"


def compose_items(ctx: Context, split: str) -> list[Item]:
    """The split's items for composing: all, or `compose.max_items` of them chosen by a hash
    of seed and id (the same in every round and on resume)."""
    items = ctx.store.items(split)
    cap = ctx.cfg.compose.max_items
    if cap is None or len(items) <= cap:
        return items
    key = lambda i: hashlib.sha1(f"{ctx.cfg.seed}|{i.item_id}".encode()).hexdigest()  # noqa: E731
    return sorted(sorted(items, key=key)[:cap], key=lambda i: i.item_id)


def _solve_system2(ctx: Context, items: Sequence[Item], solver: Any, name: str, s2_round: int) -> None:
    def solve(batch: Sequence[Item]) -> None:
        by_id = {i.item_id: i for i in batch}
        ctx.store.add_solutions(s2_round, name, [
            (s.item_id, s.output, s.answer, ctx.task.is_correct(by_id[s.item_id], s.answer), s.n_tokens,
             s.seconds, None, None, None) for s in solver.solve(batch)])

    _resumable(ctx, f"{round_label(s2_round, 'warm-up student')}: {system2_label(name)}", items, ctx.store.solved_ids(s2_round, name),
               solve)


def _resumable(ctx: Context, title: str, items: Sequence[Item], done: set[str],
               work: Callable[[Sequence[Item]], None]) -> None:
    """`work` on the items not `done`, a student batch at a time (each batch writes its own
    results, so a killed stage resumes after the last batch written), with a progress bar."""
    todo = [i for i in items if i.item_id not in done]
    with ctx.reporter.bar(title, len(items)) as advance:
        advance(len(items) - len(todo))
        for batch in _batches(todo, ctx.cfg.student.batch_size):
            work(batch)
            advance(len(batch))


def _route(router: str, row: Any, threshold: float, cfg: Any, system2: str, s2_round: int,
           tokens: tuple[int, int]) -> tuple:
    from sgi.skills import routing

    score = routing.score(router, row)
    up = score < threshold
    signal = {"confidence": cfg.feature, "skill": "weakest skill's probe accuracy",
              "skill+confidence": f"{cfg.feature} x weakest skill's probe accuracy"}[router]
    reason = f"{signal} {score:.3f} {'<' if up else '>='} {threshold:.3f}"
    seconds = routing.latency(router, row, up)
    used = (tokens[1] if router == "skill" else sum(tokens)) if up else tokens[0]
    return (router, row.item_id, system2, s2_round, 2 if up else 1, reason, score, threshold,
            row.s2_correct if up else row.s1_correct, seconds, used)
