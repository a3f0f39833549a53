"""Probe-split inference with one student actor vs two: the scaling ratio and the pool's overhead.

    .venv/bin/python bench/bench_cluster.py                  # 3 settings x 2 passes, interleaved
    .venv/bin/python bench/bench_cluster.py --passes 1 --items 128

Each pass is the real infer stage (`stages.answer_probe`) of a fresh run of the embedded
default on a local Ray cluster: the student pool answers the probe split in batches and
the driver scores each batch and sends it to the store actor as it arrives. Settings, on
the same items, interleaved A B C A B C so all see the same machine:

  (a) 1 actor x 1 thread    (ray.num_cpus=1): the per-actor baseline of the scaling ratio;
  (b) 1 actor x all threads (the default on this machine);
  (c) 2 actors x 1 thread   (ray.student_actors=2, ray.student_cpus=1).

Model loading is excluded (every actor answers one prompt before the clock starts); the
set-up stages (task, labels, cached warm-up) run once per pass outside it. `overhead` is
the share of the actors' time inside the stage not spent in `generate`: transport,
scheduling, and the driver scoring and writing while an actor has nothing queued.

`--trainer` times a round's training instead: one trainer actor with both threads against
two data-parallel Ray Train workers with one thread each (gloo), same examples, steps and
global batch, Ray Train's start included (it is paid every round).

`--writer` measures instead what bounds a large cluster: the one DuckDB writer. Scored
answers are sent to a real store actor (`Store.add_attempts`, one transaction per call,
over Ray as in a run) in batches of several sizes; rows/s is the most answers a run's
inference stages can land, whatever the number of GPUs producing them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sgi.orchestrator import loop, stages
from sgi.orchestrator.config import load_config
from sgi.orchestrator.progress import Reporter

SETTINGS = {
    "(a) 1 actor x 1 thread": ["ray.num_cpus=1"],
    "(b) 1 actor x 2 threads": ["ray.num_cpus=2"],
    "(c) 2 actors x 1 thread": ["ray.num_cpus=2", "ray.student_actors=2", "ray.student_cpus=1"],
}


def one_pass(runs: Path, name: str, overrides: list[str]) -> tuple[float, float, int]:
    """(seconds, overhead share, items) of round 0's infer stage in a fresh run."""
    import ray

    cfg = load_config(None, [f"runs_dir={runs}", f"name={name}", "compose.enabled=false", *overrides])
    try:
        with loop.Session(cfg, Reporter(quiet=True)) as s:
            pool = s.engines.student(loop.setup(s))  # the pool the loop would use, loaded on first touch
            for engine in pool.engines:
                engine.render("warm")  # waits until the actor has built its model
            mark = pool.mark()
            began = time.perf_counter()
            stages.answer_probe(s.ctx, 0, pool)
            seconds = time.perf_counter() - began
            return seconds, pool.overhead(mark), len(s.ctx.store.items("probe"))
    finally:
        ray.shutdown()  # the next setting starts its own cluster, sized by its ray.num_cpus


