"""System 1 + System 2: both systems answer the probe and test items, each router's threshold
is chosen on probe and applied to test, and routes and accuracy-vs-escalation curves are
written; FS-GEN's token-level collaboration beside them."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sgi.orchestrator.answers import AnswerCache, System2Cache
from sgi.orchestrator.rows import (ComposeRow, CurvePoint, MetricsRow, RouteRow, SignalRow, SolutionRow,
                                   TokenSolutionRow)
from sgi.orchestrator.stages.answering import answer_items, student_prompts
from sgi.orchestrator.stages.context import Context, batches
from sgi.skills import routing
from sgi.skills.learned_router import Signals, fit_scores
from sgi.skills.records import Item, Solved
from sgi.skills.runs import SETUP_ROUND, StoreError, round_label
from sgi.skills.solvers import load_program_shots, system2_label
from sgi.workers.models import cache_root


def compose(ctx: Context, round_: int, system1: Any, system2: Any, s2_round: int, collab: Any = None,
            answers: AnswerCache | None = None) -> str:
    """The composed solver of round `round_`'s student: both systems answer the probe and
    test items, each router's threshold is chosen on probe and applied to test, and the
    routes and the accuracy-vs-escalation curves are written; with `collab` (a
    `TokenCollaboration`) the token router too. Resumable per batch."""
    cfg = ctx.cfg.compose
    items = compose_items(ctx, "probe") + compose_items(ctx, "test")
    reused = ctx.store.reuse_eval_answers(round_, [i.item_id for i in items if i.split == "test"])
    done = ctx.store.solved_ids(round_, "system1")
    answer_items(ctx, f"{round_label(round_, 'warm-up student')}: System 1 (student)", items, done, system1, 0,
                 lambda scored, seconds: ctx.store.add_solutions(round_, "system1", [
                     SolutionRow(a.generation.item_id, a.generation.text, a.extracted, a.correct,
                                 a.generation.n_tokens, seconds, a.generation.mean_prob, a.generation.min_prob,
                                 a.generation.margin)
                     for a in scored]), answers)
    key = system2_key(ctx.cfg)
    cache = System2Cache(cache_root(), key) if cfg.system2 in CACHED_SOLVERS else None
    s2_paid = _solve_system2(ctx, items, system2, key, s2_round, cache)
    rows = ctx.store.compose_rows(round_, s2_round, key, cfg.feature)
    learned = learned_scores(rows, ctx.store.router_signals(round_), ctx.cfg.seed)
    by_split = defaultdict(list)
    tokens = {}
    for r in rows:
        by_split[r.split].append(routing.Routed(r.item_id, r.s1_correct, r.s2_correct, r.confidence,
                                                r.weakest_accuracy, r.s1_seconds, r.s2_seconds, learned[r.item_id]))
        tokens[r.item_id] = (r.s1_tokens, r.s2_tokens)
    probe, test = by_split["probe"], by_split["test"]
    if not probe or not test:
        raise StoreError(f"compose needs probe and test items answered by both systems (probe {len(probe)}, "
                         f"test {len(test)})")
    _write_metrics(ctx, round_, [*cfg.routers, *routing.REFERENCES], {"probe": probe, "test": test})
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
        ctx.store.add_compose_curve([
            CurvePoint(round_, router, split, o.threshold, o.escalation, o.accuracy, o.seconds,
                       o.threshold == chosen.threshold)
            for split, o in curve])
        at = routing.outcome(router, test, chosen.threshold)
        parts.append(f"{router} {at.accuracy:.3f} at {at.escalation:.0%}")
    if collab is not None:
        parts.append(_compose_tokens(ctx, round_, collab, items, rows))
    s1_acc = sum(r.s1_correct for r in test) / len(test)
    s2_acc = sum(r.s2_correct for r in test) / len(test)
    return (f"test: System 1 {s1_acc:.3f} ({reused} answers from its evaluation), System 2 "
            f"{system2_label(cfg.system2)} {s2_acc:.3f} ({s2_paid} answered now); composed " + ", ".join(parts))


def learned_scores(rows: Sequence[ComposeRow], signals: Sequence[SignalRow], seed: int) -> dict[str, float]:
    """The learned router's estimate per item: out of fold on probe, and on test from a model
    fitted on all of probe. Test items give their signals only: no test label is passed on."""
    by_id = {s.item_id: s for s in signals}
    probe = [r for r in rows if r.split == "probe"]
    test = [r for r in rows if r.split == "test"]
    scores = fit_scores([_signals(by_id[r.item_id]) for r in probe], [r.s1_correct for r in probe],
                        [_signals(by_id[r.item_id]) for r in test], seed)
    return {r.item_id: s for r, s in zip([*probe, *test], [*scores.probe, *scores.test])}


def _signals(s: SignalRow) -> Signals:
    return Signals(s.item_id, s.min_prob or 0.0, s.mean_prob or 0.0, s.margin, s.n_tokens, s.question_chars,
                   tuple(s.skills))


def _write_metrics(ctx: Context, round_: int, routers: Sequence[str], splits: dict[str, Sequence[routing.Routed]]):
    """RouteLLM's measures of every router and of the random and oracle references, per split;
    the references' curves beside the routers' (the report draws them)."""
    metrics, curves = [], []
    for split, rows in splits.items():
        for router in routers:
            m = routing.gap_metrics(router, rows)
            metrics.append(MetricsRow(round_, router, split, m.system1_accuracy, m.system2_accuracy, m.apgr,
                                      *(m.cpt[x] for x in routing.CPT_SHARES)))
            if router in routing.REFERENCES:
                curves += [CurvePoint(round_, router, split, escalation, escalation, accuracy, 0.0, False)
                           for escalation, accuracy in routing.full_curve(router, rows)]
    ctx.store.add_compose_metrics(metrics)
    ctx.store.add_compose_curve(curves)


ALONE = float("inf")  # token_solutions' threshold for the larger model alone


def _compose_tokens(ctx: Context, round_: int, collab: Any, items: Sequence[Item], rows: Sequence[ComposeRow]) -> str:
    """FS-GEN's token router: the student and the larger model decode together at each
    configured threshold (the larger model alone once per run); the threshold is chosen on
    probe against the larger model's own probe accuracy, then applied to test."""
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
    ctx.store.add_compose_curve([CurvePoint(round_, "token", split, _curve_threshold(o.threshold), o.escalation,
                                            o.accuracy, o.seconds, o.threshold == chosen)
                                 for split, at in points.items() for o in at])
    at = next(o for o in points["test"] if o.threshold == chosen)
    return f"token {at.accuracy:.3f} at {at.escalation:.0%} of tokens (t = {chosen:g})"


