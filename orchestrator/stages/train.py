"""Training: a round's fine-tune, and the RL round's GRPO (the warm-up's own parts are in `warmup`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sgi.orchestrator import build
from sgi.orchestrator.stages.context import Context
from sgi.orchestrator.stages.select import rl_prompts


def train(ctx: Context, round_: int, base: Path, out: Path, fit: Callable[..., dict[str, Any]]) -> str:
    """Fine-tune from the current checkpoint on the round's training set (LoRA by default),
    through `fit` (Engines.fit, the warm-up's path too).

    The trainer saves its state every `train.state_every` steps and continues from it, so
    a killed or stopped run resumes mid-training and ends with the same weights.
    """
    examples = [(row.question, row.answer) for row in ctx.store.train_set(round_)]
    metrics = fit(f"round {round_}: training steps", base, examples, out, build.train_args(ctx.cfg))
    ctx.store.add_checkpoint(round_, str(out / "merged"), str(base), metrics)
    return f"{metrics['steps']} steps on {len(examples)} examples, final loss {metrics['final_loss']:.3f}"


def reinforce(ctx: Context, round_: int, base: Path, out: Path, fit: Callable[..., dict[str, Any]]) -> str:
    """The RL round (loop.rl): GRPO from the last supervised checkpoint on prompts drawn by
    the round's own profile, the task's checker as reward; the prompts are stored as the
    round's training set (reason targeted or replay), each step's reward and KL in rl_steps.
    Resumes mid-RL like training does."""
    rl = ctx.cfg.loop.rl
    chosen = rl_prompts(ctx, round_)
    ctx.store.add_train_set(round_, f"rl-{rl.prompts}", chosen)
    pool = {item.item_id: item for item in ctx.store.items("pool")}
    prompts = [pool[c.item_id] for c in chosen]
    args = {**build.rl_args(ctx.cfg), "task": ctx.task}
    metrics = fit(f"round {round_}: GRPO steps", base, prompts, out, args, method="reinforce")
    ctx.store.add_rl_steps(round_, metrics["history"])
    ctx.store.add_checkpoint(round_, str(out / "merged"), str(base), metrics)
    rewards = [h["reward"] for h in metrics["history"]]
    quarter = max(1, len(rewards) // 4)
    return (f"GRPO ({rl.prompts} prompts): {rl.steps} steps x {rl.prompts_per_step} prompts x {rl.group_size} "
            f"samples; mean reward {sum(rewards[:quarter]) / quarter:.2f} in the first quarter, "
            f"{sum(rewards[-quarter:]) / quarter:.2f} in the last; KL {metrics['history'][-1].get('kl', 0.0):.4f}")
