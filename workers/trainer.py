"""SFT of the student (LoRA or full fine-tune) on transformers' `Trainer`, loss on the answer tokens only.

Usage (from Python):
    metrics = fine_tune(model_dir, [("What is 3 + 4?", "7"), ...], out_dir,
                        system_prompt="Give only the final answer.", steps=60)
    TransformersStudent(out_dir / "merged", "Give only the final answer.")

Examples are formatted exactly as the student formats its prompts (`render_chat`), with
the answer and EOS appended, so training and inference see the same text.

What is ours around the Trainer: the answer-only encoding and collator; the batch order
(the batch of step s is a pure function of (seed, s), fed through a sequential sampler,
so a resumed run sees the same batches whatever the RNG did meanwhile); writing
out_dir atomically at the end; and refusing to resume a state saved under other
settings. bench/bench_trainer.py measured Trainer at the same speed and losses as the
hand-written loop it replaced (TRL's SFTTrainer was ~1.3x slower per step here).

Data parallel: called in every worker of a torch process group (Ray Train's TorchTrainer,
`workers/train_host.py`), each rank takes batch_size / world_size examples of every
step's batch (the Trainer hands rank i the i-th slice), gradients are averaged, and only
rank 0 writes checkpoints' markers and out_dir: the same steps and batches as one process.

Resuming: with `state_every=N` the Trainer saves a checkpoint (weights, optimizer,
scheduler, RNG, step) every N steps under `<out_dir>.state/` (beside out_dir, never
inside it). A checkpoint counts only once our marker `sgi.json` is written into it after
the Trainer's save, so one cut by a kill is never resumed from. `resume=True` continues
from the newest complete checkpoint, and the result equals an uninterrupted run bit for
bit. The state folder is removed once out_dir is in place.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import transformers.modeling_utils
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from sgi.workers.models import native_bf16
from sgi.workers.student import render_chat

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE = -100  # label value the loss skips
STATE_FORMAT = 2  # 1 was the hand-written loop's state.pt
MARKER = "sgi.json"  # written into a Trainer checkpoint once it is complete
GROUP_BATCHES = 16  # length grouping sorts within runs of this many batches, so order stays random


def fine_tune(
    model_path: str | Path,
    examples: Sequence[tuple[str, str]],
    out_dir: str | Path,
    *,
    system_prompt: str | None,
    steps: int,
    batch_size: int = 8,
    lr: float | None = None,
    lora_r: int = 16,
    lora_alpha: int = 32,
    seed: int = 0,
    max_len: int = 128,
    bf16: bool | None = None,
    full_finetune: bool = False,
    group_by_length: bool = False,
    state_every: int = 0,
    resume: bool = False,
    also_save_step: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Fine-tune on (user text, answer text) pairs; write out_dir/{adapter,merged,metrics.json}.

    LoRA by default (out_dir/adapter is the peft adapter, out_dir/merged the merged model);
    `full_finetune=True` trains every weight and writes only out_dir/merged. `lr` defaults
    to 5e-4 for LoRA and 5e-5 for a full fine-tune. `group_by_length` batches examples of
    similar length together (less padding). `bf16` autocast defaults to on where the
    hardware does bf16 natively (`models.native_bf16`), else fp32. `state_every=N` saves
    a resumable checkpoint every N steps under `state_path(out_dir)`; `resume=True`
    continues from the newest one. `also_save_step=N` (0 < N < steps) also keeps the merged
    model as it was after step N, in out_dir/step-N/merged (the warm-up's half-way student, whose
    probe accuracy against the final one measures how fast each skill moves); training
    itself is unchanged by it.

    Returns metrics (also in metrics.json): steps, losses (one per step), first_loss,
    final_loss (mean of the last few steps), seconds (training time of all segments),
    s_per_step, tokens_per_step (non-padding), padded_tokens_per_step and answer_tokens_per_step (means),
    examples (used), skipped (longer than max_len), full_finetune, resumed_from (step the
    checkpoint held, or None). `progress(step, steps, loss)` is called after every step,
    once that step's checkpoint (if it saves one) is on disk.

    `should_stop()` is asked after every step; when it says yes a checkpoint is saved and
    {"stopped_at": step} is returned instead (nothing written to out_dir).
    """
    if lr is None:
        lr = 5e-5 if full_finetune else 5e-4
    if bf16 is None:
        bf16 = native_bf16()
    out_dir = Path(out_dir)
    states = state_path(out_dir)

    torch.manual_seed(seed)  # LoRA init is random: seed it before the adapters are made
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = trainable_model(model_path, full_finetune, lora_r, lora_alpha)

    world, rank = _distributed()
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} does not split over {world} training workers; "
                         "make it a multiple of the worker count")
    rows = [_encode(tokenizer, system_prompt, q, a, max_len) for q, a in examples]
    data = [r for r in rows if r is not None]
    if not data:
        raise ValueError(f"no training example fits in max_len={max_len} tokens with its answer; raise max_len")
    lengths = [len(ids) for ids, _ in data] if group_by_length else None
    batches = [[data[i] for i in _batch_at(len(data), batch_size, seed, s, lengths)] for s in range(1, steps + 1)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # Everything that decides the batches and updates; a state saved under other values
    # cannot continue this run.
    run_key = {
        "model_path": str(model_path), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "max_len": max_len, "bf16": bf16, "full_finetune": full_finetune, "group_by_length": group_by_length,
        "lora": None if full_finetune else [lora_r, lora_alpha], "data": _digest(data),
    }
    if also_save_step:  # only then: states saved before the option existed stay resumable
        run_key["also_save_step"] = also_save_step
    checkpoint, prior_seconds = last_checkpoint(states, run_key) if resume else (None, 0.0)
    if checkpoint is None:
        shutil.rmtree(states, ignore_errors=True)  # nothing to continue: no stale checkpoint may linger
    hooks = StateHooks(steps, run_key, prior_seconds, progress, should_stop)
    keeps_copy, kept_copy = 0 < also_save_step < steps, states / f"step-{also_save_step}"
    callbacks = [hooks]
    if keeps_copy:
        callbacks.append(KeepCopy(also_save_step, kept_copy, tokenizer, adapter=not full_finetune))
    trainer = Trainer(
        model=model,
        args=_arguments(states, steps, batch_size // world, lr, seed, bf16, state_every),
        train_dataset=[{"input_ids": ids, "labels": labels} for batch in batches for ids, labels in batch],
        data_collator=lambda rows: _collate([(r["input_ids"], r["labels"]) for r in rows], pad_id),
        compute_loss_func=_answer_loss,
        optimizers=_optimizer(model, lr, steps),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # it prints the end-of-training metrics dict
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if hooks.stopped_at is not None:
        return {"stopped_at": hooks.stopped_at, "steps": steps}

    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    seconds = hooks.seconds()
    tail = losses[-max(1, min(5, steps // 4)) :]
    metrics = {
        "steps": steps,
        "losses": losses,
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),
        "seconds": round(seconds, 2),
        "s_per_step": round(seconds / steps, 3),
        "tokens_per_step": round(sum(len(ids) for b in batches for ids, _ in b) / steps, 1),
        "padded_tokens_per_step": round(sum(len(b) * max(len(ids) for ids, _ in b) for b in batches) / steps, 1),
        "answer_tokens_per_step": round(sum(sum(y != IGNORE for y in labels) for b in batches for _, labels in b)
                                        / steps, 1),
        "examples": len(data),
        "skipped": len(rows) - len(data),
        "full_finetune": full_finetune,
        "resumed_from": _step(checkpoint) if checkpoint else None,
    }
    if rank == 0:
        extra = {kept_copy.name: kept_copy} if keeps_copy else {}
        save_trained(trainer.model, tokenizer, out_dir, metrics, adapter=not full_finetune, extra=extra)
        shutil.rmtree(states, ignore_errors=True)  # out_dir is complete: the checkpoints are stale
    return metrics


def _distributed() -> tuple[int, int]:
    """(world size, rank) of the torch process group this runs in; (1, 0) outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def state_path(out_dir: str | Path) -> Path:
    """The checkpoint folder of a training run writing `out_dir`: `<out_dir>.state` beside it."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".state")


def saved_step(out_dir: str | Path) -> int | None:
    """The step of the newest complete checkpoint of the run writing `out_dir`, if any."""
    done = _complete_checkpoints(state_path(out_dir))
    return _step(done[-1]) if done else None


def trainable_model(model_path, full_finetune: bool, lora_r: int, lora_alpha: int):
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False  # no generation while training
    if full_finetune:
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft 0.21 reads a property transformers 5 deprecates
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora)


def _arguments(states: Path, steps: int, per_device: int, lr: float, seed: int, bf16: bool, state_every: int):
    return TrainingArguments(
        output_dir=str(states), max_steps=steps, per_device_train_batch_size=per_device,
        learning_rate=lr, max_grad_norm=1.0, seed=seed, data_seed=seed,
        # bf16 autocast: about 1.6x faster per step on a CPU with AVX-512 BF16, 30x slower where
        # it is emulated (docs/benchmarks.md, "Precision"); weights and optimizer state stay fp32.
        use_cpu=not torch.cuda.is_available(), bf16=bf16,  # a GPU when Ray gave this process one
        train_sampling_strategy="sequential",  # the dataset is already in _batch_at's order
        dataloader_num_workers=0, dataloader_pin_memory=False, remove_unused_columns=False,
        ddp_find_unused_parameters=False,  # under DDP every trainable weight gets a gradient: skip the search
        eval_strategy="no", logging_strategy="steps", logging_steps=1, report_to="none", disable_tqdm=True,
        save_strategy="steps" if state_every else "no", save_steps=max(1, state_every),
    )


def _optimizer(model, lr: float, steps: int):
    """AdamW without weight decay; linear warm-up over a tenth of the steps, then cosine decay to 10% of lr."""
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim,
        lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))),
    )
    return optim, sched


