"""`sgi run` end to end: real SmolLM2, real Ray, real DuckDB; training rounds and evals."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from support.runs import as_sets, sgi

import sgi.skills as sgi_skills
from sgi.orchestrator.store import Store
from sgi.workers.models import cache_root

pytestmark = pytest.mark.slow

SMALL = [
    "task.gym.families={add_sub: 60, gcd: 30, lcm: 20}",
    "task.gym.probe_per_family=8",
    "task.gym.test_per_family=20",
    "task.gym.general={spell_backward: 6}",
    "student.batch_size=12",
    "ray.num_cpus=2",
]


RAY_TOKEN = Path.home() / ".ray" / "auth_token"

# What these tests check is the training set; evaluating 66 held-out items twice was most of their time.
COMPOSED = (-1, 1)  # by default the warm-up student and the last round
FEW_HELD_OUT = ["task.gym.test_per_family=3", "task.gym.general={spell_backward: 2}"]


def run_sgi(tmp: Path, name: str, extra: list[str]) -> Store:
    sets = as_sets([f"name={name}", f"runs_dir={tmp / 'runs'}", *SMALL, *extra])
    result = sgi("run", "--quiet", *sets, cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "per round" in result.stdout
    return Store(tmp / "runs" / name / "sgi.duckdb", read_only=True)


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    """Two STAT-Sel rounds from the *base* model (no warm-up), so round -1 is the base model;
    two student actors of one CPU each take turns with the one-CPU trainer on the 2-CPU cluster.
    The base model is also the "larger" model of the token-level composition."""
    tmp = tmp_path_factory.mktemp("run")
    if RAY_TOKEN.is_file():  # as Ray writes it: readable by every local user (the run must tighten it)
        RAY_TOKEN.chmod(0o644)
    store = run_sgi(tmp, "sel", ["warmup.enabled=false", "loop.rounds=2", "train.steps=8", "train.batch_size=8",
                                 "compose.max_items=12", "compose.token.model=smollm2", "compose.token.thresholds=[0.5]",
                                 "ray.student_actors=2", "ray.student_cpus=1"])
    yield tmp, store
    store.close()


def test_checkpoints_chain_from_round_to_round(two_rounds):
    tmp, store = two_rounds
    rows = store.db.execute("SELECT round, path, base, steps, examples FROM checkpoints ORDER BY round").fetchall()
    assert [r[0] for r in rows] == [0, 1]
    assert all(Path(r[1]).is_dir() and (Path(r[1]) / "config.json").is_file() for r in rows)
    assert rows[1][2] == rows[0][1]  # round 1 starts from round 0's weights, not the base model
    assert Path(rows[0][2]).parent == cache_root() / "models"  # round 0 starts from the converted base model
    assert all(r[3] == 8 and r[4] == 64 for r in rows)
    # each round's students were a pool of two, loaded after the trainer let go of its CPU
    infer = [detail for _, stage, _, _, detail in store.ledger() if stage == "infer"]
    assert len(infer) == 2 and all("by 2 student actors" in d for d in infer)


def test_the_local_cluster_auth_token_is_readable_by_its_user_alone(two_rounds):
    """Ray's servers listen on every interface; its token is what keeps other users out."""
    assert RAY_TOKEN.is_file(), "Ray wrote no auth token: is token authentication off?"
    assert RAY_TOKEN.stat().st_mode & 0o077 == 0, oct(RAY_TOKEN.stat().st_mode)


def test_train_sets_follow_stat_sel_by_learnability(two_rounds):
    _, store = two_rounds
    for round_ in (0, 1):
        train = store.train_set(round_)
        assert len(train) == 64  # the budget: steps x batch size
        pairs = set(store.missing_pairs(round_))
        labels = store.labels()
        pool = {i.item_id for i in store.items("pool")}
        for item_id, _q, _a, skill, cause, reason in train:
            assert item_id in pool and reason in {"targeted", "replay"}
            if reason == "targeted":  # a labelled skill of the item, caused by a difficult item that missed it
                assert skill in labels[item_id] and (cause, skill) in pairs
        # loop.replay 0.25 of the budget, or all of it where no skill is above its floor and unmastered
        select = next(d for r, stage, _, _, d in store.ledger() if stage == "select" and r == round_)
        assert "learnability weights" in select
        replay = sum(r.reason == "replay" for r in train)
        assert replay == (64 if "all replay" in select else 16), select
        assert round_ == 1 or replay == 16  # round 0: the profile has skills to target


