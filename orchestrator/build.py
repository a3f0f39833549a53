"""The one place where the config becomes objects and plain arguments."""

from __future__ import annotations

import os
from typing import Any

from sgi.orchestrator.config import RunConfig
from sgi.skills.interfaces import Task
from sgi.workers.models import native_bf16, resolve_dtype


def build_task(cfg: RunConfig) -> Task:
    if cfg.task.kind == "file":
        from sgi.skills.tasks.files import FileTask

        f = cfg.task.file
        return FileTask(f.path, f.fields, on_bad_row=f.on_bad_row, answer_kind=f.answer_kind, skills=f.skills)
    from sgi.skills.tasks import gym

    g = cfg.task.gym
    preset = gym.PRESETS[g.preset]
    return gym.GymTask(
        families=g.families or preset.families,
        probe_per_family=g.probe_per_family,
        test_per_family=g.test_per_family,
        general=g.general if g.general is not None else preset.general,
        seed=cfg.seed,
    )


def teacher_args(cfg: RunConfig, store: Any = None) -> dict[str, Any]:
    """Arguments for `workers.teachers.make_teacher`; an LLM teacher records its calls in `store`."""
    t, llm = cfg.teacher, cfg.teacher.llm
    if t.kind in ("llm", "local"):
        client = {"base_url": llm.base_url, "model": llm.model, "api_key_env": llm.api_key_env,
                  "max_concurrency": llm.max_concurrency, "timeout_s": llm.timeout_s,
                  "max_retries": llm.max_retries, "parse_retries": t.max_retries, "structured": llm.structured,
                  "cache": store}
        common = {"client": client, "templates": str(llm.templates) if llm.templates else None,
                  "discovery_sample": llm.discovery_sample, "merge": llm.merge, "max_skills": llm.max_skills,
                  "max_tokens": llm.max_tokens, "seed": cfg.seed}
        if t.kind == "local":
            return {"kind": "local", "local_model": t.local.model, "local_dtype": t.local.dtype,
                    "local_engine": t.local.engine, "threads": torch_threads(cfg), **common}
        return {"kind": "llm", **common}
    if t.kind == "embed":
        e = t.embed
        return {"kind": "embed", "n_skills": e.n_skills, "threshold": e.threshold, "seed": cfg.seed}
    return {"kind": "rules"}


def student_args(cfg: RunConfig, model_path: str) -> dict[str, Any]:
    """Arguments for `workers.student.TransformersStudent`."""
    s = cfg.student
    return {
        "model_path": model_path,
        "system_prompt": s.system_prompt,
        "batch_size": s.batch_size,
        "max_new_tokens": s.max_new_tokens,
        "dtype": resolve_dtype(s.dtype),
        "threads": student_threads(cfg),
        "seed": cfg.seed,
    }


def answer_settings(cfg: RunConfig) -> dict[str, Any]:
    """What shapes a student's greedy answer besides its weights and the prompt text: its
    engine and `student_args` less the path, threads and sampling seed; the key of the
    warm-up student's answer cache (`orchestrator/answers.py`)."""
    args = student_args(cfg, model_path="")
    return {"engine": cfg.student.engine, **{k: v for k, v in args.items() if k not in ("model_path", "threads", "seed")}}


def student_threads(cfg: RunConfig) -> int:
    """One student uses every core; a pool's actors share them, each its own CPU reservation."""
    return torch_threads(cfg) if cfg.ray.student_actors == 1 else max(1, round(cfg.ray.student_cpus))


def torch_threads(cfg: RunConfig) -> int:
    """Threads for each torch engine: Ray would otherwise pin an actor to its 1-CPU reservation."""
    return cfg.ray.num_cpus or os.cpu_count() or 1


def warmup_args(cfg: RunConfig) -> dict[str, Any]:
    """Hyper-parameters of `workers.trainer.fine_tune` for the warm-up SFT (its cache key too)."""
    w = cfg.warmup
    return _trainer_args(cfg, w.steps, w.batch_size, w.lr, w.lora_r)


def halfway_step(cfg: RunConfig) -> int:
    """The warm-up step whose student is kept to measure round 0's learning rates
    (`loop.warmup_rates`): half the warm-up, or 0 where no rate is measured."""
    measured = cfg.warmup.enabled and cfg.loop.by_learnability and cfg.loop.warmup_rates
    return cfg.warmup.steps // 2 if measured else 0


def train_args(cfg: RunConfig) -> dict[str, Any]:
    """Hyper-parameters of `workers.trainer.fine_tune` for a round's fine-tune."""
    t = cfg.train
    return {**_trainer_args(cfg, t.steps, t.batch_size, t.lr, t.lora_r), "full_finetune": t.full_finetune}


def rl_args(cfg: RunConfig) -> dict[str, Any]:
    """Hyper-parameters of `workers.rl.reinforce` for the RL round (the task is added by the stage)."""
    rl = cfg.loop.rl
    return {"system_prompt": cfg.student.system_prompt, "steps": rl.steps, "prompts_per_step": rl.prompts_per_step,
            "group_size": rl.group_size, "max_new_tokens": rl.max_new_tokens, "beta": rl.beta,
            "temperature": rl.temperature, "lr": rl.lr, "lora_r": cfg.train.lora_r, "format_weight": rl.format_weight,
            "seed": cfg.seed, "bf16": _bf16(cfg)}


def resume_args(cfg: RunConfig) -> dict[str, Any]:
    """How a training call checkpoints and resumes; not part of a warm-up's cache key (no effect on weights)."""
    return {"state_every": cfg.train.state_every, "resume": True}


def _trainer_args(cfg: RunConfig, steps: int, batch_size: int, lr: float | None, lora_r: int) -> dict[str, Any]:
    return {"system_prompt": cfg.student.system_prompt, "steps": steps, "batch_size": batch_size, "lr": lr,
            "lora_r": lora_r, "seed": cfg.seed, "bf16": _bf16(cfg)}


def _bf16(cfg: RunConfig) -> bool:
    """bf16 autocast for every training (warm-up, rounds, RL): as configured, else where native."""
    return native_bf16() if cfg.train.bf16 is None else cfg.train.bf16


def resource_needs(cfg: RunConfig, cluster_gpus: float) -> dict[str, float]:
    """What the run's largest phase reserves at once: the student pool, or the trainer
    (the pool is released before training, so the two never hold resources together)."""
    r = cfg.ray
    gpus = trainer_gpus(cfg, cluster_gpus)
    return {"CPU": max(r.student_actors * r.student_cpus, r.trainer_workers * r.trainer_cpus),
            "GPU": max(r.student_actors * r.student_gpus, r.trainer_workers * gpus)}


def trainer_host_args(cfg: RunConfig, cluster_gpus: float) -> dict[str, Any]:
    """`workers.train_host.TrainerHost`'s arguments: one trainer, or a data-parallel group."""
    r = cfg.ray
    return {"threads": torch_threads(cfg), "workers": r.trainer_workers, "worker_cpus": r.trainer_cpus,
            "worker_gpus": trainer_gpus(cfg, cluster_gpus), "max_failures": r.max_restarts}


def trainer_gpus(cfg: RunConfig, cluster_gpus: float) -> float:
    """GPUs per trainer (worker): as configured, else one when the cluster has any."""
    if cfg.ray.trainer_gpus is not None:
        return cfg.ray.trainer_gpus
    return 1.0 if cluster_gpus >= 1 else 0.0