class StateHooks(TrainerCallback):
    """Progress, graceful stop, and the completeness marker of each checkpoint (with run key
    and time): for any Trainer of ours (SFT here, GRPO in `workers/rl.py`)."""

    def __init__(self, steps, run_key, prior_seconds, progress, should_stop):
        self.steps, self.run_key, self.prior = steps, run_key, prior_seconds
        self.progress, self.should_stop = progress, should_stop
        self.stopped_at: int | None = None
        self.started = time.perf_counter()
        self.pending: tuple[int, float] | None = None

    def seconds(self) -> float:
        return self.prior + time.perf_counter() - self.started

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_save = False  # out_dir is written next: a last checkpoint would be thrown away
        elif self.should_stop is not None and self.should_stop():
            self.stopped_at = state.global_step
            control.should_save = control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.pending = (state.global_step, logs["loss"])
            if not control.should_save:  # else reported once the checkpoint is complete
                self._report()

    def on_save(self, args, state, control, **kwargs):
        _barrier()  # under DDP: every rank's part of the checkpoint is written before rank 0 marks it
        if _distributed()[1] == 0:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            _write_atomic(folder / MARKER, json.dumps({"format": STATE_FORMAT, "run": self.run_key,
                                                       "seconds": self.seconds()}))
            for old in _complete_checkpoints(folder.parent, every=True):
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
        self._report()

    def _report(self) -> None:
        if self.pending and self.progress:
            self.progress(self.pending[0], self.steps, self.pending[1])
        self.pending = None


