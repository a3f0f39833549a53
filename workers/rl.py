"""RL after STAT: GRPO (Shao et al. 2024) on TRL's `GRPOTrainer`, LoRA, the task's own checker as reward.

    metrics = reinforce(model_dir, items, out_dir, task=task, system_prompt="Answer only.", steps=20)

Each step samples `group_size` completions for each of `prompts_per_step` prompts (the
prompts in the order given: the RL stage draws them from the pool by the latest
Missing-Skill-Profile), scores them with `skills.rewards.score` (the task's extractor and
scorer; the format term asks for the answer alone, weighted by `format_weight`), and
moves the LoRA weights towards the completions that beat their group's mean, with a KL
penalty of `beta` towards the starting model (the base with its adapter switched off, so
no second copy). Prompts are the student's own chat (system prompt + question), so RL
trains the answer form the supervised rounds trained.

Checkpoints, resume, a stop between steps and the atomic out_dir are `workers/trainer.py`'s
(its `StateHooks`, `last_checkpoint`, `save_trained`): the Trainer's checkpoint holds the
RNG, so a resumed run samples what an uninterrupted one would have.

Returns metrics like `fine_tune`'s, plus `history`: one dict per step (reward, its
standard deviation, the correct and format parts, KL, loss, completion length).
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer
from transformers.trainer_callback import PrinterCallback

from sgi.skills.records import Item
from sgi.skills.rewards import Scored, score
from sgi.workers.models import native_bf16
from sgi.workers.trainer import StateHooks, last_checkpoint, save_trained, state_path, trainable_model

# What a step's log carries, as the rl_steps table names it.
LOGGED = {"reward": "reward", "reward_std": "reward_std", "rewards/correct/mean": "correct",
          "rewards/format/mean": "format", "kl": "kl", "loss": "loss", "completions/mean_length": "completion_tokens"}


def reinforce(
    model_path: str | Path,
    prompts: Sequence[Item],
    out_dir: str | Path,
    *,
    task: Any,
    system_prompt: str | None,
    steps: int,
    prompts_per_step: int = 4,
    group_size: int = 4,
    max_new_tokens: int = 16,
    beta: float = 0.04,
    temperature: float = 1.0,
    lr: float = 5e-5,
    lora_r: int = 16,
    lora_alpha: int = 32,
    format_weight: float = 0.0,
    seed: int = 0,
    bf16: bool | None = None,
    state_every: int = 0,
    resume: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """GRPO from `model_path` on `prompts` (steps x prompts_per_step of them, used in order);
    writes out_dir/{adapter,merged,metrics.json}. A stop asked for between steps saves a
    checkpoint and returns {"stopped_at": step}."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    needed = steps * prompts_per_step
    if len(prompts) < needed:
        raise ValueError(f"GRPO needs {needed} prompts ({steps} steps x {prompts_per_step}), got {len(prompts)}")
    prompts = list(prompts[:needed])
    bf16 = native_bf16() if bf16 is None else bf16
    out_dir = Path(out_dir)
    states = state_path(out_dir)
    run_key = {
        "model_path": str(model_path), "steps": steps, "prompts_per_step": prompts_per_step, "group_size": group_size,
        "max_new_tokens": max_new_tokens, "beta": beta, "temperature": temperature, "lr": lr, "seed": seed,
        "lora": [lora_r, lora_alpha], "bf16": bf16, "format_weight": format_weight, "system_prompt": system_prompt,
        "data": hashlib.sha256(json.dumps([[i.item_id, i.question, i.answer] for i in prompts]).encode()).hexdigest()[:16],
    }
    checkpoint, prior_seconds = last_checkpoint(states, run_key) if resume else (None, 0.0)
    if checkpoint is None:
        shutil.rmtree(states, ignore_errors=True)

    torch.manual_seed(seed)  # the LoRA initialisation
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = trainable_model(model_path, False, lora_r, lora_alpha)
    model.config.use_cache = True  # GRPO generates: without the KV cache each token re-reads the prompt
    hooks = StateHooks(steps, run_key, prior_seconds, progress, should_stop)
    rows = [{"prompt": _chat(system_prompt, item.question), "item_index": n} for n, item in enumerate(prompts)]
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=_reward_functions(task, prompts),
        args=GRPOConfig(
            output_dir=str(states), max_steps=steps, per_device_train_batch_size=prompts_per_step * group_size,
            num_generations=group_size, max_completion_length=max_new_tokens, temperature=temperature,
            beta=beta, learning_rate=lr, lr_scheduler_type="constant", reward_weights=[1.0, format_weight],
            shuffle_dataset=False,  # the stage chose the prompts and their order
            seed=seed, data_seed=seed, bf16=bf16, use_cpu=not torch.cuda.is_available(),
            logging_steps=1, report_to="none", disable_tqdm=True,
            save_strategy="steps" if state_every else "no", save_steps=max(1, state_every),
        ),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[hooks],
    )
    trainer.remove_callback(PrinterCallback)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TRL's notes on CPU-only and padding choices
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if hooks.stopped_at is not None:
        return {"stopped_at": hooks.stopped_at, "steps": steps}

    history = [{"step": e["step"], **{name: float(e[key]) for key, name in LOGGED.items() if key in e}}
               for e in trainer.state.log_history if "reward" in e]
    seconds = hooks.seconds()
    metrics = {
        "steps": steps, "examples": len(prompts), "history": history,
        "first_reward": history[0]["reward"], "final_reward": history[-1]["reward"],
        "final_loss": history[-1].get("loss", 0.0), "seconds": round(seconds, 2), "s_per_step": round(seconds / steps, 3),
        "resumed_from": int(checkpoint.name.split("-")[-1]) if checkpoint else None,
    }
    save_trained(trainer.model, tokenizer, out_dir, metrics, adapter=True)
    shutil.rmtree(states, ignore_errors=True)
    return metrics


def _chat(system_prompt: str | None, question: str) -> list[dict[str, str]]:
    """The student's own prompt (`workers.student.render_chat` without shots) as chat messages."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*system, {"role": "user", "content": question}]


def _reward_functions(task: Any, prompts: list[Item]) -> list[Callable[..., list[float]]]:
    """The two reward parts TRL logs by name (rewards/correct, rewards/format); `item_index` is
    the dataset column naming the prompt. TRL asks each part for the same completions, so a
    completion is scored once (the task's checker can be slow: math-verify) and read twice."""

    @functools.lru_cache(maxsize=1024)  # a step's completions: prompts_per_step x group_size
    def scored(index: int, text: str) -> Scored:
        return score(task, prompts[index], text)

    def correct(completions: list, item_index: list[int], **_: Any) -> list[float]:
        return [scored(i, _text(c)).correct for c, i in zip(completions, item_index)]

    def format(completions: list, item_index: list[int], **_: Any) -> list[float]:  # noqa: A001 (TRL logs the name)
        return [scored(i, _text(c)).formatted for c, i in zip(completions, item_index)]

    return [correct, format]


def _text(completion: Any) -> str:
    """A completion's text: conversational prompts get [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)
