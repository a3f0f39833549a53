"""System 1 + System 2 on a finished run: does the student need System 2 less after each round?

    .venv/bin/python bench/bench_compose.py runs/default                 # program System 2, every round
    .venv/bin/python bench/bench_compose.py runs/default --set compose.system2=oracle

Copies the run's store (not its checkpoints: the copy points at them) to --out, so the
run itself is left as it was, then runs `sgi compose` there (subprocess) for every
evaluated round and prints, per round and router, System 1 alone, System 2 alone and the
composed solver at the threshold chosen on the probe split, with mean latency per item;
then, from the test curves, the escalation each round needs to reach --target of System
2's accuracy (the issue's "escalation at that accuracy", which should fall round by
round). Latencies are per-item shares of batch wall time, measured in the same command.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sgi.orchestrator.store import Store
from sgi.skills.runs import round_cell
from sgi.skills.solvers import system2_label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run directory")
    parser.add_argument("--out", type=Path, default=Path("runs/compose-bench"))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="compose override, e.g. "
                        "compose.system2=oracle")
    parser.add_argument("--target", type=float, default=0.95, help="share of System 2's test accuracy")
    args = parser.parse_args()

    copy = args.out / args.run.name
    if not (copy / "sgi.duckdb").exists():
        copy.mkdir(parents=True, exist_ok=True)
        shutil.copy2(args.run / "sgi.duckdb", copy / "sgi.duckdb")
    sets = [a for s in args.extra for a in ("--set", s)]
    subprocess.run([sys.executable, "-m", "sgi.orchestrator", "compose", str(copy), "--quiet", *sets], check=True)

    store = Store(copy / "sgi.duckdb", read_only=True)
    try:
        summary, curve = store.compose_summary(), store.compose_curve()
    finally:
        store.close()
    console = Console(width=160)
    console.print(_summary_table(summary))
    console.print(_escalation_table(summary, curve, args.target))


def _summary_table(summary: list[tuple]) -> Table:
    table = Table(title="test split, threshold chosen on probe (target 0.95 x System 2's probe accuracy)")
    for col in ("round", "router", "System 2", "S1 acc", "S2 acc", "composed", "composed / S2", "escalated",
                "ms S1", "ms S2", "ms composed", "composed / S2 time", "goal met"):
        table.add_column(col, justify="left" if col in ("router", "System 2") else "right")
    for r, router, system2, _, s1, s2, both, up, s1_s, s2_s, both_s, _ in summary:
        ratio, time_ratio = both / s2 if s2 else 0.0, both_s / s2_s if s2_s else 0.0
        met = ratio >= 0.95 and up <= 0.25 and time_ratio <= 0.40
        table.add_row(round_cell(r), router, system2_label(system2), f"{s1:.3f}", f"{s2:.3f}", f"{both:.3f}",
                      f"{ratio:.2f}", f"{up:.0%}", f"{1000 * s1_s:.0f}", f"{1000 * s2_s:.0f}", f"{1000 * both_s:.0f}",
                      f"{time_ratio:.2f}", "yes" if met else "no")
    return table


def _escalation_table(summary: list[tuple], curve: list[tuple], target: float) -> Table:
    """Per round and router: the least test escalation whose accuracy reaches target x System 2's."""
    s2 = {(r, router): row[5] for row in summary for r, router in [(row[0], row[1])]}
    table = Table(title=f"escalation needed on test for {target:.0%} of System 2's accuracy (from the curve)")
    routers = sorted({row[1] for row in summary})
    for col in ("round", *routers):
        table.add_column(col, justify="right")
    for r in sorted({row[0] for row in summary}):
        cells = []
        for router in routers:
            points = [c for c in curve if c[0] == r and c[1] == router and c[2] == "test"]
            reaching = [c[4] for c in points if c[5] >= target * s2.get((r, router), 1.0)]
            cells.append(f"{min(reaching):.0%}" if reaching else "never")
        table.add_row(round_cell(r), *cells)
    return table


if __name__ == "__main__":
    main()
