"""The STAT loop. This issue runs its measuring half; training rounds build on it.

    sgi profile                      # embedded default task, SmolLM2 student, rules teacher
    sgi profile examples/arith.yaml  # the same from a config file
    sgi status runs/default          # what the run holds

Every stage is recorded in the store's ledger; a repeated command skips finished stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sgi.orchestrator import build, stages
from sgi.orchestrator.config import RunConfig, dump_config
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.store import SETUP_ROUND, Store
from sgi.workers import actors
from sgi.workers.teachers import make_teacher

STORE_FILE = "sgi.duckdb"


def profile(cfg: RunConfig, reporter: Reporter) -> list[tuple]:
    """Task -> labels -> warm-up -> answers -> difficulty -> diagnoses -> the round's MSP."""
    round_ = 0
    with Session(cfg, reporter) as s:
        s.stage(SETUP_ROUND, "task", stages.load_task)  # 1. items with reference answers
        s.stage(SETUP_ROUND, "label", stages.label_items)  # 2. skill catalogue, 1-5 labels per item
        student = s.student(s.warmup())  # the SFT-saturated student STAT starts from
        s.stage(round_, "infer", stages.answer_probe, round_, student)  # 3-4. answers, confidences, scores
        s.stage(round_, "difficulty", stages.mark_difficult, round_)  # 5. wrong or inconsistent
        s.stage(round_, "diagnose", stages.diagnose, round_)  # 6. the teacher names missing skills
        s.stage(round_, "profile", lambda ctx: f"{len(ctx.store.profile(round_))} skills profiled")  # 7. MSP view
        return s.ctx.store.profile(round_)


class Session:
    """A run's engines and store: on Ray actors (default) or inline, released on exit."""

    def __init__(self, cfg: RunConfig, reporter: Reporter):
        self.cfg = cfg
        self.reporter = reporter
        self.use_ray = cfg.ray.enabled
        self.engines: list[Any] = []

    def __enter__(self) -> Session:
        cfg = self.cfg
        if self.use_ray:
            self.reporter.note("starting Ray" + (f" at {cfg.ray.address}" if cfg.ray.address else " (local)"))
            actors.start_ray(cfg.ray.address, cfg.ray.num_cpus)
        store = self._spawn(Store, {"path": (cfg.run_dir / STORE_FILE).resolve()})
        store.record_run(cfg.name, dump_config(cfg))
        teacher = self._spawn(make_teacher, build.teacher_args(cfg))
        self.ctx = stages.Context(cfg=cfg, task=build.build_task(cfg), store=store, teacher=teacher,
                                  reporter=self.reporter)
        return self

    def __exit__(self, *exc: Any) -> None:
        store = self.ctx.store if hasattr(self, "ctx") else None
        if store is not None:
            store.close()
        for engine in self.engines:
            actors.stop(engine)

    def _spawn(self, factory: Callable[..., Any], kwargs: dict[str, Any], num_cpus: float = 0) -> Any:
        engine = actors.spawn(factory, kwargs, use_ray=self.use_ray, num_cpus=num_cpus)
        self.engines.append(engine)
        return engine

    def stage(self, round_: int, name: str, fn: Callable[..., str], *args: Any) -> None:
        """Run `fn(ctx, *args)` unless the ledger says it finished; record how it went."""
        store = self.ctx.store
        label = "setup" if round_ == SETUP_ROUND else f"round {round_}"
        if store.stage_done(round_, name):
            self.reporter.note(f"[dim]{label} {name}: done earlier, skipped[/dim]")
            return
        store.start_stage(round_, name)
        start = time.perf_counter()
        detail = fn(self.ctx, *args)
        store.finish_stage(round_, name, detail)
        self.reporter.note(f"{label} {name}: {detail} [dim]({time.perf_counter() - start:.1f} s)[/dim]")

    def warmup(self) -> Path:
        """The student's model folder: the base model, or its cached warm-up SFT."""
        from sgi.workers.models import cache_root, resolve_student

        base = resolve_student(self.cfg.student.model)
        if not self.cfg.warmup.enabled:
            return base
        examples = stages.warmup_examples(self.ctx)
        args = build.warmup_args(self.cfg)
        out = stages.warmup_dir(base, examples, args, cache_root())
        merged = out / "merged"
        self.stage(SETUP_ROUND, "warmup", self._train_warmup, base, examples, args, out)
        if not merged.is_dir():  # ledger says done but the cache was cleared: train again
            self._train_warmup(self.ctx, base, examples, args, out)
        return merged

    def _train_warmup(self, ctx: stages.Context, base: Path, examples: list, args: dict, out: Path) -> str:
        if (out / "merged").is_dir():
            return f"cached at {out}"
        from sgi.workers.warmup import WarmupTrainer

        trainer = actors.spawn(WarmupTrainer, {"threads": build.torch_threads(self.cfg)}, use_ray=self.use_ray,
                               num_cpus=1, max_concurrency=2)
        try:
            with self.reporter.bar("warm-up SFT (LoRA steps)", args["steps"]) as advance:
                metrics = actors.call_with_progress(trainer, "train", (base, examples, out), args, advance)
        finally:
            actors.stop(trainer)
        return f"{metrics['steps']} steps, final loss {metrics['final_loss']:.3f}, {metrics['seconds']:.0f} s"

    def student(self, model_path: Path) -> Any:
        from sgi.workers.student import TransformersStudent

        self.reporter.note(f"loading the student from {model_path}")
        return self._spawn(TransformersStudent, build.student_args(self.cfg, str(model_path)), num_cpus=1)

