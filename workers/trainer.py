"""A minimal SFT trainer (LoRA or full fine-tune): one flat PyTorch loop, loss on the answer tokens only.

Usage (from Python):
    metrics = train_lora(model_dir, [("What is 3 + 4?", "7"), ...], out_dir,
                         system_prompt="Give only the final answer.", steps=60)
    TransformersStudent(out_dir / "merged", "Give only the final answer.")

Examples are formatted exactly as the student formats its prompts (`render_chat`), with
the answer and EOS appended, so training and inference see the same text.

Resuming: with `state_every=N` the loop saves its whole state every N steps to
`<out_dir>.state/state.pt` (beside out_dir, never inside it: out_dir is written atomically
at the end). `resume=True` continues from there, and the result equals an uninterrupted
run, because the batch for step s is a pure function of (seed, s) and the state holds the
trainable weights, optimizer, scheduler and RNG. The state folder is removed once out_dir
is in place.
"""

from __future__ import annotations

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
from transformers import AutoModelForCausalLM, AutoTokenizer

from sgi.workers.student import render_chat

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE = -100  # label value the loss skips
STATE_FORMAT = 1
GROUP_BATCHES = 16  # length grouping sorts within runs of this many batches, so order stays random


def train_lora(
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
    bf16: bool = True,
    full_finetune: bool = False,
    group_by_length: bool = False,
    state_every: int = 0,
    resume: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Fine-tune on (user text, answer text) pairs; write out_dir/{adapter,merged,metrics.json}.

    LoRA by default (out_dir/adapter is the peft adapter, out_dir/merged the merged model);
    `full_finetune=True` trains every weight and writes only out_dir/merged. `lr` defaults
    to 5e-4 for LoRA and 5e-5 for a full fine-tune. `group_by_length` batches examples of
    similar length together (less padding). `state_every=N` saves resumable state every N
    steps to `state_path(out_dir)`; `resume=True` continues from it if it exists.

    Returns metrics (also in metrics.json): steps, losses (one per step), first_loss,
    final_loss (mean of the last few steps), seconds (training time of all segments),
    s_per_step, tokens_per_step (non-padding) and padded_tokens_per_step (means),
    examples (used), skipped (longer than max_len), full_finetune, resumed_from (step the
    state held, or None). `progress(step, steps, loss)` is called after every step.

    `should_stop()` is asked after every step; when it says yes the state is saved and
    {"stopped_at": step} is returned instead (nothing written to out_dir).
    """
    if lr is None:
        lr = 5e-5 if full_finetune else 5e-4
    out_dir = Path(out_dir)
    state_file = state_path(out_dir) / "state.pt"

    torch.manual_seed(seed)  # LoRA init is random: seed it before the adapters are made
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if not full_finetune:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"
        )
        with warnings.catch_warnings():  # peft 0.21 reads a property transformers 5 deprecates
            warnings.simplefilter("ignore", FutureWarning)
            model = get_peft_model(model, lora)
    model.train()

    rows = [_encode(tokenizer, system_prompt, q, a, max_len) for q, a in examples]
    data = [r for r in rows if r is not None]
    if not data:
        raise ValueError(f"no training example fits in max_len={max_len} tokens with its answer; raise max_len")
    lengths = [len(ids) for ids, _ in data] if group_by_length else None

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    params = list(trainable.values())
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    # Linear warm-up, then cosine decay to 10% of lr.
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim,
        lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))),
    )

    # Everything that decides the batches and updates; a state saved under other values
    # cannot continue this run.
    run_key = {
        "model_path": str(model_path), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "max_len": max_len, "bf16": bf16, "full_finetune": full_finetune, "group_by_length": group_by_length,
        "lora": None if full_finetune else [lora_r, lora_alpha], "data": _digest(data),
    }
    losses: list[float] = []
    tokens: list[tuple[int, int]] = []  # (non-padding, padded) tokens per step
    done, prior_seconds, resumed_from = 0, 0.0, None
    if resume and state_file.is_file():
        state = torch.load(state_file, weights_only=True)
        _check_state(state, run_key, state_file)
        with torch.no_grad():
            for name, value in state["weights"].items():
                trainable[name].copy_(value)
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        done = resumed_from = state["step"]
        losses, tokens, prior_seconds = state["losses"], [tuple(t) for t in state["tokens"]], state["seconds"]

    start = time.perf_counter()
    for step in range(done + 1, steps + 1):
        batch = _collate([data[i] for i in _batch_at(len(data), batch_size, seed, step, lengths)], pad_id)
        # bf16 autocast: about 2x faster per step on this CPU (AVX-512 BF16); weights and
        # optimizer state stay fp32, so the loss curve matches fp32 closely.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens.append((int(batch["attention_mask"].sum()), batch["input_ids"].numel()))
        stopping = step < steps and should_stop is not None and should_stop()
        if stopping or (state_every and step % state_every == 0 and step < steps):
            _save_state(state_file, {
                "format": STATE_FORMAT, "run": run_key, "step": step, "losses": losses, "tokens": tokens,
                "seconds": prior_seconds + time.perf_counter() - start,
                "weights": {n: p.detach() for n, p in trainable.items()},
                "optim": optim.state_dict(), "sched": sched.state_dict(), "rng": torch.get_rng_state(),
            })
        if progress:
            progress(step, steps, losses[-1])
        if stopping:
            return {"stopped_at": step, "steps": steps}
    seconds = prior_seconds + time.perf_counter() - start

    tail = losses[-max(1, min(5, steps // 4)) :]
    metrics = {
        "steps": steps,
        "losses": losses,
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),
        "seconds": round(seconds, 2),
        "s_per_step": round(seconds / steps, 3),
        "tokens_per_step": round(sum(t for t, _ in tokens) / steps, 1),
        "padded_tokens_per_step": round(sum(p for _, p in tokens) / steps, 1),
        "examples": len(data),
        "skipped": len(rows) - len(data),
        "full_finetune": full_finetune,
        "resumed_from": resumed_from,
    }
    _save(model, tokenizer, out_dir, metrics, adapter=not full_finetune)
    shutil.rmtree(state_path(out_dir), ignore_errors=True)  # out_dir is complete: the state is stale
    return metrics


def state_path(out_dir: str | Path) -> Path:
    """The resumable-state folder of a training run writing `out_dir`: `<out_dir>.state` beside it."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".state")


def _encode(tokenizer, system_prompt, question, answer, max_len):
    prompt = tokenizer(render_chat(tokenizer, system_prompt, question), add_special_tokens=False).input_ids
    target = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    if len(prompt) + len(target) > max_len:
        return None
    return prompt + target, [IGNORE] * len(prompt) + target


def _collate(rows, pad_id):
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), IGNORE)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (x, y) in enumerate(rows):
        ids[r, : len(x)] = torch.tensor(x)
        labels[r, : len(y)] = torch.tensor(y)
        mask[r, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


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


def _check_state(state: dict, run_key: dict, path: Path) -> None:
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"training state {path} has format {state.get('format')}, expected {STATE_FORMAT}; delete it to start over")
    differ = sorted(k for k in run_key if state["run"].get(k) != run_key[k])
    if differ:
        raise ValueError(
            f"training state {path} was saved by a run with other settings ({', '.join(differ)}); "
            "delete that folder to start over, or resume with the settings it was saved with"
        )


def _save_state(path: Path, state: dict) -> None:
    """torch.save to a temp file beside `path`, fsync, then os.replace: a kill leaves the old state or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save(model, tokenizer, out_dir: Path, metrics: dict, *, adapter: bool) -> None:
    """out_dir/adapter (peft, LoRA only), out_dir/merged (plain model + tokenizer), out_dir/metrics.json.

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
