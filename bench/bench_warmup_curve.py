"""Does the warm-up's own learning curve show which skills are learnable, before any budget is spent?

    .venv/bin/python bench/bench_warmup_curve.py --preset frontier            # seeds 0 1 2 (~7 min a seed)

Learnability weighting's round-0 prior is a skill's probe accuracy above its floor; it cannot
tell a late starter (at its floor, learnable) from a skill the student cannot learn, so on
`frontier` it starves family relationships and sentence reordering (docs/benchmarks.md). The
warm-up is a uniform SFT every arm shares and pays for before the budget: if a family's
accuracy already rises between the warm-up's half and its end, its rate is measured for free.
Per seed, the warm-up is trained for half its steps and for all of them (the study's cached
student), both answer the study's test split (100 a family), and each family's gain between
them is set beside what two uniform rounds then gained (the kept `stat_vs_sft` runs) and the
family's role. Results are kept in bench/results/warmup_curve/ (rerun with --rerun).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import NamedTuple

from provenance import RESULTS, keep
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr
from stat_vs_sft import mean_se

from sgi.orchestrator import stages
from sgi.orchestrator.config import load_config
from sgi.orchestrator.loop import Session, setup
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.rows import RoundSummary
from sgi.skills.runs import SETUP_ROUND
from sgi.skills.tasks.gym import PRESETS

STUDY = RESULTS / "stat_vs_sft"


def warmup_accuracy(args: argparse.Namespace, seed: int, steps: int) -> dict:
    """Per-family test accuracy of the seed's warm-up student after `steps` steps (kept)."""
    path = args.results / f"{args.preset}-s{seed}-w{steps}.json"
    if path.is_file() and not args.rerun:
        return json.loads(path.read_text())
    name = f"warmup-{args.preset}-s{seed}-w{steps}"
    cfg = load_config(None, [f"name={name}", f"runs_dir={args.out}", f"seed={seed}", f"warmup.steps={steps}",
                             f"task.gym.preset={args.preset}", f"task.gym.test_per_family={args.test}",
                             "ray.enabled=false", "compose.enabled=false"])
    with Session(cfg, Reporter()) as s:
        model = setup(s)
        s.stage(SETUP_ROUND, "evaluate", stages.evaluate, SETUP_ROUND, *s.student_and_answers(model))
        families = s.ctx.store.family_evals("test")[SETUP_ROUND]
    return keep(path, {"preset": args.preset, "seed": seed, "steps": steps, "families": families})


class UniformRounds(NamedTuple):
    gain: dict[str, float]  # family -> test accuracy after the last round minus the warm-up student's
    examples: int  # trained on in all the rounds


def uniform_gain(preset: str, seed: int) -> UniformRounds | None:
    """What the uniform rounds of a kept study run gained over its warm-up student."""
    path = STUDY / f"uniform-{preset}-s{seed}-r2.json"
    if not path.is_file():
        return None
    kept = json.loads(path.read_text())
    families = kept["families"]
    last = families[str(max(int(r) for r in families))]
    rounds = [RoundSummary(*row) for row in kept["summary"]]
    examples = sum(r.train_examples for r in rounds if r.round != SETUP_ROUND)
    return UniformRounds({f: last[f] - families[str(SETUP_ROUND)][f] for f in last}, examples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="frontier", choices=sorted(PRESETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=120, help="the warm-up's steps (the default's); half is compared")
    ap.add_argument("--test", type=int, default=100, help="test items a family (the study's)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-warmup-curve"))
    ap.add_argument("--results", type=Path, default=RESULTS / "warmup_curve")
    ap.add_argument("--rerun", action="store_true")
    args = ap.parse_args()

    half, full = args.steps // 2, args.steps
    runs = {seed: (warmup_accuracy(args, seed, half), warmup_accuracy(args, seed, full)) for seed in args.seeds}
    later = {seed: kept for seed in args.seeds if (kept := uniform_gain(args.preset, seed)) is not None}
    preset = PRESETS[args.preset]
    pool = sum(preset.families.values())
    batch = load_config(None, []).warmup.batch_size
    round_budget = statistics.mean(rounds.examples for rounds in later.values()) if later else 0

    table = Table(title=f"warm-up curve, preset {args.preset}, seeds {args.seeds}: test accuracy in points, "
                        "mean (± se) over seeds; 'per 100': gain per 100 expected examples of the family")
    for column in ("family", "role", "pool share", f"after {half} steps", f"after {full}", f"gain {half} -> {full}",
                   "per 100", "uniform rounds then gained", "per 100 "):
        table.add_column(column, justify="left" if column in ("family", "role") else "right")
    warm_rate, round_rate = [], []
    for family in sorted(preset.families):
        share = preset.families[family] / pool
        at_half = [runs[s][0]["families"][family] for s in args.seeds]
        at_full = [runs[s][1]["families"][family] for s in args.seeds]
        gain = [b - a for a, b in zip(at_half, at_full, strict=True)]
        warm_examples = (full - half) * batch * share
        after = [rounds.gain[family] for rounds in later.values()]
        warm_rate.append(1e4 * statistics.mean(gain) / warm_examples)  # points per 100 examples
        cells = [family, preset.roles.get(family, "-"), f"{share:.1%}", f"{100 * statistics.mean(at_half):.1f}",
                 f"{100 * statistics.mean(at_full):.1f}", mean_se(gain, 100, signed=True), f"{warm_rate[-1]:+.1f}"]
        if after:
            round_rate.append(1e4 * statistics.mean(after) / (round_budget * share))
            cells += [mean_se(after, 100, signed=True), f"{round_rate[-1]:+.1f}"]
        table.add_row(*cells, *(["-", "-"] if not after else []))
    console = Console()
    console.print(table)
    if len(round_rate) == len(warm_rate) > 2:
        rho = spearmanr(warm_rate, round_rate).statistic
        console.print(f"rank correlation over families, the warm-up's gain per example against the uniform rounds': "
                      f"{rho:+.2f}")


if __name__ == "__main__":
    main()