def _solve_tokens(ctx: Context, items: Sequence[Item], collab: Any, key: str, round_: int, threshold: float) -> None:
    def solve(batch: Sequence[Item]) -> None:
        by_id = {i.item_id: i for i in batch}
        solved = collab.generate(list(by_id), student_prompts(ctx, batch), threshold)
        answers = {s.item_id: ctx.task.extract(by_id[s.item_id], s.text) for s in solved}
        ctx.store.add_token_solutions(round_, key, threshold, [
            TokenSolutionRow(s.item_id, s.text, answers[s.item_id],
                             ctx.task.is_correct(by_id[s.item_id], answers[s.item_id]), s.n_tokens, s.large_tokens,
                             s.seconds) for s in solved])

    label = "larger model alone" if threshold == ALONE else f"token-level with the larger model, t = {threshold:g}"
    title = f"{round_label(round_, 'warm-up student')}: {label}"
    _resumable(ctx, title, items, ctx.store.token_solved_ids(round_, key, threshold), solve)


def _curve_threshold(threshold: float) -> float:
    """The larger model alone is drawn as the other routers' "escalate everything" point (a
    finite number: the report's figures travel as JSON)."""
    return 1.0 + 1e-9 if threshold == ALONE else threshold


def _token_route(row: Any, threshold: float, key: str) -> RouteRow:
    if threshold == ALONE:
        reason = "the larger model alone"
    elif threshold == 0:
        reason = "the student alone"
    else:
        reason = f"{row.large_tokens} of {row.n_tokens} tokens from the larger model (student top-1 < {threshold:g})"
    return RouteRow("token", row.item_id, key, SETUP_ROUND, 2 if row.large_tokens else 1, reason,
                    1 - row.large_share, threshold, row.correct, row.seconds, row.n_tokens)


