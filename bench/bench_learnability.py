"""Which skills can the 135M student learn at sgi's budget? Held-out accuracy after N examples of one family.

    .venv/bin/python bench/bench_learnability.py                   # every candidate family, N = 0 120 240 480
    .venv/bin/python bench/bench_learnability.py --families gcd lcm --budgets 0 120 480
    .venv/bin/python bench/bench_learnability.py --table           # print the kept results, run nothing
    .venv/bin/python bench/bench_learnability.py --batch second --families number_filtering ...  # a batch of its own

STAT helps where a student lacks a skill it *can* learn from a few hundred targeted
examples; it wastes its budget on skills that cannot be learnt at that budget. This
measures which is which, per reasoning-gym family at the embedded default's short configs:

1. a short format warm-up of SmolLM2-135M on a mix of every candidate family (a few
   examples each, so that accuracy measures the skill, not the answer format);
2. for each family and each N, LoRA from that warm-up on N distinct examples of the family
   alone (one epoch, the rounds' own training settings), then greedy answers on the
   family's held-out test items (N = 0: the warm-up student itself).

Each family is then classed by its curve (`classify`): learnt quickly, learnable at this
budget, slow, or not learnable at this budget. Every (family, N) result is kept as it
finishes in bench/results/learnability/ with date, commit, CPU and precision, and reused
on the next run (same settings), so the bench can be stopped and resumed across sessions.
A later batch of candidates (`--batch NAME`) has its own warm-up mix and is kept in
bench/results/learnability/NAME/, so the first batch's results stay valid; a batch carries
anchor families of the first one to show the two warm-ups give the same curves.
The learning-curve figure goes to docs/figures/learnability.png (a later batch's to
learnability-NAME.png; matplotlib, `bench` extra).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from pathlib import Path

from provenance import RESULTS, keep
from rich.console import Console
from rich.table import Table

from sgi.orchestrator import build
from sgi.orchestrator.config import RunConfig
from sgi.skills.records import Item
from sgi.skills.tasks.gym import FAMILY_SPECS, GymTask, trivial_baseline

OUT = RESULTS / "learnability"
FIGURE = Path(__file__).parents[1] / "docs" / "figures" / "learnability.png"
# The first batch (2026-12-01): every candidate of then; later candidates come in batches.
FIRST_BATCH = ["add_sub", "chain_sum", "products", "mixed_ops", "gcd", "lcm", "fraction_simplification",
               "simple_equations", "decimal_add", "count_bits", "prime_factorization", "leg_counting",
               "base_conversion", "number_sequence", "leap_year", "weekday", "word_reversal", "letter_counting",
               "spell_backward"]
CANDIDATES = list(FAMILY_SPECS)
# Classes by the curve (accuracy in [0, 1], f = the family's trivial floor: always its most
# common test answer); the thresholds are the bench's rule. Gains to the floor are guessing.
QUICK_SHARE = 2 / 3  # learnt quickly: this share of the N_max gain already at the smallest N > 0 ...
QUICK_ABOVE = 0.30  # ... and at least f + this by N_max
LARGE_GAIN = 0.20  # learnable: at least this gain from N = 0 to N_max, ending at least f + this
SOME_ABOVE = 0.10  # not learnable: never this far above f (or a gain below it); in between: slow


def classify(curve: dict[int, float], floor: float) -> str:
    """'learnt quickly' | 'learnable' | 'slow' | 'not learnable' from accuracy by N (N = 0 included)."""
    budgets = sorted(curve)
    low, top = curve[budgets[0]], curve[budgets[-1]]
    first = curve[budgets[1]] if len(budgets) > 1 else top
    gain = top - low
    if top < floor + SOME_ABOVE or gain < SOME_ABOVE:
        return "not learnable"
    if top >= floor + QUICK_ABOVE and first - low >= QUICK_SHARE * gain:
        return "learnt quickly"
    if gain >= LARGE_GAIN - 1e-9 and top >= floor + LARGE_GAIN:
        return "learnable"
    return "slow"


def plan_items(families: list[str], n_max: int, test: int, warm_each: int, seed: int) -> list[Item]:
    """Per family: test items, the warm-up mix (probe split), then n_max training items (pool);
    a family with fewer distinct questions (fraction_simplification's config has ~390 after
    test and probe) gets as many as it has, and its larger N repeat them (`training_examples`)."""
    items = []
    for family in families:
        for pool in range(n_max, 0, -max(1, n_max // 24)):
            try:
                items += GymTask(families={family: pool}, probe_per_family=warm_each, test_per_family=test,
                                 general={}, seed=seed).load_items()
                break
            except ValueError:
                continue
    return items


def training_examples(pool: list[Item], n: int) -> list[tuple[str, str]]:
    """N examples of the family: its first N pool items, cycling when it has fewer."""
    return [(pool[k % len(pool)].question, pool[k % len(pool)].answer) for k in range(n)]


def settings_key(args: argparse.Namespace, cfg: RunConfig, families: list[str]) -> str:
    """A digest of what every result depends on: a result kept under another key is not reused.

    The rounds' `train.steps` is left out: every fine-tune here sets its own (N / batch).
    """
    train = {k: v for k, v in build.train_args(cfg).items() if k != "steps"}
    what = {"families": sorted(families), "n_max": max(args.budgets), "test": args.test, "warm_each": args.warm_each,
            "warm_steps": args.warm_steps, "seed": args.seed, "train": train,
            "student": {k: v for k, v in build.student_args(cfg, "").items() if k not in ("model_path", "threads")}}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=FIRST_BATCH, choices=CANDIDATES)
    ap.add_argument("--batch", default="", help="keep results in results/learnability/BATCH/ (a later batch)")
    ap.add_argument("--budgets", type=int, nargs="+", default=[0, 120, 240, 480])
    ap.add_argument("--test", type=int, default=100, help="held-out items per family")
    ap.add_argument("--warm-each", type=int, default=16, help="format warm-up examples per family")
    ap.add_argument("--warm-steps", type=int, default=0, help="0 = one epoch over the warm-up mix")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", action="store_true", help="print the kept results only")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    args.budgets = sorted(set(args.budgets) | {0})
    cfg = RunConfig()
    key = settings_key(args, cfg, args.families)
    console = Console(width=160)
    items = plan_items(args.families, max(args.budgets), args.test, args.warm_each, args.seed)
    by_split: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        by_split.setdefault((item.family, item.split), []).append(item)
    results = {(f, n): r for f in args.families for n in args.budgets
               if (r := _kept(_path(args.batch, f, n, args.seed), key))}
    if not args.table and len(results) < len(args.families) * len(args.budgets):
        _measure(console, cfg, args, key, by_split, results)
    floors = trivial_baseline(i for i in items if i.split == "test")
    report(console, args, results, floors)


def _path(batch: str, family: str, n: int, seed: int) -> Path:
    return OUT / batch / f"{family}-n{n}-s{seed}.json"


def _kept(path: Path, key: str) -> dict | None:
    if path.is_file() and (kept := json.loads(path.read_text())).get("settings") == key:
        return kept
    return None


def _measure(console, cfg: RunConfig, args, key: str, by_split, results: dict) -> None:
    """The warm-up (cached), then every (family, N) not kept yet, each kept as it finishes."""
    import torch

    from sgi.workers.models import cache_root, resolve_model
    from sgi.workers.student import TransformersStudent
    from sgi.workers.trainer import fine_tune

    torch.set_num_threads(build.torch_threads(cfg))
    task = GymTask()
    warm_mix = [i for f in args.families for i in by_split[(f, "probe")]]
    warm_mix = [warm_mix[j] for j in _interleave(len(warm_mix), args.seed)]
    batch = cfg.train.batch_size
    warm_steps = args.warm_steps or max(1, len(warm_mix) // batch)
    train = {**build.train_args(cfg), "state_every": 0}
    work = cache_root() / "learnability" / key
    warm = work / "warmup"
    if not (warm / "merged").is_dir():
        console.print(f"format warm-up: {warm_steps} steps on {len(warm_mix)} examples of {len(args.families)} families")
        fine_tune(resolve_model(cfg.student.model), [(i.question, i.answer) for i in warm_mix], warm,
                  **{**train, "steps": warm_steps})

    def accuracy(model_dir: Path, family: str) -> tuple[float, list[str]]:
        student = TransformersStudent(model_dir, **{k: v for k, v in build.student_args(cfg, str(model_dir)).items()
                                                    if k != "model_path"})
        test = by_split[(family, "test")]
        gens = student.generate([i.item_id for i in test], [i.question for i in test])
        answers = [task.extract(i, g.text) for i, g in zip(test, gens)]
        return sum(task.is_correct(i, a) for i, a in zip(test, answers)) / len(test), [g.text for g in gens[:5]]

    for family in args.families:
        for n in args.budgets:
            if (family, n) in results:
                continue
            if n == 0:
                model, steps, seconds = warm / "merged", 0, 0.0
            else:
                examples = training_examples(by_split[(family, "pool")], n)
                out = work / f"{family}-n{n}"
                metrics = fine_tune(warm / "merged", examples, out, **{**train, "steps": max(1, n // batch)})
                model, steps, seconds = out / "merged", metrics["steps"], metrics["seconds"]
            acc, sample = accuracy(model, family)
            results[(family, n)] = keep(_path(args.batch, family, n, args.seed), {
                "family": family, "n": n, "seed": args.seed, "settings": key, "accuracy": acc,
                "test_items": len(by_split[(family, "test")]), "distinct": min(n, len(by_split[(family, "pool")])),
                "steps": steps, "train_seconds": seconds,
                "warm_steps": warm_steps, "warm_examples": len(warm_mix), "sample_outputs": sample})
            console.print(f"{family:24s} N={n:4d}: {acc:.2f}  ({seconds:.0f} s training)")
            if n:
                import shutil

                shutil.rmtree(work / f"{family}-n{n}", ignore_errors=True)  # 0.5 GB a model: keep only the result


def _interleave(n: int, seed: int) -> list[int]:
    """A seeded shuffle of the warm-up mix, so every batch mixes families."""
    import random

    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def report(console, args, results: dict, floors: dict[str, float]) -> None:
    table = Table(title=f"held-out accuracy after N examples of the family alone (seed {args.seed}, "
                        f"{args.test} test items a family)")
    for col in ("family", "generator", "floor", *[f"N={n}" for n in args.budgets], "gain", "class"):
        table.add_column(col, justify="left" if col in ("family", "generator", "class") else "right")
    curves = {}
    for family in args.families:
        curve = {n: results[(family, n)]["accuracy"] for n in args.budgets if (family, n) in results}
        if len(curve) < 2:
            continue
        curves[family] = curve
        gain = curve[max(curve)] - curve[min(curve)]
        table.add_row(family, FAMILY_SPECS[family].generator, f"{floors.get(family, 0):.2f}",
                      *[f"{curve[n]:.2f}" if n in curve else "" for n in args.budgets], f"{gain:+.2f}",
                      classify(curve, floors.get(family, 0.0)) if len(curve) == len(args.budgets) else "(partial)")
    console.print(table)
    if curves:
        _figure(curves, floors, FIGURE.with_name(f"learnability-{args.batch}.png") if args.batch else FIGURE)


def _figure(curves: dict[str, dict[int, float]], floors: dict[str, float], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no figure", file=sys.stderr)
        return
    classes = {f: classify(c, floors.get(f, 0.0)) for f, c in curves.items()}
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), sharey=True)
    for ax, name in zip(axes, ("learnt quickly", "learnable", "slow", "not learnable")):
        for family, curve in curves.items():
            if classes[family] == name:
                ns = sorted(curve)
                ax.plot(ns, [curve[n] for n in ns], marker="o", label=family)
        ax.set_title(name)
        ax.set_xlabel("training examples of the family (N)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    axes[0].set_ylabel("held-out accuracy")
    axes[0].set_ylim(0, 1)
    fig.suptitle("SmolLM2-135M after a format warm-up: accuracy by examples of one family (bench/bench_learnability.py)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"figure: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
