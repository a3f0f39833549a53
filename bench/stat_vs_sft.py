"""Does skill targeting beat plain SFT? Every strategy from the same warm-up, same budget.

    .venv/bin/python bench/stat_vs_sft.py                                   # 4 strategies x 2 rounds x 3 seeds
    .venv/bin/python bench/stat_vs_sft.py --seeds 0 --rounds 1 --strategies uniform stat-sel

Each (strategy, seed) is one real `sgi run` (subprocess) on the embedded default; with
`--rounds 2` the table shows round 1 and round 2 of the same run. Warm-ups are cached per
seed, so strategies of one seed share theirs. Prints mean and standard error over seeds.
Interrupt it any time: run it again with the same --out and every run resumes (finished
ones are skipped); times come from each run's stage ledger.

Each finished run's summary is also kept in --results (committed: bench/results/), with
the commit, CPU and precision it ran on, and a later invocation takes it from there
instead of running it again (--rerun to redo). So a study too long for one sitting can
be finished over several, on fresh machines, and the table shows where each row came from.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sgi.orchestrator.store import Store

STRATEGIES = ["uniform", "embed-sel", "stat-sel", "stat-syn"]


def run_or_load(results: Path, rerun: bool, out: Path, strategy: str, seed: int, rounds: int,
                extra: list[str]) -> tuple[list[tuple], float, float]:
    """A run's (summary, floor, seconds): from its results file when one matches, else run it and keep one."""
    path = results / f"{strategy}-s{seed}-r{rounds}.json"
    if path.is_file() and not rerun:
        kept = json.loads(path.read_text())
        if kept["overrides"] == extra:
            print(f"{strategy} seed {seed}: from {path} ({kept['commit'][:8]}, {kept['cpu']}, {kept['precision']})",
                  file=sys.stderr)
            return [tuple(row) for row in kept["summary"]], kept["floor"], kept["seconds"]
    summary, floor, seconds = run_one(out, strategy, seed, rounds, extra)
    from sgi.workers.models import native_bf16

    results.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    path.write_text(json.dumps({
        "strategy": strategy, "seed": seed, "rounds": rounds, "overrides": extra,
        "summary": [list(row) for row in summary], "floor": floor, "seconds": seconds,
        "commit": commit or "unknown", "cpu": _cpu_name(), "precision": "bf16" if native_bf16() else "fp32",
        "date": datetime.date.today().isoformat(),
    }, indent=1))
    return summary, floor, seconds


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run_one(out: Path, strategy: str, seed: int, rounds: int, extra: list[str]) -> tuple[list[tuple], float, float]:
    name = f"{strategy}-s{seed}"
    # compose is not part of the comparison (it changes no weights) and would add to the ledger's time
    sets = [f"name={name}", f"runs_dir={out}", f"seed={seed}", f"loop.strategy={strategy}", f"loop.rounds={rounds}",
            "compose.enabled=false", *extra]
    subprocess.run([sys.executable, "-m", "sgi.orchestrator", "run", "--quiet",
                    *[a for s in sets for a in ("--set", s)]], check=True, stdout=subprocess.DEVNULL)
    store = Store(out / name / "sgi.duckdb", read_only=True)
    try:
        summary = store.round_summary()
        # Stage time from the ledger, not this call's wall time: a study killed half-way and
        # started again resumes each run (finished runs are skipped) and still reports true times.
        return summary, store.test_floor(), sum(row[5] or 0 for row in summary)
    finally:
        store.close()


def mean_se(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) / len(values) ** 0.5:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="config override for every run")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "stat_vs_sft",
                        help="where finished runs' summaries are kept and reused")
    parser.add_argument("--rerun", action="store_true", help="run even where a kept summary exists")
    args = parser.parse_args()

    rows: dict[tuple[str, int], list[tuple]] = defaultdict(list)  # (strategy, round) -> per-seed summaries
    walls: dict[str, list[float]] = defaultdict(list)
    floors = []
    for seed in args.seeds:
        for strategy in args.strategies:
            summary, floor, wall = run_or_load(args.results, args.rerun, args.out, strategy, seed, args.rounds, args.extra)
            if strategy == args.strategies[0]:
                floors.append(floor)  # the same test split for every strategy of a seed
            walls[strategy].append(wall)
            for row in summary:
                key = ("warm-up student", -1) if row[0] < 0 else (strategy, row[0])
                if row[0] >= 0 or strategy == args.strategies[0]:
                    rows[key].append(row)
            print(f"done {strategy} seed {seed} in {wall:.0f} s", file=sys.stderr)

    table = Table(title=f"held-out accuracy, seeds {args.seeds}, mean ± standard error")
    for col in ("strategy", "after round", "test", "weakest third (round 0)", "general", "train items", "s / run (ledger)"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    table.add_row("majority-answer floor", "", mean_se(floors), "", "", "", "")
    for (strategy, round_), summaries in sorted(rows.items(), key=lambda kv: (kv[0][1] >= 0, kv[0][0], kv[0][1])):
        table.add_row(
            strategy, "-" if round_ < 0 else str(round_ + 1),
            mean_se([s[1] for s in summaries]), mean_se([s[2] for s in summaries if s[2] is not None]),
            mean_se([s[3] for s in summaries if s[3] is not None]),
            str(sum(s[4] for s in summaries) // len(summaries)),
            "" if round_ < 0 else f"{statistics.mean(walls[strategy]):.0f}",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
