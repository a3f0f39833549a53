"""Our hand-written LoRA SFT loop against transformers' Trainer and TRL's SFTTrainer, same work.

    .venv/bin/pip install -e '.[bench]'                 # trl is only in the bench extra
    .venv/bin/python bench/bench_trainer.py             # 12 steps x 2 repeats x 3 variants + resume check
    .venv/bin/python bench/bench_trainer.py --steps 20 --repeats 3 --no-resume-check

Every variant trains the same LoRA (r=16, alpha 32, q/k/v/o/gate/up/down, seeded init) of
SmolLM2-135M-Instruct on the same pool items of the embedded gym task, in the same batches
(batch 8, the order `fine_tune` draws), with the same text (`render_chat` + answer + EOS),
loss on the answer tokens only, bf16 autocast on CPU, AdamW + the same warm-up/cosine
schedule, gradient clipping at 1.0, torch on --threads threads:

  ours     `workers.trainer.fine_tune` called directly (state_every=0): a hand-written
           PyTorch loop when docs/benchmarks.md's table was measured (commit 52afb01),
           transformers' Trainer with our batch order and hooks since;
  trainer  `transformers.Trainer` with a collator producing the same input_ids/labels,
           sequential sampler over the pre-ordered examples, no eval/save/logging;
  trl      `trl.SFTTrainer` on a prompt-completion dataset (prompt = `render_chat` text,
           completion = answer; TRL appends EOS and masks the prompt), no packing, no
           padding-free, gradient checkpointing off (SFTConfig turns it on by default).

Interleaved step by step, so that load from other processes falls on all variants alike:
each variant runs in its own process, and a baton lets exactly one of them work at a time,
one optimizer step each in turn (ours step 1, trainer step 1, trl step 1, ours step 2, ...;
model load and set-up ride with step 1, saving after the last step). A step is timed from
the moment its process gets the baton to the end of the step (the step-end callback);
s/step is the mean over the steps after the warm-up ones. A fresh set of processes per
repeat.

The resume check then trains 6 steps uninterrupted and resumes from step 3, for our loop
(state_every=3, stopped in step 3) and for Trainer (resume_from_checkpoint=checkpoint-3 in
a fresh Trainer; also with torch.manual_seed called between Trainer() and train(), with
and without data_seed), and compares per-step losses and final LoRA weights bitwise.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from sgi.workers.models import resolve_model
from sgi.workers.student import render_chat
from sgi.workers.trainer import IGNORE, LORA_TARGETS, _batch_at, _collate, _encode, fine_tune

SYSTEM = "You are a careful math student. Reply with only the final answer."  # the config's default when measured
LR, LORA_R, LORA_ALPHA, SEED = 5e-4, 16, 32, 0


@dataclass
class Run:
    variant: str
    repeat: int
    walls: list[float] = field(default_factory=list)  # seconds of each step (step 1 includes set-up)
    cpus: list[float] = field(default_factory=list)  # process CPU seconds (all threads) of each step
    losses: list[float] = field(default_factory=list)
    note: str = ""

    def s_per_step(self, warmup: int) -> float:
        return statistics.mean(self.walls[warmup:])

    def median_step(self, warmup: int) -> float:
        return statistics.median(self.walls[warmup:])

    def cpu_per_step(self, warmup: int) -> float:
        return statistics.mean(self.cpus[warmup:])

    def final_loss(self) -> float:  # as fine_tune's metrics: mean of the last few steps
        n = len(self.losses)
        tail = self.losses[-max(1, min(5, n // 4)) :]
        return sum(tail) / len(tail)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup-steps", type=int, default=2, help="steps left out of s/step")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="ours,trainer,trl")
    ap.add_argument("--resume-check", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--resume-steps", type=int, default=6, help="resume check: steps, cut after half of them")
    ap.add_argument("--model", default="smollm2", help="'smollm2' or a local HF model folder")
    args = ap.parse_args()
    if args.steps <= args.warmup_steps:
        ap.error("--steps must exceed --warmup-steps")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(RUNNERS))
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {sorted(RUNNERS)}")

    start = time.perf_counter()
    _quiet()
    torch.set_num_threads(args.threads)
    model_path = resolve_model(args.model)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    examples = _pick_examples(tok, args.steps * args.batch_size, args.max_len)
    spec = dict(model_path=str(model_path), examples=examples, steps=args.steps, batch_size=args.batch_size,
                max_len=args.max_len, threads=args.threads)
    ctx = _context(tok, **spec)
    n = len(examples)
    toks = sum(len(ids) for ids, _ in ctx["enc"])
    answer_toks = sum(sum(1 for y in lab if y != IGNORE) for _, lab in ctx["enc"])
    console = Console(width=200)  # logs are not a terminal: do not wrap the tables at 80 columns
    console.print(
        f"model={args.model} threads={args.threads} steps={args.steps} (first {args.warmup_steps} not timed) "
        f"batch={args.batch_size} examples={n} max_len={args.max_len} mean tokens/example={toks / n:.1f} "
        f"(answer {answer_toks / n:.1f}) bf16 autocast, LoRA r={LORA_R} alpha={LORA_ALPHA} lr={LR}"
    )

    runs: dict[str, list[Run]] = {v: [] for v in variants}
    failed: dict[str, str] = {}
    for r in range(args.repeats):
        todo = [v for v in variants if v not in failed]
        console.print(f"[dim]repeat {r + 1}/{args.repeats}: {', '.join(todo)}, one step each in turn ...[/dim]")
        for run in _interleaved(todo, spec, r, failed, console):
            runs[run.variant].append(run)
            console.print(
                f"[dim]  {run.variant}: {run.s_per_step(args.warmup_steps):.3f} s/step "
                f"({run.cpu_per_step(args.warmup_steps):.3f} CPU s/step), first loss {run.losses[0]:.4f}, "
                f"final loss {run.final_loss():.4f}[/dim]"
            )

    _print_table(console, args, runs, failed)
    if args.resume_check:
        resume_check(console, ctx, args.resume_steps, args.resume_steps // 2)
    console.print(f"bench wall time {time.perf_counter() - start:.0f} s")


# --- step-level interleaving across processes ---------------------------------------------


def _interleaved(variants: list[str], spec: dict, repeat: int, failed: dict[str, str], console: Console) -> list[Run]:
    """One process per variant; the baton goes round them, one optimizer step each, until all are done."""
    spawn = mp.get_context("spawn")  # a clean interpreter each: no torch state shared with this one
    conns, procs = {}, {}
    for v in variants:  # started one at a time: each imports torch etc. while no step is running
        here, there = spawn.Pipe()
        procs[v] = spawn.Process(target=_child, args=(v, there, spec), daemon=True)
        procs[v].start()
        conns[v] = here
        msg = _recv(conns[v])
        if msg[0] != "ready":
            failed[v] = msg[1]
            console.print(f"[red]{v} cannot run here: {failed[v]}[/red]")
    live = [v for v in variants if v not in failed]
    done: list[Run] = []
    while live:
        for v in list(live):
            conns[v].send("go")
            msg = _recv(conns[v])
            if msg[0] == "step":
                continue
            live.remove(v)
            if msg[0] == "done":
                done.append(Run(v, repeat, **msg[1]))
            else:
                failed[v] = msg[1]
                console.print(f"[red]{v} cannot run here: {failed[v]}[/red]")
    for v, p in procs.items():
        p.join(timeout=60)
        if p.is_alive():  # only ever our own child
            p.kill()
    return done


def _recv(conn):
    try:
        return conn.recv()
    except EOFError:
        return ("error", "the variant's process died")


class _Baton:
    """Child side: at every step end, time the step, hand the baton back and wait for it again."""

    def __init__(self, conn):
        self.conn = conn
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.since = (time.perf_counter(), time.process_time())

    def wait(self) -> None:
        self.conn.recv()
        self.since = (time.perf_counter(), time.process_time())

    def tick(self) -> None:
        self.walls.append(time.perf_counter() - self.since[0])
        self.cpus.append(time.process_time() - self.since[1])
        self.conn.send(("step",))
        self.wait()


def _child(variant: str, conn, spec: dict) -> None:
    try:
        _quiet()
        torch.set_num_threads(spec["threads"])
        from transformers import AutoTokenizer

        ctx = _context(AutoTokenizer.from_pretrained(spec["model_path"]), **spec)
    except Exception as e:  # noqa: BLE001
        conn.send(("error", _why(e)))
        return
    conn.send(("ready",))
    baton = _Baton(conn)
    baton.wait()  # set-up (model load, trainer init) counts into step 1, with the baton held
    try:
        losses, note = RUNNERS[variant](ctx, baton.tick)
    except Exception as e:  # noqa: BLE001 - report and let the others go on
        traceback.print_exc()
        conn.send(("error", _why(e)))
        return
    conn.send(("done", {"walls": baton.walls, "cpus": baton.cpus, "losses": losses, "note": note}))


def _why(e: Exception) -> str:
    return f"{type(e).__name__}: {e}".splitlines()[0][:300]


def _context(tok, *, model_path, examples, steps, batch_size, max_len, **_) -> dict:
    # The order fine_tune draws the examples in: step s takes _batch_at(n, bs, seed, s). The
    # library variants get them in exactly this order, with a sequential sampler.
    n = len(examples)
    ordered = [examples[i] for s in range(1, steps + 1) for i in _batch_at(n, batch_size, SEED, s)]
    enc = [_encode(tok, SYSTEM, q, a, max_len) for q, a in ordered]
    return dict(model_path=model_path, tok=tok, examples=examples, ordered=ordered, enc=enc, steps=steps,
                batch_size=batch_size, max_len=max_len)


def _print_table(console: Console, args, runs: dict[str, list[Run]], failed: dict[str, str]) -> None:
    w = args.warmup_steps

    def mean(rs, f):
        return statistics.mean(f(r) for r in rs)

    ours = runs.get("ours") or []
    base = mean(ours, lambda r: r.s_per_step(w)) if ours else None
    cpu_base = mean(ours, lambda r: r.cpu_per_step(w)) if ours else None
    table = Table(title=f"LoRA SFT, {args.steps} steps x batch {args.batch_size}, timed after {w} warm-up steps, "
                        f"interleaved step by step, mean of {args.repeats} repeats, {args.threads} torch threads")
    for col in ("variant", "s/step", "each repeat", "ratio to ours", "median step s", "CPU s/step", "CPU ratio",
                "set-up + step 1 s", "first loss", "final loss"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for v, rs in runs.items():
        if not rs:
            table.add_row(v, *["-"] * 9)
            continue
        sps, cpu = mean(rs, lambda r: r.s_per_step(w)), mean(rs, lambda r: r.cpu_per_step(w))
        finals = sorted({f"{r.final_loss():.4f}" for r in rs})
        table.add_row(
            v, f"{sps:.3f}", " / ".join(f"{r.s_per_step(w):.3f}" for r in rs),
            f"{sps / base:.2f}x" if base else "-",
            f"{statistics.median(x for r in rs for x in r.walls[w:]):.3f}",
            f"{cpu:.3f}", f"{cpu / cpu_base:.2f}x" if cpu_base else "-",
            f"{mean(rs, lambda r: r.walls[0]):.1f}", f"{rs[0].losses[0]:.4f}", " / ".join(finals),
        )
    console.print(table)
    console.print("s/step: wall clock, mean over the timed steps; median step s: over all timed steps of all repeats; "
                  "CPU s/step: process CPU time of all its threads; set-up + step 1: model load, trainer/dataset set-up "
                  "and the first step; final loss: mean of the last max(1, min(5, steps // 4)) steps, as fine_tune "
                  "reports it (one value per distinct repeat).")
    for v, rs in runs.items():
        if v in failed:
            console.print(f"{v}: cannot run here: {failed[v]}")
        elif rs:
            console.print(f"{v}: {rs[0].note}")
    if ours:
        for v, rs in runs.items():
            if v != "ours" and rs:
                diff = max(abs(a - b) for a, b in zip(ours[0].losses, rs[0].losses, strict=True))
                console.print(f"max |loss - ours| over the {len(rs[0].losses)} steps, {v}: {diff:.4f}")


# --- the three variants: each takes the context and tick(), returns (per-step losses, note) ---


def run_ours(ctx: dict, tick: Callable[[], None]) -> tuple[list[float], str]:
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as d:
        m = fine_tune(
            ctx["model_path"], ctx["examples"], Path(d) / "out", system_prompt=SYSTEM, steps=ctx["steps"],
            batch_size=ctx["batch_size"], lr=LR, lora_r=LORA_R, lora_alpha=LORA_ALPHA, seed=SEED,
            max_len=ctx["max_len"], bf16=True, state_every=0, progress=lambda s, n, loss: tick(),
        )
    if m["skipped"]:
        raise RuntimeError(f"fine_tune skipped {m['skipped']} examples; the variants would not match")
    return m["losses"], "fine_tune, state_every=0 (its end-of-run save of adapter + merged model is untimed)"


def _full_logits(batch: dict) -> dict:
    """A batch of ours without `logits_to_keep`, for the plain Trainer (which lets the model compute its loss)."""
    return {k: v for k, v in batch.items() if k != "logits_to_keep"}


def run_trainer(ctx: dict, tick: Callable[[], None]) -> tuple[list[float], str]:
    from transformers import Trainer, TrainingArguments

    tok, steps = ctx["tok"], ctx["steps"]
    model = _peft_model(ctx["model_path"])
    rows = [{"input_ids": ids, "labels": lab} for ids, lab in ctx["enc"]]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def collate(batch):  # the stock Trainer's loss: the model's own, over full logits
        return _full_logits(_collate([(r["input_ids"], r["labels"]) for r in batch], pad_id))

    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as d:
        trainer = _with_losses(Trainer)(
            model=model, args=TrainingArguments(**_train_args(d, steps, ctx["batch_size"]), remove_unused_columns=False),
            train_dataset=rows, data_collator=collate, optimizers=_optim(model, steps),
            callbacks=[_on_step_end(lambda st: tick())],
        )
        trainer.train()
    return trainer.step_losses(), ("custom collator (= ours), sequential sampler over the pre-ordered examples, "
                                   "our AdamW + schedule via optimizers=, model.config.use_cache=False")


def run_trl(ctx: dict, tick: Callable[[], None]) -> tuple[list[float], str]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tok, steps, enc = ctx["tok"], ctx["steps"], ctx["enc"]
    model = _peft_model(ctx["model_path"])
    data = Dataset.from_list([{"prompt": render_chat(tok, SYSTEM, q), "completion": a} for q, a in ctx["ordered"]])
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as d:
        cfg = SFTConfig(
            **_train_args(d, steps, ctx["batch_size"]), max_length=ctx["max_len"], completion_only_loss=True,
            packing=False, padding_free=False, dataset_num_proc=None,
        )
        trainer = _with_losses(SFTTrainer)(
            model=model, args=cfg, train_dataset=data, processing_class=tok, optimizers=_optim(model, steps),
            callbacks=[_on_step_end(lambda st: tick())],
        )
        prepared = trainer.train_dataset
        same = sum(list(prepared[i]["input_ids"]) == ids and list(prepared[i]["labels"]) == lab
                   for i, (ids, lab) in enumerate(enc))
        trainer.train()
    return trainer.step_losses(), (
        f"prompt-completion dataset, completion-only loss; input_ids/labels identical to ours for {same}/{len(enc)}; "
        "no packing, no padding-free, gradient checkpointing off; TRL's own loss path (fused, chunked LM head) and "
        "per-step entropy/token-accuracy metrics"
    )


RUNNERS: dict[str, Callable[[dict, Callable[[], None]], tuple[list[float], str]]] = {
    "ours": run_ours, "trainer": run_trainer, "trl": run_trl,
}


def _peft_model(model_path):
    """The same seeded LoRA init as fine_tune: manual_seed, load fp32, get_peft_model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False  # fine_tune passes use_cache=False to every forward
    lora = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=LORA_TARGETS,
                      task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora)


