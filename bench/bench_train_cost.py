"""Training cost: where a fine-tune's tokens go, what each saving is worth, and at what accuracy.

    .venv/bin/python bench/bench_train_cost.py                  # tokens, speed, accuracy (~25 min here)
    .venv/bin/python bench/bench_train_cost.py --only tokens speed --fp32   # the AVX2 machine's precision

Training is the budget of every round, and on a CPU its cost is the tokens it pushes
through the model. Three tables, each with the old setting as the baseline in the same
command:

1. tokens per example of the embedded default's pool: chat template + system prompt,
   question, answer (+ EOS), for the old and the new system prompt;
2. seconds per LoRA step and training tokens/s of `fine_tune` (the stages' own call) for
   the old setting and each saving added in turn: the short system prompt, projecting only
   the answer positions onto the vocabulary (`workers/trainer.py: _answer_loss`), length-
   grouped batches; against the machine's arithmetic limit (a large matmul on the same
   threads, and FLOPs per token of SmolLM2-135M);
3. held-out accuracy after training from the base model: each saving at equal steps (it
   must not cost accuracy), and a larger learning rate or a full fine-tune at equal wall
   time.

Results are kept in bench/results/train_cost/ with date, commit, CPU and precision.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from provenance import RESULTS, keep
from rich.console import Console
from rich.table import Table

from sgi.skills.tasks.gym import GymTask
from sgi.workers import trainer
from sgi.workers.models import native_bf16, resolve_model
from sgi.workers.student import TransformersStudent, render_chat

OLD_PROMPT = "You are a careful math student. Reply with only the final answer."
BATCH = 8


@contextmanager
def full_logits() -> Iterator[None]:
    """The trainer as it was: the model's own loss over logits at every position."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    collate, loss = trainer._collate, trainer._answer_loss
    trainer._collate = lambda rows, pad: {k: v for k, v in collate(rows, pad).items() if k != "logits_to_keep"}
    trainer._answer_loss = lambda out, labels, num_items_in_batch=None: ForCausalLMLoss(
        out.logits, labels, out.logits.shape[-1], num_items_in_batch=num_items_in_batch)
    try:
        yield
    finally:
        trainer._collate, trainer._answer_loss = collate, loss


def token_table(tok, pool, prompts: dict[str, str]) -> tuple[Table, dict]:
    table = Table(title=f"tokens per training example ({len(pool)} pool items of the embedded default)")
    for col in ("system prompt", "template + system", "question", "answer + EOS", "total", "answer share"):
        table.add_column(col, justify="left" if col == "system prompt" else "right")
    kept = {}
    question = statistics.mean(len(tok(i.question, add_special_tokens=False).input_ids) for i in pool)
    answer = statistics.mean(len(tok(i.answer, add_special_tokens=False).input_ids) + 1 for i in pool)
    for name, prompt in prompts.items():
        total = statistics.mean(len(tok(render_chat(tok, prompt, i.question), add_special_tokens=False).input_ids)
                                for i in pool) + answer
        kept[name] = {"template_system": total - question - answer, "question": question, "answer": answer,
                      "total": total}
        table.add_row(f"{name}: {prompt!r}", f"{total - question - answer:.1f}", f"{question:.1f}", f"{answer:.1f}",
                      f"{total:.1f}", f"{answer / total:.0%}")
    return table, kept


def matmul_peak(bf16: bool) -> float:
    """GFLOP/s of a 2048^2 matmul on this process's threads: the practical arithmetic limit."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    for _ in range(3):
        a @ b
    start, n = time.perf_counter(), 10
    for _ in range(n):
        a @ b
    return 2 * 2048**3 * n / (time.perf_counter() - start) / 1e9


def flops_per_step(model_path: Path, metrics: dict, head_positions: float, full: bool) -> float:
    """Matmul FLOPs one step executes: body weights at every position of the padded batch,
    the LM head at the projected positions; forward 2 per weight, backward 2 more
    (activations; LoRA's own weights are ~1% and left out) or 4 more for a full fine-tune
    (weight gradients too)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_path)
    head = c.hidden_size * c.vocab_size
    per_layer = 4 * c.hidden_size**2 * (1 + c.num_key_value_heads / c.num_attention_heads) / 2 \
        + 3 * c.hidden_size * c.intermediate_size
    body = c.num_hidden_layers * per_layer
    k = 6 if full else 4
    return k * (body * metrics["padded_tokens_per_step"] + head * head_positions)