def test_evals_per_round_and_the_student_learns(two_rounds):
    _, store = two_rounds
    held_out = {i.item_id for i in store.items("test") + store.items("general")}
    for round_ in (-1, 0, 1):
        assert store.evaluated_ids(round_) == held_out
    assert store.skill_evals(1, "test")
    summary = {r.round: r for r in store.round_summary()}
    assert set(summary) == {-1, 0, 1}
    # On the skills it was trained on, the trained student beats the base model it started
    # from (fixed seed, so this is deterministic on CPU).
    trained = {row.skill for r in (0, 1) for row in store.train_set(r)}
    labels = store.labels()
    test_ids = {i.item_id for i in store.items("test") if trained & set(labels[i.item_id])}
    accuracy = {
        r: sum(c for i, c in store.db.execute("SELECT item_id, correct FROM evals WHERE round = ?", [r]).fetchall()
               if i in test_ids) / len(test_ids)
        for r in (-1, 1)
    }
    assert accuracy[1] > accuracy[-1], accuracy


@pytest.mark.parametrize("strategy", ["stat-syn", "embed-sel", "uniform", "skill-it", "stat-syn+learn"])
def test_other_strategies_one_round_inline(tmp_path, strategy):
    name, _, learn = strategy.partition("+")
    # stat-syn with the paper's rule; stat-syn+learn with learnability weighting (its default)
    weighting = ["loop.replay=0.5"] if learn else ["loop.weighting=paper"] if name == "stat-syn" else []
    store = run_sgi(tmp_path, name, [f"loop.strategy={name}", *weighting, "loop.rounds=1", "warmup.enabled=false",
                                     "train.steps=2", "train.batch_size=4", "ray.enabled=false",
                                     "compose.enabled=false", *FEW_HELD_OUT])
    try:
        train = store.train_set(0)
        assert len(train) == 8
        reasons = {r.reason for r in train}
        if learn:  # the split the store's own profile gives: replay half, the rest by learnability weight
            from sgi.skills.learnability import skill_weights
            from sgi.skills.selection import allocate

            weights = skill_weights([store.skill_states(0)], [])
            targeted = allocate(weights, 4) if weights else {}
            assert sum(r.reason == "replay" for r in train) == 8 - sum(targeted.values())
            by_skill = Counter(r.skill for r in train if r.reason != "replay")
            assert by_skill == targeted and reasons <= {"targeted", "synthetic", "replay"}
            assert all(r.cause and (r.cause, r.skill) in set(store.missing_pairs(0)) for r in train
                       if r.reason != "replay")
        elif strategy == "stat-syn":
            candidates, kept = store.synthesized_counts(0)
            assert candidates > 0 and 0 < kept <= candidates
            assert "synthetic" in reasons
            synthetic = {i.item_id for i in store.items("synthetic")}
            assert len(synthetic) == kept and all(store.labels().get(i) for i in synthetic)
        elif strategy == "skill-it":
            assert reasons == {"mixture"}
            profiled = {row.skill for row in store.profile(0) if row.missing_rate > 0}
            assert {r.skill for r in train} & profiled  # drawn by the round-0 MSP's skills
        else:
            assert reasons <= {"embed", "fill", "uniform"}
        assert store.checkpoint(0) and store.evaluated_ids(0)
    finally:
        store.close()


