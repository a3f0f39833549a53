"""Student inference by batch size on the same items: one at a time, 16, 32, 64 prompts together.

    .venv/bin/python bench/bench_inference.py                       # 64 default test items, batch 1 16 32 64
    .venv/bin/python bench/bench_inference.py --dtype float32 --model ~/.cache/sgi/warmup/<key>/merged
    .venv/bin/python bench/bench_inference.py --items 32 --batch-sizes 1 16   # the original comparison

Items are the embedded default's held-out test split (every family in turn, as the evaluate
stage answers them), prompted as the stages prompt them. Prints one table: batch size,
seconds, items/s, generated tokens/s, speed-up over the first batch size. A warm-up
student (`--model` its merged folder) answers like the students of a run, stopping at its
EOS; the base model rambles to max_new_tokens.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from sgi.orchestrator.config import StudentConfig
from sgi.skills.tasks.gym import GymTask
from sgi.workers.models import resolve_model
from sgi.workers.student import TransformersStudent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 32, 64])
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--model", default="smollm2", help="'smollm2' or a local HF model folder")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    test = [i for i in GymTask().load_items() if i.split == "test"]
    families = sorted({i.family for i in test})
    by_family = {f: [i for i in test if i.family == f] for f in families}
    items = [by_family[families[k % len(families)]][k // len(families)] for k in range(args.items)]
    items.sort(key=lambda i: i.item_id)  # the evaluate stage's order: by id, so families come in runs
    student = TransformersStudent(resolve_model(args.model), StudentConfig().system_prompt, dtype=args.dtype,
                                  max_new_tokens=args.max_new_tokens, threads=args.threads)
    student.generate(["warm-up"], ["Hello"])  # first call pays one-off kernel set-up

    rows = []
    for batch in args.batch_sizes:
        student.batch_size = batch
        start = time.perf_counter()
        gens = student.generate([i.item_id for i in items], [i.question for i in items])
        rows.append((batch, time.perf_counter() - start, sum(g.n_tokens for g in gens)))

    table = Table(title=f"{len(items)} test items of {len(families)} families, model {args.model}, {args.dtype}, "
                        f"{args.threads} threads, max_new_tokens {args.max_new_tokens}")
    for col in ("batch size", "seconds", "items/s", "generated tok/s", "speed-up"):
        table.add_column(col, justify="right")
    for batch, seconds, tokens in rows:
        table.add_row(str(batch), f"{seconds:.2f}", f"{len(items) / seconds:.2f}", f"{tokens / seconds:.1f}",
                      f"{rows[0][1] / seconds:.2f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
