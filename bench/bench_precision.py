"""fp32 vs bf16 on this machine's CPU: a LoRA training step and batched generation of SmolLM2.

    .venv/bin/python bench/bench_precision.py                 # 2 train steps and 2 generations per precision
    .venv/bin/python bench/bench_precision.py --train-steps 2 --threads 2

Why: bf16 is fast only where the CPU does it in hardware (AVX-512 BF16 / AMX); elsewhere
torch emulates it. sgi picks the precision with `workers.models.native_bf16()` (student
dtype 'auto', train.bf16 None); this bench shows what that choice is worth here. Each
precision trains the same seeded LoRA on the same batch (8 gym pool items, answer-only
loss, via `fine_tune`'s own encoding and collator) and generates 16 tokens for the same
16 prompts. Precisions alternate per repeat so machine noise falls on both.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from rich.console import Console
from rich.table import Table

from sgi.orchestrator.config import StudentConfig
from sgi.workers.models import native_bf16, resolve_model
from sgi.workers.student import TransformersStudent
from sgi.workers.trainer import LORA_TARGETS, _answer_loss, _collate, _encode

SYSTEM = StudentConfig().system_prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=2)
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--system-prompt", default=SYSTEM)
    ap.add_argument("--preset", default="learnable", help="whose pool items; the 2026-11-25 AVX2 figures are the "
                    "hard preset's with the old system prompt (docs/benchmarks.md)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)

    from sgi.skills.tasks.gym import PRESETS, GymTask
    from transformers import AutoTokenizer

    path = resolve_model()
    tok = AutoTokenizer.from_pretrained(path)
    preset = PRESETS[args.preset]
    items = GymTask(families=preset.families, general=preset.general, seed=0).load_items()
    pool = [it for it in items if it.split == "pool"][:16]
    batch = _collate([_encode(tok, args.system_prompt, it.question, it.answer, 128) for it in pool[:8]],
                     tok.eos_token_id)

    train = {p: [] for p in ("fp32", "bf16")}
    for _ in range(args.train_steps):
        for p in train:
            train[p].append(_train_step(path, batch, bf16=p == "bf16"))
    gen = {p: [] for p in ("fp32", "bf16")}
    students = {p: TransformersStudent(path, args.system_prompt, dtype="bfloat16" if p == "bf16" else "float32",
                                       max_new_tokens=16, batch_size=16) for p in gen}
    for _ in range(args.generations):
        for p, student in students.items():
            start = time.perf_counter()
            student.generate([str(i) for i in range(len(pool))], [it.question for it in pool])
            gen[p].append(time.perf_counter() - start)

    console = Console(width=160)
    console.print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16()}, "
                  f"{args.threads} torch threads")
    table = Table(title="SmolLM2-135M: fp32 vs bf16 on this CPU (median seconds)")
    for col in ("precision", "LoRA step (batch 8)", "each step", "generate 16 prompts x 16 tokens", "each"):
        table.add_column(col, justify="left" if col == "precision" else "right")
    for p in ("fp32", "bf16"):
        table.add_row(p, f"{statistics.median(train[p]):.2f}", " / ".join(f"{t:.2f}" for t in train[p]),
                      f"{statistics.median(gen[p]):.2f}", " / ".join(f"{t:.2f}" for t in gen[p]))
    console.print(table)
    console.print(f"bf16 / fp32: training {statistics.median(train['bf16']) / statistics.median(train['fp32']):.2f}x, "
                  f"generation {statistics.median(gen['bf16']) / statistics.median(gen['fp32']):.2f}x "
                  "(above 1 = bf16 slower)")


def _train_step(path, batch, *, bf16: bool) -> float:
    """One forward/backward/AdamW step of a fresh seeded LoRA model (fp32 weights, optional bf16 autocast)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        loss = _answer_loss(model(**inputs, use_cache=False), batch["labels"])  # as fine_tune computes it
    loss.backward()
    optim.step()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