def test_each_round_is_composed_with_the_program_solver(two_rounds):
    """System 1 (the round's student) + System 2 (the base model writing expressions that
    the safe evaluator computes), routed per item on the test split."""
    _, store = two_rounds
    summary = {(r.round, r.router): r for r in store.compose_summary() if r.router != "token"}
    routers = ("confidence", "skill", "skill+confidence", "learned")
    assert set(summary) == {(r, router) for r in COMPOSED for router in routers}
    composed = {r.round: r.detail for r in store.ledger() if r.stage == "compose"}
    assert set(composed) == set(COMPOSED)  # round 0 stays available through `sgi compose --round 0`
    for round_ in COMPOSED:  # System 1's test answers are its evaluation's, not a second pass
        assert "(12 answers from its evaluation)" in composed[round_]
        s1 = store.db.execute("SELECT item_id, output, correct FROM solutions WHERE round = ? AND solver = 'system1'",
                              [round_]).fetchall()
        evals = {r[0]: (r[1], r[2]) for r in store.db.execute("SELECT item_id, output, correct FROM evals "
                                                                "WHERE round = ?", [round_]).fetchall()}
        assert sum(item in evals for item, *_ in s1) == 12
        assert all(evals[item] == (output, correct) for item, output, correct in s1 if item in evals)
    test_ids = {r[0] for r in store.db.execute("SELECT item_id FROM routes WHERE round = -1 AND router = 'skill'").fetchall()}
    assert len(test_ids) == 12 and test_ids <= {i.item_id for i in store.items("test")}  # compose.max_items
    for (round_, router), row in summary.items():
        assert row.system2.startswith("program@") and row.items == len(test_ids)  # keyed by its settings
        assert 0.0 <= row.escalation <= 1.0 and row.system1_seconds > 0 and row.system2_seconds > 0
        routes = store.db.execute("SELECT item_id, system, reason, correct FROM routes WHERE round = ? AND router = ?",
                                  [round_, router]).fetchall()
        assert {r[0] for r in routes} == test_ids and {r[1] for r in routes} <= {1, 2}
        assert all(("<" in r[2]) == (r[1] == 2) for r in routes)  # the reason states the rule that fired
        assert row.composed_accuracy == pytest.approx(sum(r[3] for r in routes) / len(routes))
    # the program solver computes what the small model cannot: it beats the base student here
    assert summary[(-1, "confidence")].system2_accuracy > summary[(-1, "confidence")].system1_accuracy
    # thresholds are chosen on probe; on test the composed solver is at least as good as the
    # student alone for the routers that escalate where the student is weak
    for round_ in COMPOSED:
        assert summary[(round_, "skill")].composed_accuracy >= summary[(round_, "skill")].system1_accuracy
    curve = store.compose_curve()
    for round_ in COMPOSED:
        points = [c for c in curve if c.round == round_ and c.router == "confidence" and c.split == "test"]
        assert min(p.escalation for p in points) == 0.0 and max(p.escalation for p in points) == 1.0
        assert sum(p.chosen for p in points) == 1  # one chosen threshold per split
    # RouteLLM's measures, every router and the two references, both splits, every round
    metrics = {(m.round, m.router, m.split): m for m in store.compose_metrics()}
    assert set(metrics) == {(r, router, split) for r in COMPOSED for router in (*routers, "random", "oracle")
                            for split in ("probe", "test")}
    for (round_, router, split), m in metrics.items():
        s1 = sum(c.s1_correct for c in store.compose_rows(round_, -1, summary[(round_, "skill")].system2, "min_prob")
                 if c.split == split)
        assert m.system1_accuracy == pytest.approx(s1 / 12)
        if m.system2_accuracy <= m.system1_accuracy:
            assert m.apgr is None
            continue
        oracle = metrics[(round_, "oracle", split)]
        assert oracle.apgr >= m.apgr - 1e-9 and oracle.cpt80 <= m.cpt80 + 1e-9  # nothing routes better
        assert 0.0 <= m.cpt50 <= m.cpt80 <= m.cpt95 <= 1.0
        if router == "random":
            assert (m.apgr, m.cpt80) == pytest.approx((0.5, 0.8))


