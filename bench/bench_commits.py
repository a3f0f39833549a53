"""What committing every batch costs the student's inference: per-batch writes vs one write.

    .venv/bin/python bench/bench_commits.py                   # 128 probe items, batch 16, 2 x (A, B)
    .venv/bin/python bench/bench_commits.py --items 64 --repeats 3

sgi writes each batch's scored attempts as soon as the batch is answered (one DuckDB
transaction per batch), so a killed run loses at most one batch. This runs the real path,
`stages.answer_probe` with the SmolLM2 student in-process, on embedded gym probe items,
in two modes, interleaved A B A B so both see the same machine:

  (a) per-batch: `answer_probe` as sgi runs it, `add_attempts` after every batch;
  (b) one write: the same `answering.answer_items` loop collecting the batches, one `add_attempts`
      at the end.

Each pass gets a fresh store file on disk (not tmpfs: commits pay their fsync). Prints
mode, pass, seconds, items/s, ratio to (b), and the seconds spent inside `add_attempts`
alone, which shows the overhead even where the passes' noise is larger than it. The Ray
actor hop to the store (in a real run) is not included.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sgi.orchestrator import stages
from sgi.orchestrator.build import student_args
from sgi.orchestrator.config import load_config
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.stages import Context, answering
from sgi.orchestrator.store import Store
from sgi.skills.tasks.gym import DEFAULT_PRESET, PRESETS, GymTask
from sgi.workers.models import resolve_model
from sgi.workers.student import TransformersStudent

ROUND = 0


class TimedStore(Store):
    """A real store that adds up the time spent inside `add_attempts` (one commit per call)."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.write_seconds = 0.0
        self.commits = 0

    def add_attempts(self, round_, attempts):
        start = time.perf_counter()
        try:
            return super().add_attempts(round_, attempts)
        finally:
            self.write_seconds += time.perf_counter() - start
            self.commits += 1


def probe_items(n: int):
    """n probe items of the embedded gym task, spread over its default preset's families."""
    families = PRESETS[DEFAULT_PRESET].families
    per_family = math.ceil(n / len(families))
    task = GymTask(families={f: 1 for f in families}, probe_per_family=per_family, test_per_family=1, general={})
    probe = [i for i in task.load_items() if i.split == "probe"]
    # round-robin over families so any n keeps the mix
    by_family: dict[str, list] = {}
    for item in probe:
        by_family.setdefault(item.family, []).append(item)
    mixed = [item for group in zip(*by_family.values()) for item in group]
    return task, mixed[:n]


def one_pass(mode: str, cfg, task, items, student, folder: Path) -> tuple[float, TimedStore, list]:
    store = TimedStore(folder / f"{mode}-{time.monotonic_ns()}.duckdb")
    store.add_items(items)  # setup, not timed
    ctx = Context(cfg=cfg, task=task, store=store, teacher=None, reporter=Reporter(mode="quiet"))
    start = time.perf_counter()
    if mode == "per-batch":
        stages.answer_probe(ctx, ROUND, student)  # exactly what sgi runs
    else:
        collected: list = []
        answering.answer_items(ctx, "answers", store.items("probe"), set(), student, 0, collected.extend)
        store.add_attempts(ROUND, collected)
    seconds = time.perf_counter() - start
    rows = store.attempts(ROUND)
    store.close()
    return seconds, store, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2, help="A B pairs, interleaved")
    ap.add_argument("--dir", type=Path, default=None, help="where the store files go (default: a temp dir on disk)")
    args = ap.parse_args()

    cfg = load_config(overrides=[f"student.batch_size={args.batch_size}", f"student.max_new_tokens={args.max_new_tokens}"])
    task, items = probe_items(args.items)
    student = TransformersStudent(**student_args(cfg, str(resolve_model(cfg.student.model))))
    student.generate(["warm-up"], ["Hello"])  # first call pays one-off kernel set-up

    modes = ("per-batch", "one write")
    results: dict[str, list[tuple[float, TimedStore]]] = {m: [] for m in modes}
    outputs = []
    disk = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=args.dir or disk, prefix="sgi-bench-commits-") as tmp:
        for rep in range(args.repeats):
            for mode in modes:
                seconds, store, rows = one_pass(mode, cfg, task, items, student, Path(tmp))
                results[mode].append((seconds, store))
                outputs.append(rows)
                print(f"  pass {rep + 1} {mode:<10} {seconds:7.2f} s", flush=True)

    base = statistics.mean(s for s, _ in results["one write"])
    table = Table(title=f"Per-batch commits vs one write: {len(items)} gym probe items, batch {args.batch_size}, "
                        f"max_new_tokens {args.max_new_tokens}, dtype {cfg.student.dtype}, {student_args(cfg, '')['threads']} threads")
    for col in ("mode", "pass", "seconds", "items/s", "ratio to (b)", "commits", "in add_attempts (s)", "writes share"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for label, mode in (("(a) per-batch", "per-batch"), ("(b) one write", "one write")):
        for n, (seconds, store) in enumerate(results[mode], 1):
            table.add_row(label, str(n), f"{seconds:.2f}", f"{len(items) / seconds:.2f}", f"{seconds / base:.3f}",
                          str(store.commits), f"{store.write_seconds:.3f}", f"{store.write_seconds / seconds:.2%}")
        mean_s = statistics.mean(s for s, _ in results[mode])
        mean_w = statistics.mean(st.write_seconds for _, st in results[mode])
        table.add_row(label, "mean", f"{mean_s:.2f}", f"{len(items) / mean_s:.2f}", f"{mean_s / base:.3f}",
                      str(results[mode][0][1].commits), f"{mean_w:.3f}", f"{mean_w / mean_s:.2%}", end_section=True)
    console = Console(width=140)
    console.print(table)
    same = all(rows == outputs[0] for rows in outputs)
    console.print(f"stored attempts identical in every pass: {'yes' if same else 'no'}; "
                  f"CPU cores: {os.cpu_count()}; load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
