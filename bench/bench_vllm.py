"""vLLM figures for issue 5: the LLM teacher's throughput and the two student engines.

    .venv/bin/python bench/bench_vllm.py                 # both tables (needs bash .ci/vllm-venv first)
    .venv/bin/python bench/bench_vllm.py --only teacher  # or --only student

Teacher: a real `vllm serve` of SmolLM2-135M-Instruct on 127.0.0.1 (prefix caching off, so
repeating the same items at each level measures the same work), the `llm` teacher
labelling the same items against a fixed catalogue at max_concurrency 1, 8 and 32, no
cache. Student: the probe split of the embedded default answered greedily by the
transformers engine (this venv) and by the vLLM engine (the vLLM venv, a subprocess),
same prompts and dtype; generated tokens per second, model load excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def probe_prompts(n: int) -> tuple[list[str], list[str]]:
    from sgi.skills.tasks.gym import GymTask

    items = [i for i in GymTask(probe_per_family=40, test_per_family=1, general={}).load_items() if i.split == "probe"]
    items = items[:n]
    return [i.item_id for i in items], [i.question for i in items]


def time_student(engine: str, model: str, n: int, dtype: str, in_process: bool | None = None) -> dict:
    """Load the engine, answer n probe prompts once to warm up, then time a second pass
    (`in_process`: vLLM's engine in this process or, False, in vLLM's own processes)."""
    from sgi.orchestrator.config import RunConfig

    ids, prompts = probe_prompts(n)
    cfg = RunConfig()
    kwargs = {"system_prompt": cfg.student.system_prompt, "batch_size": cfg.student.batch_size,
              "max_new_tokens": cfg.student.max_new_tokens, "dtype": dtype, "seed": 0}
    if engine.startswith("vllm"):
        from sgi.workers.vllm_student import VLLMStudent as Engine

        kwargs["in_process"] = in_process
    else:
        from sgi.workers.student import TransformersStudent as Engine
    start = time.perf_counter()
    student = Engine(model, **kwargs)
    load_s = time.perf_counter() - start
    student.generate(ids[:8], prompts[:8])
    start = time.perf_counter()
    gens = student.generate(ids, prompts)
    seconds = time.perf_counter() - start
    tokens = sum(g.n_tokens for g in gens)
    return {"engine": engine, "items": len(gens), "tokens": tokens, "seconds": seconds, "load_s": load_s,
            "texts": [g.text for g in gens]}


def bench_student(vllm_python: Path, model: Path, n: int, dtype: str) -> None:
    """The transformers engine here; vLLM in its venv, once with its engine in vLLM's own
    processes (its default) and once in the student's process (sgi's default on CPUs)."""
    rows = [time_student("transformers", str(model), n, dtype)]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"}
    for way in ("processes", "in-process"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([str(vllm_python), __file__, "--student-worker", out.name, "--model", str(model),
                            "--items", str(n), "--dtype", dtype, "--vllm-way", way], check=True, env=env)
            rows.append(json.loads(Path(out.name).read_text()))
    table = Table(title=f"student inference: {n} probe items, greedy, max_new_tokens 16, {dtype}")
    for col in ("engine", "load s", "answer s", "tokens", "tokens/s", "ratio", "same answers"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    base = rows[0]["tokens"] / rows[0]["seconds"]
    for row in rows:
        rate = row["tokens"] / row["seconds"]
        agree = sum(a == b for a, b in zip(rows[0]["texts"], row["texts"]))
        table.add_row(row["engine"], f"{row['load_s']:.1f}", f"{row['seconds']:.1f}", str(row["tokens"]),
                      f"{rate:.0f}", f"{rate / base:.2f}x", f"{agree}/{n}")
    Console().print(table)


def bench_teacher(vllm_python: Path, model: Path, n: int, levels: list[int]) -> None:
    from support.vllm_server import SERVED_NAME, VLLMServer

    from sgi.skills.llm_teacher import LLMTeacher, load_templates
    from sgi.skills.rules import RulesTeacher
    from sgi.skills.tasks.gym import GymTask
    from sgi.workers.llm_client import ChatClient

    items = [i for i in GymTask(test_per_family=1, probe_per_family=1, general={}).load_items() if i.split == "pool"]
    items = items[:: max(1, len(items) // n)][:n]
    catalogue = RulesTeacher().build_catalogue(items)[:10]
    with tempfile.TemporaryDirectory() as tmp:
        server = VLLMServer(vllm_python, model, Path(tmp) / "serve.log", extra=["--no-enable-prefix-caching"])
        try:
            server.wait_ready()
            table = Table(title=f"LLM teacher labelling {n} items against vllm serve (SmolLM2-135M, CPU)")
            for col in ("max_concurrency", "seconds", "items/s", "labelled", "requests", "ratio"):
                table.add_column(col, justify="right")
            first = None
            for level in levels:
                client = ChatClient(server.base_url, SERVED_NAME, max_concurrency=level, parse_retries=0)
                teacher = LLMTeacher(client.complete, load_templates())
                start = time.perf_counter()
                labels = teacher.label(items, catalogue)
                seconds = time.perf_counter() - start
                rate = n / seconds
                first = first or rate
                table.add_row(str(level), f"{seconds:.1f}", f"{rate:.2f}", str(len({l.item_id for l in labels})),
                              str(client.sent), f"{rate / first:.2f}x")
            Console().print(table)
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["teacher", "student"])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--student-worker", type=Path, help=argparse.SUPPRESS)  # the vLLM side, run in its venv
    parser.add_argument("--vllm-way", choices=["processes", "in-process"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.student_worker:
        result = time_student(f"vllm ({args.vllm_way})", str(args.model), args.items, args.dtype,
                              in_process=args.vllm_way == "in-process")
        args.student_worker.write_text(json.dumps(result))
        return

    from support.vllm_server import vllm_python

    from sgi.workers.models import resolve_model

    python = vllm_python()
    if python is None:
        sys.exit("no vLLM virtualenv: run `bash .ci/vllm-venv` first (or set SGI_VLLM_PYTHON)")
    model = args.model or resolve_model("smollm2")
    if args.only in (None, "teacher"):
        bench_teacher(python, model, args.items, args.levels)
    if args.only in (None, "student"):
        bench_student(python, model, args.items, args.dtype)


if __name__ == "__main__":
    main()