def test_system_2_is_paid_once_across_runs_and_again_for_other_exemplars(tmp_path):
    """The program solver's answers are kept under the cache root by its settings: a second
    run answers nothing with it, and other exemplars are another solver, answered anew.
    The second run's name and folder are text YAML would misread (a number, `: `, `[`):
    `sgi compose`, `status` and `resume` find it all the same."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(cache_root() / "models")  # the converted student, not converted again
    env = {**os.environ, "SGI_CACHE": str(cache)}
    runs = tmp_path / "runs: [x]"
    tiny = ["loop.rounds=1", "warmup.enabled=false", "train.steps=2", "train.batch_size=4", "ray.enabled=false",
            "compose.max_items=10", "compose.routers=[confidence]", *FEW_HELD_OUT]

    def compose_detail(name: str, *args: str) -> str:
        result = sgi(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        store = Store(runs / name / "sgi.duckdb", read_only=True)
        try:  # the warm-up student's composition is the first to need System 2
            return next(r.detail for r in store.ledger() if r.stage == "compose" and r.round == -1)
        finally:
            store.close()

    both = 10 + 9  # compose.max_items of the 24 probe items, and the 9 test items
    for name, paid in (("first", both), ("1e3", 0)):
        sets = as_sets([f"name={name}", f"runs_dir={runs}", *SMALL, *tiny])
        assert f"({paid} answered now)" in compose_detail(name, "run", "--quiet", *sets)
    shots = tmp_path / "shots.yaml"
    shots.write_text((Path(sgi_skills.__file__).parent / "templates" / "program.v1.yaml").read_text()
                     .replace("Reply with the expression only", "Reply with one expression only"))
    detail = compose_detail("1e3", "compose", str(runs / "1e3"), "--round", "-1", "--quiet",
                            "--set", f"compose.program.shots={shots}")
    assert f"({both} answered now)" in detail  # other exemplars: another solver
    for command in ("status", "resume"):
        result = sgi(command, str(runs / "1e3"), cwd=tmp_path, env=env)
        assert result.returncode == 0 and "1e3" in result.stdout, result.stderr[-3000:]


def test_each_round_is_also_composed_token_by_token_with_the_larger_model(two_rounds):
    """FS-GEN: the round's student decodes and the larger model (here the base SmolLM2)
    chooses the tokens where the student's top-1 probability is below 0.5."""
    _, store = two_rounds
    summary = {r.round: r for r in store.compose_summary() if r.router == "token"}
    assert set(summary) == set(COMPOSED)
    rows = store.db.execute("SELECT round, threshold, n_tokens, large_tokens FROM token_solutions").fetchall()
    alone = [r for r in rows if r[1] == float("inf")]
    assert len(alone) == 24 and {r[0] for r in alone} == {-1}  # probe + test, once per run
    assert all(r[3] == r[2] > 0 for r in alone)
    for round_ in COMPOSED:
        mixed = [r for r in rows if r[0] == round_ and r[1] == 0.5]
        assert len(mixed) == 24 and all(0 <= r[3] <= r[2] for r in mixed)
    # the trained students hand some tokens over to the base model, and keep most
    trained = [r for r in rows if r[0] >= 0 and r[1] == 0.5]
    assert 0 < sum(r[3] for r in trained) < sum(r[2] for r in trained)
    for round_, row in summary.items():
        assert row.system2.startswith("larger-model@") and row.items == 12 and 0.0 <= row.escalation <= 1.0
        routes = store.db.execute("SELECT system, reason, score, threshold, correct FROM routes "
                                  "WHERE round = ? AND router = 'token'", [round_]).fetchall()
        assert len(routes) == 12 and row.composed_accuracy == pytest.approx(sum(r[4] for r in routes) / 12)
        assert row.escalation == pytest.approx(sum(1 - r[2] for r in routes) / 12)
        chosen = routes[0][3]
        assert all(r[3] == chosen for r in routes) and chosen in (0.0, 0.5, float("inf"))
        if chosen == 0.5:  # the reason counts the tokens each model chose
            assert all(("tokens from the larger model" in r[1]) and (r[0] == 2) == (r[2] < 1) for r in routes)
    curve = [c for c in store.compose_curve() if c.router == "token" and c.split == "test"]
    for round_ in COMPOSED:
        points = sorted((c.threshold, c.escalation) for c in curve if c.round == round_)
        assert [t for t, _ in points] == pytest.approx([0.0, 0.5, 1.0 + 1e-9])  # student, t, larger alone
        assert points[0][1] == 0.0 and points[-1][1] == 1.0