def _optim(model, steps):
    """fine_tune's optimizer and schedule (AdamW, wd 0; linear warm-up, cosine to 10%), built the same way."""
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim,
        lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))),
    )
    return optim, sched


def _train_args(out_dir, steps, batch_size, **over) -> dict:
    return {
        "output_dir": out_dir, "per_device_train_batch_size": batch_size, "max_steps": steps,
        "learning_rate": LR, "weight_decay": 0.0, "max_grad_norm": 1.0, "seed": SEED,
        "use_cpu": True, "bf16": True, "gradient_checkpointing": False,
        "train_sampling_strategy": "sequential", "dataloader_num_workers": 0, "dataloader_pin_memory": False,
        "eval_strategy": "no", "save_strategy": "no", "logging_strategy": "no", "report_to": "none",
        "disable_tqdm": True, **over,
    }


def _with_losses(base):
    """A subclass of Trainer/SFTTrainer that keeps each step's loss (a detached tensor: no extra sync)."""

    from transformers.trainer_callback import PrinterCallback

    class Keeping(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.remove_callback(PrinterCallback)  # disable_tqdm=True would print the end-of-training metrics

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            if model.training:
                self.__dict__.setdefault("_kept", []).append((out[0] if return_outputs else out).detach())
            return out

        def step_losses(self) -> list[float]:
            return [float(x) for x in self.__dict__.get("_kept", [])]

    return Keeping


def _on_step_end(fn):
    """A TrainerCallback calling fn(state) at each optimizer step's end (after step, schedule and zero_grad)."""
    from transformers import TrainerCallback

    class Hook(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            fn(state)

    return Hook()


# --- resume check -------------------------------------------------------------------------


def resume_check(console: Console, ctx: dict, steps: int, cut: int) -> None:
    """Uninterrupted vs cut-at-`cut`-and-resumed, bitwise, for our loop and for Trainer's resume_from_checkpoint."""
    table = Table(title=f"Mid-training resume: {steps} steps uninterrupted vs cut after step {cut} and resumed "
                        f"(SmolLM2 LoRA, bf16 autocast, batch {ctx['batch_size']})")
    for col in ("variant", "how", "steps run after resume", "losses bitwise equal", "final LoRA weights bitwise equal"):
        table.add_column(col)
    for name, fn in (("ours", _resume_ours), ("trainer", _resume_trainer)):
        console.print(f"[dim]resume check: {name} ...[/dim]")
        try:
            for row in fn(console, ctx, steps, cut):
                table.add_row(*row)
        except Exception as e:  # noqa: BLE001
            table.add_row(name, "failed", "-", "-", f"{type(e).__name__}: {e}".splitlines()[0][:200])
            traceback.print_exc()
    console.print(table)


class _Cut(Exception):
    pass


def _resume_ours(console, ctx, steps, cut):
    from safetensors.torch import load_file

    args = dict(system_prompt=SYSTEM, steps=steps, batch_size=ctx["batch_size"], lr=LR, lora_r=LORA_R,
                lora_alpha=LORA_ALPHA, seed=SEED, max_len=ctx["max_len"])
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as d:
        whole = fine_tune(ctx["model_path"], ctx["examples"], Path(d) / "whole", **args)

        def cut_at(step, n, loss):
            if step == cut:
                raise _Cut

        out = Path(d) / "cut"
        try:
            fine_tune(ctx["model_path"], ctx["examples"], out, state_every=cut, progress=cut_at, **args)
        except _Cut:
            pass
        seen: list[int] = []
        torch.manual_seed(123)  # whatever the process did meanwhile
        resumed = fine_tune(ctx["model_path"], ctx["examples"], out, state_every=cut, resume=True,
                            progress=lambda s, n, loss: seen.append(s), **args)
        w = "adapter/adapter_model.safetensors"
        a, b = load_file(Path(d) / "whole" / w), load_file(out / w)
        same_w = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return [("ours", f"fine_tune(state_every={cut}) stopped by an exception in step {cut}'s callback; "
             "torch.manual_seed(123); fine_tune(resume=True)", str(seen),
             _yes(resumed["losses"] == whole["losses"]), _yes(same_w))]


def _resume_trainer(console, ctx, steps, cut):
    """One uninterrupted Trainer run saving checkpoint-`cut`, then fresh Trainers resuming from it three ways."""
    from transformers import Trainer, TrainingArguments

    tok = ctx["tok"]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # Trainer's own data order (its default random sampler), as a user would run it.
    rows = [{"input_ids": ids, "labels": lab}
            for ids, lab in (_encode(tok, SYSTEM, q, a, ctx["max_len"]) for q, a in ctx["examples"])]

    def collate(batch):  # the stock Trainer's loss: the model's own, over full logits
        return _full_logits(_collate([(r["input_ids"], r["labels"]) for r in batch], pad_id))

    def make(out_dir, seen, **over):
        model = _peft_model(ctx["model_path"])
        targs = _train_args(out_dir, steps, ctx["batch_size"], train_sampling_strategy="random",
                            save_strategy="steps", save_steps=cut, **over)
        trainer = _with_losses(Trainer)(model=model, args=TrainingArguments(**targs, remove_unused_columns=False),
                                        train_dataset=rows, data_collator=collate, optimizers=_optim(model, steps),
                                        callbacks=[_on_step_end(lambda st: seen.append(st.global_step))])
        return trainer, model

    def weights(model):
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    out = []
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as d:
        whole, wm = make(os.path.join(d, "whole"), [])
        whole.train()
        whole_losses, a = whole.step_losses(), weights(wm)
        checkpoint = os.path.join(d, "whole", f"checkpoint-{cut}")
        cases = [
            ("fresh model + Trainer, then train(resume_from_checkpoint=checkpoint-%d)" % cut, False, {}),
            ("as above, but torch.manual_seed(123) between Trainer(...) and train(...)", True, {}),
            ("as above (manual_seed in between), with TrainingArguments(data_seed=0)", True, {"data_seed": SEED}),
        ]
        for i, (how, reseed, over) in enumerate(cases):
            seen: list[int] = []
            resumed, rm = make(os.path.join(d, f"resumed{i}"), seen, **over)
            if reseed:
                torch.manual_seed(123)
            resumed.train(resume_from_checkpoint=checkpoint)
            b, resumed_losses = weights(rm), resumed.step_losses()
            same_w = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            same_l = resumed_losses == whole_losses[cut:]
            if not (same_l and same_w):
                console.print(f"  trainer case {i}: losses uninterrupted {whole_losses}, resumed {resumed_losses}; "
                              f"LoRA tensors differing {sum(not torch.equal(a[k], b[k]) for k in a)}/{len(a)}")
            out.append(("trainer", how, str(seen), _yes(same_l), _yes(same_w)))
    return out


def _yes(ok: bool, detail: str = "") -> str:
    return ("yes" if ok else "NO") + (f" ({detail})" if detail else "")


# --- data and set-up ----------------------------------------------------------------------


def _pick_examples(tok, count: int, max_len: int) -> list[tuple[str, str]]:
    """`count` pool items of the embedded gym task (seed 0) that fit in max_len, in a seeded random order."""
    from sgi.skills.tasks.gym import GymTask

    pool = [it for it in GymTask(seed=0).load_items() if it.split == "pool"]
    random.Random(SEED).shuffle(pool)
    out = [(it.question, it.answer) for it in pool if _encode(tok, SYSTEM, it.question, it.answer, max_len) is not None]
    if len(out) < count:
        raise SystemExit(f"only {len(out)} pool items fit in max_len={max_len}; need {count}")
    return out[:count]


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from datasets.utils.logging import disable_progress_bar, set_verbosity_error

        disable_progress_bar()
        set_verbosity_error()
    except ImportError:
        pass


if __name__ == "__main__":
    main()
