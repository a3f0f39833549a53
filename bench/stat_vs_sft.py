"""Does skill targeting beat plain SFT? Every strategy from the same warm-up, same budget, 3 seeds.

    .venv/bin/python bench/stat_vs_sft.py                                  # every arm, 2 rounds, seeds 0 1 2
    .venv/bin/python bench/stat_vs_sft.py --preset hard --arms uniform stat-sel+learn
    .venv/bin/python bench/stat_vs_sft.py --seeds 0 --rounds 1 --arms uniform stat-sel

Each (arm, seed) is one real `sgi run` (subprocess) on the embedded default task preset
(`task.gym.preset`), answering 100 test items a family instead of the default's 50 for
tighter error bars (the same probe, pool, warm-up and training: `GymTask.load_items`); with
`--rounds 2` the tables show round 1 and round 2 of the same run.
Warm-ups are cached per seed, so every arm of a seed starts from the same student. Arms are
strategies with their settings (ARMS), all on the same budget (train.steps x batch_size a
round). Printed: mean ± standard error over seeds; differences paired with uniform within
each seed; held-out accuracy per family; the preset's rare learnable families and the
families it cannot learn (`gym.PRESETS[...].roles`).

Interrupt it any time: run it again with the same --out and every run resumes (finished
ones are skipped). Each finished run's summary is kept in --results (committed:
bench/results/stat_vs_sft/) with date, commit, CPU and precision, and reused by a later
invocation with the same overrides (--rerun to redo), so the study can span sessions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from provenance import RESULTS, keep
from rich.console import Console
from rich.table import Table

from sgi.orchestrator.store import Store
from sgi.skills.tasks.gym import PRESETS

ARMS: dict[str, list[str]] = {  # name -> the run's overrides
    "uniform": ["loop.strategy=uniform"],
    "embed-sel": ["loop.strategy=embed-sel"],
    "skill-it": ["loop.strategy=skill-it"],
    "stat-sel": ["loop.strategy=stat-sel", "loop.weighting=paper"],
    "stat-syn": ["loop.strategy=stat-syn", "loop.weighting=paper"],
    "stat-sel+learn": ["loop.strategy=stat-sel", "loop.weighting=learnability"],
    "stat-syn+learn": ["loop.strategy=stat-syn", "loop.weighting=learnability"],
    # learnability with a share for skills still at their floor (loop.explore): the frontier's late starters
    "stat-sel+explore": ["loop.strategy=stat-sel", "loop.weighting=learnability", "loop.explore=0.2"],
    # learnability with round 0's rates measured on the warm-up's second half (loop.warmup_rates)
    "stat-sel+rates": ["loop.strategy=stat-sel", "loop.weighting=learnability", "loop.warmup_rates=true"],
}
COLUMNS = ("test", "weakest third", "general", "rare learnable", "not learnable")


def run_or_load(args: argparse.Namespace, arm: str, seed: int, arms: dict[str, list[str]] = ARMS) -> dict:
    """A run's kept summary: from --results when one matches its overrides, else run it and keep one.
    `arms` gives each arm's overrides (bench/stat_then_rl.py passes its own)."""
    path = args.results / f"{_safe(arm)}-{args.preset}-s{seed}-r{args.rounds}.json"
    overrides = [*arms[arm], f"task.gym.preset={args.preset}", f"task.gym.test_per_family={args.test}", *args.extra]
    if path.is_file() and not args.rerun:
        kept = json.loads(path.read_text())
        if kept["overrides"] == overrides:
            print(f"{arm} seed {seed}: from {path.name} ({kept['commit'][:8]}, {kept['cpu']}, {kept['precision']})",
                  file=sys.stderr)
            return kept
    name = f"{_safe(arm)}-{args.preset}-s{seed}"
    # compose changes no weights and would add to the ledger's time; an arm may set its own loop.rounds
    sets = [f"name={name}", f"runs_dir={args.out}", f"seed={seed}", f"loop.rounds={args.rounds}",
            "compose.enabled=false", *overrides]
    subprocess.run([sys.executable, "-m", "sgi.orchestrator", "run", "--quiet",
                    *[a for s in sets for a in ("--set", s)]], check=True, stdout=subprocess.DEVNULL)
    store = Store(args.out / name / "sgi.duckdb", read_only=True)
    try:
        summary = store.round_summary()
        record = {"arm": arm, "preset": args.preset, "seed": seed, "rounds": args.rounds, "overrides": overrides,
                  "summary": [list(row) for row in summary], "floor": store.test_floor(),
                  "families": {str(r): f for r, f in store.family_evals("test").items()},
                  # stage time from the ledger, not this call's wall time: a resumed run still reports true times
                  "seconds": sum(row.seconds or 0 for row in summary), "ledger": [list(r[:4]) for r in store.ledger()],
                  "rl_steps": [list(r) for r in store.rl_steps(summary[-1].round)]}  # [] without an RL round
    finally:
        store.close()
    return keep(path, record)


def _safe(arm: str) -> str:
    """The arm as a run and file name ('+' is not allowed in run names)."""
    return arm.replace("+", "_")


