"""Token-level collaboration (FS-GEN) against each model decoding alone, on the same items.

    .venv/bin/python bench/bench_collab.py                          # base SmolLM2 as both (the floor of the overhead)
    .venv/bin/python bench/bench_collab.py --student runs/default/checkpoints/round-1/merged --larger smollm2

For each threshold t the student decodes greedily and the larger model chooses the tokens
where the student's top-1 probability is below t. Prints one table: seconds per item,
the share of answer tokens the larger model chose, how many answers equal each model's
own greedy answer, and the time relative to the student alone (batched `generate`).
"""

from __future__ import annotations

import argparse
import random
import time

from sgi.orchestrator.config import StudentConfig
from sgi.workers.collab import TokenCollaboration
from sgi.workers.models import resolve_model
from sgi.workers.student import TransformersStudent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="smollm2", help="'smollm2' or a local HF model folder")
    ap.add_argument("--larger", default="smollm2", help="a model with the student's tokenizer")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7, 0.9, 2.0])
    ap.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    args = ap.parse_args()

    rng = random.Random(0)
    questions = [f"What is {rng.randint(2, 999)} {rng.choice('+-*')} {rng.randint(2, 99)}?" for _ in range(args.items)]
    ids = [f"q{i}" for i in range(args.items)]
    common = {"system_prompt": StudentConfig().system_prompt,
              "batch_size": 16, "max_new_tokens": 16, "dtype": args.dtype}
    student_path, larger_path = resolve_model(args.student), resolve_model(args.larger)

    alone = {}
    for name, path in (("student", student_path), ("larger", larger_path)):
        engine = TransformersStudent(path, **common)
        engine.generate(["warm-up"], ["Hello"])  # one-off kernel set-up
        start = time.perf_counter()
        alone[name] = ([g.text for g in engine.generate(ids, questions)], time.perf_counter() - start)
        del engine

    collab = TokenCollaboration(larger_path, model_path=student_path, **common)
    collab.generate(["warm-up"], ["Hello"], 0.5)
    base = alone["student"][1]
    print(f"student={args.student} larger={args.larger} items={args.items} dtype={args.dtype}")
    print(f"{'decoder':<24}{'s/item':>8}{'larger-model tokens':>21}{'= student':>11}{'= larger':>10}{'time / student':>16}")
    for name, (texts, seconds) in alone.items():
        share = "0%" if name == "student" else "100%"
        same = [sum(a == b for a, b in zip(texts, alone[k][0])) for k in ("student", "larger")]
        print(f"{name + ' alone':<24}{seconds / args.items:>8.3f}{share:>21}{same[0]:>11}{same[1]:>10}"
              f"{seconds / base:>15.2f}x")
    for t in args.thresholds:
        start = time.perf_counter()
        out = collab.generate(ids, questions, t)
        seconds = time.perf_counter() - start
        share = sum(s.large_tokens / s.n_tokens for s in out) / len(out)
        same = [sum(s.text == b for s, b in zip(out, alone[k][0])) for k in ("student", "larger")]
        print(f"{f'collaboration t = {t:g}':<24}{seconds / args.items:>8.3f}{share:>20.0%}{same[0]:>11}{same[1]:>10}"
              f"{seconds / base:>15.2f}x")


if __name__ == "__main__":
    main()
