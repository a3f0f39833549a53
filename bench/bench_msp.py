"""Missing-Skill-Profile query: DuckDB's `profiles` view against the same sums in pandas.

    .venv/bin/python bench/bench_msp.py [--rows 1000000 10000000] [--repeat 3]

Rows are attempt x skill pairs (every probe item carries two of 50 skills). Both sides
read the same tables of a real store file; pandas is timed on data already in memory,
DuckDB on the file, so the comparison favours pandas.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sgi.orchestrator.store import Store

N_SKILLS = 50


def fill(store: Store, pairs: int) -> None:
    n = pairs // 2
    db = store.db
    db.execute("INSERT INTO items SELECT 'i' || i, 'probe', 'f', 'q', (i % 7)::VARCHAR, [], '{}' FROM range(?) t(i)", [n])
    db.execute(
        f"""INSERT INTO item_skills
        SELECT 'i' || i, 's' || (i % {N_SKILLS}), 1.0 FROM range(?) t(i)
        UNION ALL
        SELECT 'i' || i, 's' || ((i % {N_SKILLS} + 1 + (i // {N_SKILLS}) % ({N_SKILLS} - 1)) % {N_SKILLS}), 1.0
        FROM range(?) t(i)""",
        [n, n],
    )
    db.execute("INSERT INTO attempts SELECT 0, 'i' || i, 0, 'x', 'x', hash(i) % 3 = 0, 3, 0.9, 0.5 FROM range(?) t(i)", [n])
    db.execute(
        f"INSERT INTO diagnoses SELECT 0, 'i' || i, 's' || (i % {N_SKILLS}), 'r' FROM range(?) t(i) WHERE hash(i) % 3 <> 0",
        [n],
    )


def pandas_profile(attempts, item_skills, items, diagnoses):
    """The `profiles` view, column for column, in pandas."""
    greedy = attempts[attempts["sample"] == 0]
    labelled = greedy.merge(item_skills, on="item_id").merge(items[["item_id", "answer"]], on="item_id")
    tried = labelled.groupby(["round", "skill"]).agg(attempts=("correct", "size"), correct=("correct", "sum"))
    per_answer = labelled.groupby(["round", "skill", "answer"]).size()
    floor = per_answer.groupby(level=["round", "skill"]).max() / per_answer.groupby(level=["round", "skill"]).sum()
    missing = diagnoses.groupby(["round", "skill"]).size().rename("missing")
    total = diagnoses.groupby("round").size().rename("total")
    out = tried.join(floor.rename("floor")).join(missing).fillna({"missing": 0}).reset_index()
    out = out.merge(total, on="round", how="left")
    out["missing_rate"] = out["missing"] / out["attempts"]
    out["share"] = out["missing"] / out["total"]
    out["accuracy"] = out["correct"] / out["attempts"]
    return out.sort_values(["missing_rate", "skill"], ascending=[False, True])


def best_of(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = Table(title="MSP over attempt x skill rows (best of %d)" % args.repeat)
    for col in ("rows", "duckdb s", "pandas s", "pandas / duckdb", "same result"):
        table.add_column(col, justify="right")
    for pairs in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "sgi.duckdb")
            fill(store, pairs)
            duck_s, duck = best_of(lambda: store.profile(0), args.repeat)
            frames = [store.db.execute(f"SELECT * FROM {t}").df() for t in ("attempts", "item_skills", "items", "diagnoses")]
            pandas_s, pdf = best_of(lambda: pandas_profile(*frames), args.repeat)
            same = [r[0] for r in duck] == list(pdf["skill"]) and [r[3] for r in duck] == [int(x) for x in pdf["missing"]]
            table.add_row(f"{pairs:,}", f"{duck_s:.3f}", f"{pandas_s:.3f}", f"{pandas_s / duck_s:.1f}x", str(same))
            store.close()
    Console().print(table)


if __name__ == "__main__":
    main()