class KeepCopy(TrainerCallback):
    """Writes the merged model as it is after step `step` into `folder` (rank 0), for
    `fine_tune(also_save_step=...)`. It lives beside the trainer's checkpoints, so a run resumed
    from a later checkpoint still has it; a copy is merged, so training goes on unchanged."""

    def __init__(self, step: int, folder: Path, tokenizer, adapter: bool):
        self.step, self.folder, self.tokenizer, self.adapter = step, folder, tokenizer, adapter

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step != self.step or _distributed()[1] != 0 or self.folder.is_dir():
            return
        tmp = self.folder.with_name(f".{self.folder.name}-tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        merged = copy.deepcopy(model).merge_and_unload() if self.adapter else model
        merged.save_pretrained(tmp / "merged")
        self.tokenizer.save_pretrained(tmp / "merged")
        tmp.rename(self.folder)


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _complete_checkpoints(states: Path, every: bool = False) -> list[Path]:
    """Checkpoint folders by step; only those with our marker unless `every`."""
    found = [p for p in states.glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and (every or (p / MARKER).is_file())]
    return sorted(found, key=_step)


def _step(checkpoint: Path) -> int:
    """The step a Trainer checkpoint folder (`checkpoint-N`) holds."""
    return int(checkpoint.name.split("-")[-1])


def last_checkpoint(states: Path, run_key: dict) -> tuple[Path | None, float]:
    """The newest complete checkpoint and the training seconds before it; refuses one from other settings."""
    done = _complete_checkpoints(states)
    if not done:
        return None, 0.0
    marker = done[-1] / MARKER
    saved = json.loads(marker.read_text())
    if saved.get("format") != STATE_FORMAT:
        raise ValueError(f"training state {marker} has format {saved.get('format')}, expected {STATE_FORMAT}; delete it to start over")
    differ = sorted(k for k in run_key if saved["run"].get(k) != run_key[k])
    if differ:
        raise ValueError(
            f"training state {states} was saved by a run with other settings ({', '.join(differ)}); "
            "delete that folder to start over, or resume with the settings it was saved with"
        )
    return done[-1], saved["seconds"]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _encode(tokenizer, system_prompt, question, answer, max_len):
    prompt = tokenizer(render_chat(tokenizer, system_prompt, question), add_special_tokens=False).input_ids
    target = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    if len(prompt) + len(target) > max_len:
        return None
    return prompt + target, [IGNORE] * len(prompt) + target


# Whether the model takes a boolean `logits_to_keep` mask (transformers 5.20 and later).
_MASKED_LOGITS = hasattr(transformers.modeling_utils, "slice_logits_to_keep")


def _collate(rows, pad_id):
    """A right-padded batch, and `logits_to_keep`: the positions whose next token is an
    answer token, the only ones the loss reads (see `_answer_loss`). Transformers before
    5.20 (the vLLM virtualenv pins one) takes no mask there and projects every position."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), IGNORE)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (x, y) in enumerate(rows):
        ids[r, : len(x)] = torch.tensor(x)
        labels[r, : len(y)] = torch.tensor(y)
        mask[r, : len(x)] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if not _MASKED_LOGITS:
        return batch
    keep = torch.zeros((len(rows), width), dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    return batch | {"logits_to_keep": keep}


def _answer_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy of the answer tokens from the logits of the kept positions only.

    The loss reads a few answer tokens of each ~40-token example, yet the 49k-word LM head
    and its softmax would otherwise run at every position: the model projects only the
    positions in the batch's `logits_to_keep` mask (a [kept, vocab] tensor, in row order),
    which gives the same loss as the model's own (summed over the answer tokens, divided
    by the Trainer's token count) at about 20% less time per step on the CPU here
    (docs/benchmarks.md, "Training cost"). Without the mask (older transformers) the
    logits are [batch, length, vocab] and the same positions are picked here.
    """
    answer = labels[:, 1:] != IGNORE
    logits = outputs.logits if outputs.logits.ndim == 2 else outputs.logits[:, :-1][answer]
    loss = torch.nn.functional.cross_entropy(logits.float(), labels[:, 1:][answer], reduction="sum")
    return loss / (num_items_in_batch if num_items_in_batch is not None else int(answer.sum()))


def _batch_at(n: int, batch_size: int, seed: int, step: int, lengths: Sequence[int] | None = None) -> list[int]:
    """Example indices of training step `step` (1-based): a pure function, so a resumed run's cursor is the step.

    Each epoch is a fresh permutation seeded by (seed, epoch); its ragged tail is dropped
    (unless there are fewer examples than one batch). With `lengths`, each run of
    GROUP_BATCHES batches is sorted by length before it is cut, so a batch pads little,
    and the order of those batches is shuffled so lengths do not rise through the epoch.
    """
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step - 1, per_epoch)
    rng = random.Random(f"sgi-batches:{seed}:{epoch}")
    perm = list(range(n))
    rng.shuffle(perm)
    if lengths is None:
        return perm[k * batch_size : (k + 1) * batch_size]
    perm = perm[: per_epoch * batch_size] if n >= batch_size else perm
    batches = []
    for g in range(0, len(perm), GROUP_BATCHES * batch_size):
        group = sorted(perm[g : g + GROUP_BATCHES * batch_size], key=lambda i: lengths[i])
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches[k]


def _digest(data) -> str:
    """A fingerprint of the encoded examples, so a state is never resumed on other data."""
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def save_trained(model, tokenizer, out_dir: Path, metrics: dict, *, adapter: bool,
                 extra: dict[str, Path] | None = None) -> None:
    """out_dir/adapter (peft, LoRA only), out_dir/merged (plain model + tokenizer), out_dir/metrics.json,
    and each folder of `extra` moved in under its name.

    Built in a temp folder beside out_dir and renamed into place, so a killed run never
    leaves a half-saved model that a later round would load.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        if adapter:
            model.save_pretrained(tmp / "adapter")
            tokenizer.save_pretrained(tmp / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(tmp / "merged")
        tokenizer.save_pretrained(tmp / "merged")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        for name, folder in (extra or {}).items():
            shutil.move(folder, tmp / name)
        tmp.chmod(0o755)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{time.time_ns()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