def writer(rows: int, batch_sizes: list[int]) -> None:
    """Rows/s into one store actor by batch size (fresh file per size; no model involved)."""
    from sgi.orchestrator.store import ScoredAttempt, Store
    from sgi.skills.runs import STORE_FILE
    from sgi.skills.records import Generation
    from sgi.workers import actors

    actors.start_ray(None, None)
    table = Table(title=f"The one DuckDB writer: {rows} scored answers into a store actor, by batch size")
    for col in ("rows per call", "calls", "seconds", "rows/s", "ms per call"):
        table.add_column(col, justify="right")
    answers = [ScoredAttempt(Generation(f"item-{i:07d}", 0, f"The answer is {i % 977}.", 12, 0.8, 0.4, 0.3),
                             str(i % 977), i % 3 == 0) for i in range(rows)]
    with tempfile.TemporaryDirectory(prefix="sgi-bench-writer-", dir="/var/tmp") as tmp:
        for size in batch_sizes:
            store = actors.spawn(Store, {"path": Path(tmp) / f"{size}" / STORE_FILE}, use_ray=True, role="store")
            store.ledger()  # the actor is up and its file open
            began = time.perf_counter()
            for start in range(0, rows, size):
                store.add_attempts(0, answers[start : start + size])
            seconds = time.perf_counter() - began
            calls = -(-rows // size)
            table.add_row(str(size), str(calls), f"{seconds:.2f}", f"{rows / seconds:,.0f}", f"{1000 * seconds / calls:.1f}")
            actors.stop(store)
    Console(width=140).print(table)


def trainer(steps: int) -> None:
    """Seconds of one training call: 1 trainer x 2 threads vs 2 DDP workers x 1 thread."""
    from sgi.orchestrator import build
    from sgi.skills.tasks.gym import GymTask
    from sgi.workers import actors
    from sgi.workers.models import resolve_model
    from sgi.workers.train_host import TrainerHost

    cfg = load_config(None, [])
    pool = [i for i in GymTask(seed=0).load_items() if i.split == "pool"]
    examples = [(i.question, i.answer) for i in pool[: steps * cfg.train.batch_size]]
    args = {**build.train_args(cfg), "steps": steps}
    actors.start_ray(None, 2, state_api=True)
    table = Table(title=f"One round's training, {steps} LoRA steps x batch {cfg.train.batch_size}, SmolLM2-135M")
    for col in ("trainer", "seconds (call)", "s/step inside", "final loss"):
        table.add_column(col, justify="left" if col == "trainer" else "right")
    with tempfile.TemporaryDirectory(prefix="sgi-bench-trainer-", dir="/var/tmp") as tmp:
        for label, host_args, cpus in (("1 actor x 2 threads", {"threads": 2}, 2),
                                       ("2 DDP workers x 1 thread", {"workers": 2, "worker_cpus": 1}, 0)):
            host = actors.spawn(TrainerHost, host_args, use_ray=True, role="trainer", num_cpus=cpus, max_concurrency=4)
            began = time.perf_counter()
            m = host.train(resolve_model(), examples, Path(tmp) / label.replace(" ", "-"), **args)
            seconds = time.perf_counter() - began
            actors.stop(host)
            table.add_row(label, f"{seconds:.1f}", f"{m['s_per_step']:.2f}", f"{m['final_loss']:.3f}")
    Console(width=140).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--items", type=int, default=None, help="probe items per family (default: the config's 40)")
    ap.add_argument("--writer", action="store_true", help="measure the DuckDB writer instead")
    ap.add_argument("--rows", type=int, default=20000, help="--writer: answers written per batch size")
    ap.add_argument("--trainer", action="store_true", help="time one trainer against two DDP workers instead")
    ap.add_argument("--steps", type=int, default=20, help="--trainer: LoRA steps per training")
    args = ap.parse_args()
    if args.trainer:
        trainer(args.steps)
        return
    if args.writer:
        writer(args.rows, [16, 256, 4096])
        return
    extra = [f"task.gym.probe_per_family={args.items}"] if args.items else []

    results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="sgi-bench-cluster-", dir="/var/tmp") as tmp:
        for p in range(args.passes):
            for n, (label, overrides) in enumerate(SETTINGS.items()):
                result = one_pass(Path(tmp), f"p{p}-s{n}", overrides + extra)
                results[label].append(result)
                print(f"  pass {p + 1} {label}: {result[0]:.1f} s, overhead {result[1]:.1%}", flush=True)

    base = statistics.mean(s for s, _, _ in results["(a) 1 actor x 1 thread"])
    items = next(iter(results.values()))[0][2]
    table = Table(title=f"Probe-split inference, {items} items, by student actors (mean of {args.passes} passes)")
    for col in ("setting", "seconds", "items/s", "speed-up vs (a)", "overhead"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for label, rows in results.items():
        seconds = statistics.mean(s for s, _, _ in rows)
        table.add_row(label, " / ".join(f"{s:.1f}" for s, _, _ in rows), f"{items / seconds:.2f}",
                      f"{base / seconds:.2f}x", " / ".join(f"{o:.1%}" for _, o, _ in rows))
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
