"""Batched vs one-at-a-time student inference on the same items.

    .venv/bin/python bench/bench_inference.py            # 32 items, batch 16 vs batch 1
    .venv/bin/python bench/bench_inference.py --items 64 --dtype float32

Prints one table: mode, items, seconds, items/s, generated tokens/s, speed-up over batch 1.
"""

from __future__ import annotations

import argparse
import random
import time

from sgi.workers.models import resolve_student
from sgi.workers.student import TransformersStudent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--model", default="smollm2", help="'smollm2' or a local HF model folder")
    args = ap.parse_args()

    rng = random.Random(0)
    questions = [f"What is {rng.randint(2, 99)} {rng.choice('+-*')} {rng.randint(2, 99)}?" for _ in range(args.items)]
    ids = [f"q{i}" for i in range(args.items)]
    student = TransformersStudent(
        resolve_student(args.model), "Give only the final answer.", dtype=args.dtype, max_new_tokens=args.max_new_tokens
    )
    student.generate(["warm-up"], ["Hello"])  # first call pays one-off kernel set-up

    rows = []
    for mode, batch in (("sequential", 1), ("batched", args.batch_size)):
        student.batch_size = batch
        start = time.perf_counter()
        gens = student.generate(ids, questions)
        seconds = time.perf_counter() - start
        rows.append((f"{mode} (batch {batch})", seconds, sum(g.n_tokens for g in gens)))

    base = rows[0][1]
    print(f"model={args.model} dtype={args.dtype} max_new_tokens={args.max_new_tokens}")
    print(f"{'mode':<22}{'items':>6}{'seconds':>9}{'items/s':>9}{'gen tok/s':>11}{'speed-up':>10}")
    for mode, seconds, tokens in rows:
        print(f"{mode:<22}{args.items:>6}{seconds:>9.2f}{args.items / seconds:>9.2f}{tokens / seconds:>11.1f}{base / seconds:>9.1f}x")


if __name__ == "__main__":
    main()
