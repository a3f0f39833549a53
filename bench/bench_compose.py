"""System 1 + System 2 on a finished run: how much of System 2's gain does each router keep, at what cost?

    .venv/bin/python bench/bench_compose.py runs/default                 # program System 2, every evaluated round
    .venv/bin/python bench/bench_compose.py runs/default --set compose.system2=oracle
    .venv/bin/python bench/bench_compose.py --table                      # the kept results, nothing run

Copies the run's store (not its checkpoints: the copy points at them) to --out, so the run
itself is left as it was, then runs `sgi compose` there (subprocess) for every evaluated
round. Printed and kept, per round and router on the test split: System 1 alone, System 2
alone and composed at the threshold chosen on probe, the escalation, composed latency over
System 2's, and RouteLLM's measures (APGR; CPT(50/80/95%), the escalation needed to recover
that share of the gap between the two systems), with the random and oracle references
computed from the same answers; then the escalation each round needs on test for --target
of System 2's accuracy (sgi's specialization curve: it should fall round by round).

One JSON per composed run is kept in bench/results/compose/ with date, commit, CPU and
precision. System 2's answers come from the cross-run cache when an earlier composition
paid for them (`orchestrator/answers.py`), so latencies are the ones measured then.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from provenance import RESULTS, keep
from rich.console import Console
from rich.table import Table

from sgi.orchestrator.store import Store
from sgi.skills.runs import round_cell
from sgi.skills.solvers import system2_label

OUT = RESULTS / "compose"
# The goals of issue 20 (after two rounds on the default): the learned router recovers 80% of
# the gap by escalating at most 40%; some router keeps 95% of System 2's accuracy escalating at
# most half the items, at most half System 2's latency.
GOAL_CPT80 = 0.40
GOAL_KEEP, GOAL_ESCALATION, GOAL_TIME = 0.95, 0.50, 0.50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", help="a finished run directory")
    parser.add_argument("--out", type=Path, default=Path("runs/compose-bench"))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="compose override, e.g. "
                        "compose.system2=oracle")
    parser.add_argument("--target", type=float, default=0.95, help="share of System 2's test accuracy")
    parser.add_argument("--table", action="store_true", help="print every kept result, run nothing")
    args = parser.parse_args()
    console = Console(width=170)
    if args.table or args.run is None:
        for path in sorted(OUT.glob("*.json")):
            show(console, json.loads(path.read_text()))
        return
    show(console, keep(OUT / f"{_label(args.run, args.extra)}.json", measure(args)))


def measure(args: argparse.Namespace) -> dict:
    copy = args.out / args.run.name
    if not (copy / "sgi.duckdb").exists():
        copy.mkdir(parents=True, exist_ok=True)
        shutil.copy2(args.run / "sgi.duckdb", copy / "sgi.duckdb")
    sets = [a for s in args.extra for a in ("--set", s)]
    subprocess.run([sys.executable, "-m", "sgi.orchestrator", "compose", str(copy), "--quiet", *sets], check=True)
    store = Store(copy / "sgi.duckdb", read_only=True)
    try:
        summary, curve, metrics = store.compose_summary(), store.compose_curve(), store.compose_metrics()
    finally:
        store.close()
    measured = {(m.round, m.router): m for m in metrics if m.split == "test"}
    rows = []
    for s in summary:
        m = measured.get((s.round, s.router))
        points = [c for c in curve if c.round == s.round and c.router == s.router and c.split == "test"]
        reaching = [c.escalation for c in points if c.accuracy >= args.target * s.system2_accuracy]
        rows.append({"round": s.round, "router": s.router, "system2": s.system2, "items": s.items,
                     "system1": s.system1_accuracy, "system2_accuracy": s.system2_accuracy,
                     "composed": s.composed_accuracy, "escalated": s.escalation,
                     "time_over_system2": s.composed_seconds / s.system2_seconds if s.system2_seconds else None,
                     "escalation_for_target": min(reaching) if reaching else None,
                     **_measures(m)})
    references = [{"round": m.round, "router": m.router, **_measures(m)} for m in metrics
                  if m.split == "test" and m.router in ("random", "oracle")]
    return {"run": str(args.run), "overrides": args.extra, "target": args.target, "rows": rows,
            "references": references}


def _measures(m) -> dict:
    if m is None:
        return {"apgr": None, "cpt50": None, "cpt80": None, "cpt95": None}
    return {"apgr": m.apgr, "cpt50": m.cpt50, "cpt80": m.cpt80, "cpt95": m.cpt95}


def _label(run: Path, extra: list[str]) -> str:
    digest = hashlib.sha1(json.dumps(extra).encode()).hexdigest()[:6]
    return f"{run.name}-{digest}" if extra else run.name


def show(console: Console, kept: dict) -> None:
    where = f"{kept['run']} {' '.join(kept['overrides'])}".strip()
    console.print(f"[bold]{where}[/bold]  ({kept.get('date')}, {kept.get('commit', '')[:8]}, {kept.get('cpu')}, "
                  f"{kept.get('precision')})", highlight=False)
    console.print(_summary_table(kept))
    console.print(_reference_table(kept))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _summary_table(kept: dict) -> Table:
    table = Table(title=f"test split, threshold chosen on probe (target {kept['target']:.2f} x System 2's probe "
                        f"accuracy); APGR and CPT as RouteLLM measures them")
    for col in ("round", "router", "System 2", "S1 acc", "S2 acc", "composed", "/ S2", "escalated", "time / S2",
                f"escalation for {kept['target']:.0%}", "APGR", "CPT(50%)", "CPT(80%)", "CPT(95%)", "goals"):
        table.add_column(col, justify="left" if col in ("router", "System 2", "goals") else "right")
    for r in kept["rows"]:
        keep_share = r["composed"] / r["system2_accuracy"] if r["system2_accuracy"] else 0.0
        goals = []
        if r["router"] == "learned" and r["cpt80"] is not None:
            goals.append("CPT80 " + ("met" if r["cpt80"] <= GOAL_CPT80 else "not met"))
        pays = (keep_share >= GOAL_KEEP and r["escalated"] <= GOAL_ESCALATION
                and (r["time_over_system2"] or 0) <= GOAL_TIME)
        goals.append("pays" if pays else "does not pay")
        table.add_row(round_cell(r["round"]), r["router"], system2_label(r["system2"]), f"{r['system1']:.3f}",
                      f"{r['system2_accuracy']:.3f}", f"{r['composed']:.3f}", f"{keep_share:.2f}",
                      _pct(r["escalated"]), f"{r['time_over_system2']:.2f}" if r["time_over_system2"] else "-",
                      _pct(r["escalation_for_target"]),
                      "-" if r["apgr"] is None else f"{r['apgr']:.2f}", _pct(r["cpt50"]), _pct(r["cpt80"]),
                      _pct(r["cpt95"]), ", ".join(goals))
    return table


def _reference_table(kept: dict) -> Table:
    table = Table(title="references from the same answers: random routing and the oracle")
    for col in ("round", "router", "APGR", "CPT(50%)", "CPT(80%)", "CPT(95%)"):
        table.add_column(col, justify="left" if col == "router" else "right")
    for r in kept["references"]:
        table.add_row(round_cell(r["round"]), r["router"], "-" if r["apgr"] is None else f"{r['apgr']:.2f}",
                      _pct(r["cpt50"]), _pct(r["cpt80"]), _pct(r["cpt95"]))
    return table


if __name__ == "__main__":
    main()