def token_model_key(cfg: Any) -> str:
    """What the larger model's answers are stored under: a digest of what shapes them."""
    settings = {"model": cfg.compose.token.model, "system_prompt": cfg.student.system_prompt,
                "max_new_tokens": cfg.student.max_new_tokens, "kshot": cfg.student.kshot}
    return f"larger-model@{_digest(settings)}"


def _digest(settings: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


CACHED_SOLVERS = ("program", "teacher")  # their answers do not depend on the round's student; the oracle costs nothing


def system2_key(cfg: Any) -> str:
    """What System 2's answers are stored under, in the run and across runs (`System2Cache`):
    the solver and a digest of the settings that shape them, so a composition with another
    writer model, other exemplars (shipped or given) or another teacher never reuses answers
    given under the old ones."""
    c = cfg.compose
    if c.system2 == "oracle":
        return "oracle"
    if c.system2 == "program":
        shots = load_program_shots(c.program.shots)
        settings = {"max_new_tokens": c.program.max_new_tokens, "writer": c.program.model or cfg.student.model,
                    "exemplars": hashlib.sha1(json.dumps([shots.system, shots.shots]).encode()).hexdigest(),
                    "dtype": cfg.student.dtype, "engine": cfg.student.engine}
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


def _solve_system2(ctx: Context, items: Sequence[Item], solver: Any, name: str, s2_round: int,
                   cache: System2Cache | None) -> int:
    """System 2's answers to the items not stored yet: from the cross-run cache where it has
    them, else from the solver (and into the cache). Returns how many the solver answered."""
    by_id = {i.item_id: i for i in items}
    done = ctx.store.solved_ids(s2_round, name)

    def store(solved: Sequence[Solved]) -> None:
        ctx.store.add_solutions(s2_round, name, [
            SolutionRow(s.item_id, s.output, s.answer, ctx.task.is_correct(by_id[s.item_id], s.answer), s.n_tokens,
                        s.seconds, None, None, None) for s in solved])

    if cache is not None:
        todo = [i for i in items if i.item_id not in done]
        known = cache.lookup([i.item_id for i in todo], [i.question for i in todo])
        store(known)
        done |= {s.item_id for s in known}
    paid = [0]

    def solve(batch: Sequence[Item]) -> None:
        solved = solver.solve(batch)
        store(solved)
        if cache is not None:
            cache.add([by_id[s.item_id].question for s in solved], solved)
        paid[0] += len(solved)

    title = f"{round_label(s2_round, 'warm-up student')}: {system2_label(name)}"
    _resumable(ctx, title, items, done, solve)
    return paid[0]


def _resumable(ctx: Context, title: str, items: Sequence[Item], done: set[str],
               work: Callable[[Sequence[Item]], None]) -> None:
    """`work` on the items not `done`, a student batch at a time (each batch writes its own
    results, so a killed stage resumes after the last batch written), with a progress bar."""
    todo = [i for i in items if i.item_id not in done]
    with ctx.reporter.bar(title, len(items)) as advance:
        advance(len(items) - len(todo))
        for batch in batches(todo, ctx.cfg.student.batch_size):
            work(batch)
            advance(len(batch))


def _route(router: str, row: Any, threshold: float, cfg: Any, system2: str, s2_round: int,
           tokens: tuple[int, int]) -> RouteRow:
    score = routing.score(router, row)
    up = score < threshold
    signal = {"confidence": cfg.feature, "skill": "weakest skill's probe accuracy",
              "skill+confidence": f"{cfg.feature} x weakest skill's probe accuracy",
              "learned": "learned P(System 1 right)"}[router]
    reason = f"{signal} {score:.3f} {'<' if up else '>='} {threshold:.3f}"
    seconds = routing.latency(router, row, up)
    used = (tokens[1] if router == "skill" else sum(tokens)) if up else tokens[0]
    return RouteRow(router, row.item_id, system2, s2_round, 2 if up else 1, reason, score, threshold,
                    row.s2_correct if up else row.s1_correct, seconds, used)