def metrics(run: dict, round_: int, roles: dict[str, str]) -> dict[str, float | None]:
    """The columns of one run after `round_` (-1: the warm-up student)."""
    row = next(r for r in run["summary"] if r[0] == round_)
    families = run["families"][str(round_)]

    def mean_of(role: str) -> float | None:
        chosen = [a for f, a in families.items() if roles.get(f) == role]
        return statistics.mean(chosen) if chosen else None

    return {"test": row[1], "weakest third": row[2], "general": row[3], "rare learnable": mean_of("rare learnable"),
            "not learnable": mean_of("not learnable")}


def mean_se(values: list[float], scale: float = 1.0, signed: bool = False) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    fmt = "+.1f" if signed else ".3f"
    if len(values) == 1:
        return f"{values[0]:{fmt}}"
    return f"{statistics.mean(values):{fmt}} ± {statistics.stdev(values) / len(values) ** 0.5:.{1 if signed else 3}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="learnable", choices=sorted(PRESETS))
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--test", type=int, default=100, help="test items a family; the default's 50 are the "
                    "first 50 of them, and probe, pool and training do not change with it (GymTask.load_items)")
    ap.add_argument("--out", type=Path, default=Path("runs/study"))
    ap.add_argument("--set", dest="extra", action="append", default=[], help="config override for every run")
    ap.add_argument("--results", type=Path, default=RESULTS / "stat_vs_sft",
                    help="where finished runs' summaries are kept and reused")
    ap.add_argument("--rerun", action="store_true", help="run even where a kept summary exists")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown (for docs/benchmarks.md)")
    args = ap.parse_args()
    if "uniform" not in args.arms:
        args.arms.insert(0, "uniform")  # every difference is paired with it
    roles = PRESETS[args.preset].roles
    runs: dict[tuple[str, int], dict] = {}
    for seed in args.seeds:
        for arm in args.arms:
            runs[(arm, seed)] = run_or_load(args, arm, seed)
            print(f"done {arm} seed {seed} ({runs[(arm, seed)]['seconds']:.0f} s in its ledger)", file=sys.stderr)
    console = Console(width=170)
    rounds = list(range(args.rounds))
    for table in (summary_table(args, runs, rounds, roles), paired_table(args, runs, rounds, roles),
                  family_table(args, runs, roles)):
        if args.markdown:
            print(markdown(table))
        else:
            console.print(table)


def markdown(table: Table) -> str:
    """A rich table as a Markdown one, for docs/benchmarks.md."""
    cells = [[str(c) for c in column._cells] for column in table.columns]
    lines = [f"{table.title}:", "", "| " + " | ".join(str(c.header) for c in table.columns) + " |",
             "|" + "|".join("---" if c.justify == "left" else "---:" for c in table.columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells)]
    return "\n".join(lines) + "\n"


def summary_table(args, runs, rounds, roles) -> Table:
    table = Table(title=f"held-out accuracy, preset {args.preset}, seeds {args.seeds}: mean ± standard error")
    for col in ("arm", "after round", *COLUMNS, "train items", "s / run (ledger)"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    first = [runs[("uniform", s)] for s in args.seeds]
    table.add_row("majority-answer floor", "", mean_se([r["floor"] for r in first]), *[""] * (len(COLUMNS) + 1))
    warm = [metrics(r, -1, roles) for r in first]
    table.add_row("warm-up student", "-", *[mean_se([m[c] for m in warm]) for c in COLUMNS], "0", "")
    for arm in args.arms:
        for r in rounds:
            ms = [metrics(runs[(arm, s)], r, roles) for s in args.seeds]
            items = runs[(arm, args.seeds[0])]["summary"][r + 1][4]
            seconds = statistics.mean(runs[(arm, s)]["seconds"] for s in args.seeds)
            table.add_row(arm, str(r + 1), *[mean_se([m[c] for m in ms]) for c in COLUMNS], str(items),
                          f"{seconds:.0f}" if r == rounds[-1] else "")
    return table


def paired_table(args, runs, rounds, roles) -> Table:
    table = Table(title="difference from uniform in points, paired within each seed (per seed; mean ± standard error)")
    for col in ("arm", "after round", *COLUMNS):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for arm in args.arms:
        if arm == "uniform":
            continue
        for r in rounds:
            cells = []
            for col in COLUMNS:
                diffs = [None if (a := metrics(runs[(arm, s)], r, roles)[col]) is None
                         or (u := metrics(runs[("uniform", s)], r, roles)[col]) is None else a - u for s in args.seeds]
                per_seed = " / ".join("-" if d is None else f"{100 * d:+.1f}" for d in diffs)
                cells.append(f"{per_seed} = {mean_se(diffs, 100, signed=True)}" if len(args.seeds) > 1 else per_seed)
            table.add_row(arm, str(r + 1), *cells)
    return table


def family_table(args, runs, roles) -> Table:
    last = str(args.rounds - 1)
    families = sorted(runs[("uniform", args.seeds[0])]["families"][last])
    table = Table(title=f"held-out accuracy per family after round {args.rounds} (mean over seeds); role in the preset")
    table.add_column("family")
    table.add_column("role")
    table.add_column("warm-up", justify="right")
    for arm in args.arms:
        table.add_column(arm, justify="right")
    for family in families:
        warm = statistics.mean(runs[("uniform", s)]["families"]["-1"][family] for s in args.seeds)
        cells = [f"{statistics.mean(runs[(a, s)]['families'][last][family] for s in args.seeds):.2f}" for a in args.arms]
        table.add_row(family, roles.get(family, ""), f"{warm:.2f}", *cells)
    return table


if __name__ == "__main__":
    main()