def train(path: Path, examples, out: Path, **args) -> dict:
    return trainer.fine_tune(path, examples, out, batch_size=BATCH, seed=0, **args)


def evaluate(model_dir: Path, prompt: str, items, bf16: bool) -> float:
    student = TransformersStudent(model_dir, prompt, dtype="bfloat16" if bf16 else "float32", batch_size=16,
                                  max_new_tokens=16)
    task = GymTask()
    gens = student.generate([i.item_id for i in items], [i.question for i in items])
    return sum(task.is_correct(i, task.extract(i, g.text)) for i, g in zip(items, gens)) / len(items)


SPEED_VARIANTS = {  # name -> (system prompt, answer-only logits, length-grouped batches)
    "before (old prompt, full logits)": (OLD_PROMPT, False, False),
    "+ short system prompt": (None, False, False),
    "+ answer-only logits": (None, True, False),
    "+ length-grouped batches": (None, True, True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=["tokens", "speed", "accuracy"], default=["tokens", "speed", "accuracy"])
    ap.add_argument("--speed-steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2, help="speed variants run interleaved this often")
    ap.add_argument("--steps", type=int, default=60, help="accuracy: LoRA steps of the reference")
    ap.add_argument("--eval-items", type=int, default=400)
    ap.add_argument("--fp32", action="store_true", help="fp32 even where bf16 is native (the AVX2 machine's precision)")
    ap.add_argument("--prompt", default=None, help="the new system prompt; default: the config's")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    from sgi.orchestrator.config import StudentConfig

    new_prompt = args.prompt or StudentConfig().system_prompt
    bf16 = native_bf16() and not args.fp32
    console = Console(width=170)
    path = resolve_model()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    items = GymTask(seed=0).load_items()
    pool = [i for i in items if i.split == "pool"]
    test = [i for i in items if i.split == "test"]
    test = [i for n, i in enumerate(test) if n % max(1, len(test) // args.eval_items) == 0][: args.eval_items]
    examples = [(i.question, i.answer) for i in random.Random(0).choices(pool, k=args.steps * BATCH)]
    record: dict = {"precision_used": "bf16" if bf16 else "fp32", "new_prompt": new_prompt, "old_prompt": OLD_PROMPT}
    name = f"{time.strftime('%Y-%m-%d')}-{'bf16' if bf16 else 'fp32'}-{'-'.join(args.only)}"

    if "tokens" in args.only:
        table, record["tokens"] = token_table(tok, pool, {"old": OLD_PROMPT, "new": new_prompt})
        console.print(table)

    with tempfile.TemporaryDirectory(prefix="sgi-train-cost-") as tmp:
        if "speed" in args.only:
            record["speed"] = speed(console, path, examples[: args.speed_steps * BATCH], Path(tmp), new_prompt,
                                    bf16, args)
        if "accuracy" in args.only:
            record["accuracy"] = accuracy(console, path, examples, test, Path(tmp), new_prompt, bf16, args)
    keep(RESULTS / "train_cost" / f"{name}.json", record)
    console.print(f"kept in {RESULTS / 'train_cost' / f'{name}.json'}")


def speed(console, path, examples, tmp: Path, new_prompt: str, bf16: bool, args) -> dict:
    runs: dict[str, list[dict]] = {v: [] for v in SPEED_VARIANTS}
    train(path, examples, tmp / "warm", system_prompt=new_prompt, steps=3, bf16=bf16)  # untimed: first-call costs
    for rep in range(args.repeats):
        for variant, (prompt, answer_only, grouped) in SPEED_VARIANTS.items():
            with (full_logits() if not answer_only else _nothing()):
                m = train(path, examples, tmp / f"s{rep}", system_prompt=prompt or new_prompt,
                          steps=args.speed_steps, bf16=bf16, group_by_length=grouped)
            runs[variant].append(m)
            console.print(f"  {variant}: {m['s_per_step']:.3f} s/step", style="dim")
    peak = matmul_peak(bf16)
    table = Table(title=f"LoRA r=16 steps of batch {BATCH} ({'bf16 autocast' if bf16 else 'fp32'}, 2 threads; "
                        f"{args.speed_steps} steps x {args.repeats} interleaved repeats); matmul peak {peak:.0f} GFLOP/s")
    for col in ("setting", "s/step", "each repeat", "tokens/step", "padded tokens/step", "tokens/s", "examples/s",
                "GFLOP/s", "of peak", "speed-up"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    out, base = {}, None
    for variant, ms in runs.items():
        s = statistics.mean(m["s_per_step"] for m in ms)
        base = base or s
        answer_only = SPEED_VARIANTS[variant][1]
        heads = ms[0]["answer_tokens_per_step"] if answer_only else ms[0]["padded_tokens_per_step"]
        gflops = flops_per_step(path, ms[0], heads, full=False) / s / 1e9
        out[variant] = {"s_per_step": s, "repeats": [m["s_per_step"] for m in ms],
                        "tokens_per_step": ms[0]["tokens_per_step"], "padded": ms[0]["padded_tokens_per_step"],
                        "gflops": gflops, "peak": peak}
        table.add_row(variant, f"{s:.3f}", " / ".join(f"{m['s_per_step']:.3f}" for m in ms),
                      f"{ms[0]['tokens_per_step']:.0f}", f"{ms[0]['padded_tokens_per_step']:.0f}",
                      f"{ms[0]['tokens_per_step'] / s:.0f}", f"{BATCH / s:.2f}", f"{gflops:.0f}",
                      f"{gflops / peak:.0%}", f"{base / s:.2f}x")
    console.print(table)
    return out


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def accuracy(console, path, examples, test, tmp: Path, new_prompt: str, bf16: bool, args) -> dict:
    """Held-out accuracy from the base model: savings at equal steps, lr and full FT at equal time."""
    variants = [  # name, prompt, answer-only, grouped, full FT, lr, steps (None = the reference's time)
        ("before (old prompt, full logits), LoRA 5e-4", OLD_PROMPT, False, False, False, 5e-4, args.steps),
        ("short prompt, answer-only, LoRA 5e-4", new_prompt, True, False, False, 5e-4, args.steps),
        ("short prompt, answer-only, grouped, LoRA 5e-4", new_prompt, True, True, False, 5e-4, args.steps),
        ("short prompt, answer-only, LoRA 1e-3", new_prompt, True, False, False, 1e-3, args.steps),
        ("short prompt, answer-only, grouped, LoRA 1e-3", new_prompt, True, True, False, 1e-3, args.steps),
        ("short prompt, answer-only, LoRA 2e-3", new_prompt, True, False, False, 2e-3, args.steps),
        ("short prompt, answer-only, full fine-tune 5e-5, equal time", new_prompt, True, False, True, 5e-5, None),
        ("short prompt, answer-only, full fine-tune 1e-4, equal time", new_prompt, True, False, True, 1e-4, None),
    ]
    reference_s, out = None, {}
    table = Table(title=f"held-out accuracy after training from the base model ({len(test)} test items, "
                        f"{'bf16' if bf16 else 'fp32'})")
    for col in ("setting", "steps", "examples", "train s", "s/step", "final loss", "accuracy"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for name, prompt, answer_only, grouped, full, lr, steps in variants:
        if steps is None:  # equal wall time: as many steps as the reference's seconds buy at this step cost
            probe = train(path, examples, tmp / "probe", system_prompt=prompt, steps=5, bf16=bf16,
                          group_by_length=grouped, full_finetune=full, lr=lr)
            steps = max(1, round(reference_s / probe["s_per_step"]))
        with (full_logits() if not answer_only else _nothing()):
            m = train(path, examples, tmp / "acc", system_prompt=prompt, steps=steps, bf16=bf16,
                      group_by_length=grouped, full_finetune=full, lr=lr)
        if name == variants[1][0]:  # the reference time for the full fine-tunes
            reference_s = m["seconds"]
        acc = evaluate(tmp / "acc" / "merged", prompt, test, bf16)
        out[name] = {"steps": steps, "seconds": m["seconds"], "s_per_step": m["s_per_step"],
                     "final_loss": m["final_loss"], "accuracy": acc}
        table.add_row(name, str(steps), str(steps * BATCH), f"{m['seconds']:.0f}", f"{m['s_per_step']:.3f}",
                      f"{m['final_loss']:.3f}", f"{acc:.3f}")
        console.print(f"  {name}: {acc:.3f}", style="dim")
    console.print(table)
    return out


if __name__ == "__main__":
    main()
