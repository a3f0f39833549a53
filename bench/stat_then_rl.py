"""Does RL add to STAT? GRPO after STAT, after uniform SFT and from the warm-up alone, and STAT alone.

    .venv/bin/python bench/stat_then_rl.py                          # 3 runs x seeds 0 1 2 (hours on 2 cores)
    .venv/bin/python bench/stat_then_rl.py --seeds 0 --set loop.rl.steps=10

Three real `sgi run`s a seed on the embedded default, through bench/stat_vs_sft.py's
`run_or_load` (same warm-up per seed, same test split of 100 items a family, kept results
reused across sessions): STAT (learnability STAT-Sel, 2 rounds x 400 examples) then one GRPO
round, uniform SFT (same budget) then the same GRPO round, and GRPO alone from the warm-up
student. STAT alone and uniform alone are the first two runs before their RL round (the
supervised rounds do not depend on loop.rl), so "does GRPO add?" is paired within one run.
Budget: the same supervised examples for the arms that have supervised rounds and the same
GRPO steps for those with an RL round (`loop.rl.*`, the defaults: 20 steps x 4 prompts x 4
samples); GRPO alone has no supervised rounds, so it is the cheapest arm, not an equal-budget
one. Prompts are targeted by the RL round's profile (`loop.rl.prompts`). Printed: accuracy
per arm, mean ± standard error over seeds; differences paired within each seed; each RL
run's reward curve (mean over seeds, per quarter of its steps). Kept in
bench/results/stat_then_rl/ with date, commit, CPU, precision.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from provenance import RESULTS
from rich.console import Console
from rich.table import Table
from stat_vs_sft import ARMS as SFT_ARMS
from stat_vs_sft import COLUMNS, markdown, mean_se, metrics, run_or_load

from sgi.skills.tasks.gym import PRESETS

RL = ["loop.rl.enabled=true"]
RUNS: dict[str, list[str]] = {  # names are run names too: no '>'
    "stat-grpo": [*SFT_ARMS["stat-sel+learn"], *RL],
    "uniform-grpo": [*SFT_ARMS["uniform"], *RL],
    "grpo": ["loop.rounds=0", *RL],  # from the warm-up student
}
# STAT alone and uniform alone are the RL runs before their RL round: the supervised rounds
# do not depend on loop.rl, so the same run gives both sides of "does GRPO add?" paired.
BEFORE_RL = {"stat": "stat-grpo", "uniform": "uniform-grpo"}
ARMS = ["stat", "stat-grpo", "uniform", "uniform-grpo", "grpo"]
PAIRS = [("stat-grpo", "stat", "GRPO after STAT"), ("uniform-grpo", "uniform", "GRPO after uniform"),
         ("stat-grpo", "uniform-grpo", "STAT -> GRPO vs uniform -> GRPO"),
         ("grpo", "stat", "GRPO alone vs STAT alone")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="learnable", choices=sorted(PRESETS))
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=2, help="supervised rounds of the arms that have them")
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("runs/study-rl"))
    ap.add_argument("--set", dest="extra", action="append", default=[], help="config override for every run")
    ap.add_argument("--results", type=Path, default=RESULTS / "stat_then_rl")
    ap.add_argument("--rerun", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    roles = PRESETS[args.preset].roles
    runs = {}
    for seed in args.seeds:
        for name in args.runs:
            runs[(name, seed)] = run_or_load(args, name, seed, RUNS)
            print(f"done {name} seed {seed} ({runs[(name, seed)]['seconds']:.0f} s in its ledger)", file=sys.stderr)
    args.arms = [a for a in ARMS if BEFORE_RL.get(a, a) in args.runs]
    final = {(arm, s): after(runs[(BEFORE_RL.get(arm, arm), s)], arm in BEFORE_RL, roles)
             for arm in args.arms for s in args.seeds}
    tables = [accuracy_table(args, runs, final), paired_table(args, final), reward_table(args, runs)]
    console = Console(width=170)
    for table in tables:
        print(markdown(table)) if args.markdown else console.print(table)


def last_round(run: dict, before_rl: bool) -> int:
    """A run's last round, or its last supervised one (the round before RL)."""
    return run["summary"][-1][0] - before_rl


def after(run: dict, before_rl: bool, roles: dict[str, str]) -> dict:
    """A run's columns after `last_round`."""
    return metrics(run, last_round(run, before_rl), roles)


def accuracy_table(args, runs, final) -> Table:
    table = Table(title=f"held-out accuracy after each arm's last round, preset {args.preset}, seeds {args.seeds}")
    for col in ("arm", "last round", *COLUMNS, "s / run (ledger)"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    warm = [metrics(runs[(args.runs[0], s)], -1, PRESETS[args.preset].roles) for s in args.seeds]
    table.add_row("warm-up student", "-", *[mean_se([m[c] for m in warm]) for c in COLUMNS], "")
    for arm in args.arms:
        run = BEFORE_RL.get(arm, arm)
        ms = [final[(arm, s)] for s in args.seeds]
        last = last_round(runs[(run, args.seeds[0])], arm in BEFORE_RL)
        seconds = "" if arm in BEFORE_RL else f"{statistics.mean(runs[(run, s)]['seconds'] for s in args.seeds):.0f}"
        table.add_row(arm, str(last), *[mean_se([m[c] for m in ms]) for c in COLUMNS], seconds)
    return table


def paired_table(args, final) -> Table:
    table = Table(title="differences in points, paired within each seed (per seed; mean ± standard error)")
    for col in ("comparison", *COLUMNS):
        table.add_column(col, justify="left" if col == "comparison" else "right")
    for a, b, label in PAIRS:
        if a not in args.arms or b not in args.arms:
            continue
        cells = []
        for col in COLUMNS:
            diffs = [None if final[(a, s)][col] is None or final[(b, s)][col] is None
                     else final[(a, s)][col] - final[(b, s)][col] for s in args.seeds]
            shown = [f"{d * 100:+.1f}" for d in diffs if d is not None]
            cells.append(" / ".join(shown) + " = " + mean_se(diffs, 100, signed=True) if shown else "-")
        table.add_row(f"{label} ({a} - {b})", *cells)
    return table


def reward_table(args, runs) -> Table:
    """Each RL arm's mean reward and KL per quarter of its GRPO steps (mean over seeds)."""
    table = Table(title="GRPO reward (and KL) per quarter of the steps, mean over seeds")
    for col in ("arm", "1st quarter", "2nd", "3rd", "4th", "KL at the end"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for arm in args.runs:
        curves = [runs[(arm, s)].get("rl_steps") or [] for s in args.seeds]
        if not all(curves):
            continue
        quarters = [statistics.mean(statistics.mean(r[1] for r in c[q * len(c) // 4:(q + 1) * len(c) // 4] or c[-1:])
                                    for c in curves) for q in range(4)]
        kl = statistics.mean(c[-1][5] or 0.0 for c in curves)
        table.add_row(arm, *[f"{q:.2f}" for q in quarters], f"{kl:.3f}")
    return table


if __name__ == "__main__":
    main()
