"""The engines a run starts and stops: student pools, the trainer, the embedder, System-2
solvers and the token-level partner, on Ray actors (default) or inline.

Each is built on first use and released when the loop moves on, so the trainer and the
students never hold the same CPUs; `stop_all` ends whatever is still running.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sgi.orchestrator import build
from sgi.orchestrator.config import ConfigError, RunConfig
from sgi.orchestrator.progress import Reporter, StopRequested
from sgi.workers import actors


class Engines:
    def __init__(self, cfg: RunConfig, reporter: Reporter, base_model: Path):
        self.cfg = cfg
        self.reporter = reporter
        self.use_ray = cfg.ray.enabled
        self.base_model = base_model
        self.cluster_gpus = 0.0  # read from the cluster once Ray is up
        self.live: list[Any] = []  # every engine started and not yet stopped
        self._student: tuple[Path, Any] | None = None
        self._trainer: Any = None
        self._embedder: Any = None
        self._writer: Any = None
        self._reasoner: Any = None
        self._collab: Any = None
        self.larger_model = self._resolve_larger_model()  # a token-level partner it cannot decode with fails now

    def stop_all(self) -> None:
        for engine in self.live:
            actors.stop(engine)
        self.live.clear()

    def spawn(self, role: str, factory: Callable[..., Any], kwargs: dict[str, Any], num_cpus: float = 0,
              **options: Any) -> Any:
        """`factory(**kwargs)` as a Ray actor named after `role` (inline without Ray), kept for stop_all."""
        engine = actors.spawn(factory, kwargs, use_ray=self.use_ray, role=role, num_cpus=num_cpus,
                              max_restarts=self.cfg.ray.max_restarts, **options)
        self.live.append(engine)
        return engine

    def trainer(self) -> Any:
        """The trainer (one actor, or a Ray Train host of data-parallel workers), built on first use."""
        if self._trainer is None:
            from sgi.workers.train_host import TrainerHost

            args = build.trainer_host_args(self.cfg, self.cluster_gpus)
            # one trainer trains in its actor; a data-parallel host only coordinates its workers
            alone = args["workers"] == 1
            self._trainer = self.spawn("trainer", TrainerHost, args, num_cpus=args["worker_cpus"] if alone else 0,
                                       num_gpus=args["worker_gpus"] if alone else 0, max_concurrency=4)
        return self._trainer

    def fit(self, title: str, base: Path, examples: list, out: Path, args: dict[str, Any],
            method: str = "train") -> dict[str, Any]:
        """The one training path (warm-up, rounds, and with `method` "reinforce" the RL round's
        prompts): train from `base` into `out` with a bar, then release the trainer so its CPUs
        go back to the students. A stop asked for while it trains saves its state and raises
        StopRequested; a resumed run continues from it."""
        try:
            with self.reporter.bar(title, args["steps"], stoppable=False) as advance:
                metrics = actors.call_with_progress(self.trainer(), method, (base, examples, out),
                                                    {**args, **build.resume_args(self.cfg)}, advance,
                                                    stop=self.reporter.stop.is_set)
        finally:
            self.release_trainer()
        if "stopped_at" in metrics:
            raise StopRequested(f"{title}: stopped after step {metrics['stopped_at']} of {metrics['steps']}, "
                                "state saved")
        return metrics

    def release_trainer(self) -> None:
        if self._trainer is not None:
            actors.stop(self._trainer)
            self.live.remove(self._trainer)
        self._trainer = None

    def embedder(self) -> Any:
        """Sentence embeddings for the embed-sel baseline (None for the other strategies)."""
        if self.cfg.loop.strategy != "embed-sel":
            return None
        if self._embedder is None:
            from sgi.workers.embedder import Embedder

            self._embedder = self.spawn("embedder", Embedder, {})
        return self._embedder

    def system2(self, model: Path, teacher: Any, task: Any) -> Any:
        """The configured System-2 solver, built on first use (the teacher and the task's
        answer extraction serve the solvers that need them)."""
        return actors.Lazy(lambda: self._system2(model, teacher, task))

    def _system2(self, model: Path, teacher: Any, task: Any) -> Any:
        from sgi.skills import solvers

        c = self.cfg.compose
        if c.system2 == "oracle":
            return solvers.OracleSolver()
        if c.system2 == "teacher":
            return solvers.TeacherSolver(teacher, self.cfg.student.batch_size)
        if c.system2 == "self-consistency":
            from sgi.workers.student import TransformersStudent

            args = {**build.student_args(self.cfg, str(model)), "max_new_tokens": c.self_consistency.max_new_tokens}
            # no CPU reserved: it runs only while the student waits, and a reservation could
            # leave the trainer unschedulable on a small cluster
            self._reasoner = self.spawn("reasoner", TransformersStudent, args)
            return solvers.SelfConsistencySolver(self._reasoner, task.extract, c.self_consistency.n,
                                                 c.self_consistency.temperature, self.cfg.student.batch_size)
        if self._writer is None:
            from sgi.workers.models import resolve_model
            from sgi.workers.student import TransformersStudent

            shots = solvers.load_program_shots(c.program.shots)
            writer = resolve_model(c.program.model) if c.program.model else self.base_model
            args = {**build.student_args(self.cfg, str(writer)), "max_new_tokens": c.program.max_new_tokens,
                    "system_prompt": shots.system, "shots": shots.shots}
            self._writer = self.spawn("program-writer", TransformersStudent, args)  # no CPU reserved, as above
        return solvers.ProgramSolver(self._writer, self.cfg.student.batch_size)

    def _resolve_larger_model(self) -> Path | None:
        """compose.token.model's folder, checked against the student's tokenizer (None: off)."""
        if self.cfg.compose.token.model is None:
            return None
        from transformers import AutoTokenizer

        from sgi.workers.collab import require_shared_tokenizer
        from sgi.workers.models import resolve_model

        path = resolve_model(self.cfg.compose.token.model, role="compose.token.model")
        try:
            require_shared_tokenizer(AutoTokenizer.from_pretrained(self.base_model), AutoTokenizer.from_pretrained(path),
                                     path)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return path

    def token_collab(self, model: Path) -> Any:
        """The student at `model` paired with compose.token.model (None when that is off)."""
        if self.larger_model is None:
            return None
        return actors.Lazy(lambda: self._token_collab(model))

    def _token_collab(self, model: Path) -> Any:
        if self._collab is None:
            from sgi.workers.collab import TokenCollaboration

            args = {"large_path": str(self.larger_model), **build.student_args(self.cfg, str(model))}
            self._collab = self.spawn("token-collaboration", TokenCollaboration, args)  # no CPU reserved, as above
        return self._collab

    def release_system2(self) -> None:
        for engine in (self._writer, self._reasoner, self._collab):
            if engine is not None:
                actors.stop(engine)
                self.live.remove(engine)
        self._writer = self._reasoner = self._collab = None

    def student(self, model_path: Path) -> Any:
        """The student pool for `model_path`, loaded on first use (the previous one is released)."""
        return actors.Lazy(lambda: self._load_student(model_path))

    def _load_student(self, model_path: Path) -> actors.Pool:
        if self._student and self._student[0] == model_path:
            return self._student[1]
        if self.cfg.student.engine == "vllm":
            from sgi.workers.vllm_student import VLLMStudent as engine_class
        else:
            from sgi.workers.student import TransformersStudent as engine_class

        self.release_student()
        r = self.cfg.ray
        n = r.student_actors if self.use_ray else 1
        self.reporter.note(f"loading the student from {model_path}" + (f" on {n} actors" if n > 1 else ""))
        args = build.student_args(self.cfg, str(model_path))
        pool = actors.Pool([self.spawn("student", engine_class, args, num_cpus=r.student_cpus,
                                        num_gpus=r.student_gpus, placement="spread" if n > 1 else None)
                            for _ in range(n)])
        self._student = (model_path, pool)
        return pool

    def release_student(self) -> None:
        if self._student:
            for engine in self._student[1].engines:
                actors.stop(engine)
                self.live.remove(engine)
        self._student = None
