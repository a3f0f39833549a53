"""Wall time of `sgi profile` on the embedded default, split by stage.

    .venv/bin/python bench/bench_profile.py            # first run: empty cache (conversion + warm-up)
    .venv/bin/python bench/bench_profile.py --warm     # reuse ~/.cache/sgi (warm-up cached)

Runs the real CLI in a subprocess into a temporary run directory, then prints the
stage ledger the run recorded, next to the command's total wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sgi.orchestrator.store import Store
from sgi.skills.runs import round_cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", action="store_true", help="keep the user's model and warm-up cache")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        if not args.warm:
            env["SGI_CACHE"] = str(Path(tmp) / "cache")
        sets = [a for o in [f"runs_dir={tmp}/runs", *args.overrides] for a in ("--set", o)]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sgi.orchestrator", "profile", "--quiet", *sets], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        total = time.perf_counter() - start
        store = Store(Path(tmp) / "runs" / "default" / "sgi.duckdb", read_only=True)
        ledger = store.ledger()
        store.close()
    table = Table(title=f"sgi profile, default task ({'warm' if args.warm else 'empty'} cache), {os.cpu_count()} cores")
    for col in ("round", "stage", "seconds", "detail"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for round_, stage, _status, seconds, detail in ledger:
        table.add_row(round_cell(round_, "setup"), stage, f"{seconds:.1f}", detail)
    staged = sum(r[3] for r in ledger)
    table.add_row("", "start-up, model conversion, Ray", f"{total - staged:.1f}", "outside the ledger")
    table.add_row("", "[bold]total wall time[/bold]", f"[bold]{total:.1f}[/bold]", "")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
