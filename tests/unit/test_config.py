"""Config: defaults, YAML, dotted overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgi.orchestrator.config import ConfigError, RunConfig, dump_config, load_config

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def test_defaults_need_no_file():
    cfg = load_config()
    assert cfg == RunConfig()
    assert cfg.task.kind == "gym" and cfg.student.model == "smollm2" and cfg.teacher.kind == "rules"
    assert cfg.run_dir == Path("runs/default")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_example_validates(path):
    load_config(path)


def test_precedence_defaults_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: mine\nstudent:\n  batch_size: 4\n  kshot: 2\n")
    cfg = load_config(f, ["student.batch_size=8", "warmup.enabled=false"])
    assert (cfg.name, cfg.student.batch_size, cfg.student.kshot, cfg.warmup.enabled) == ("mine", 8, 2, False)
    assert load_config(None, ["task.gym.families={gcd: 10}"]).task.gym.families == {"gcd": 10}


def test_round_trip_through_dump(tmp_path):
    cfg = load_config(None, ["name=x", "teacher.kind=embed"])
    f = tmp_path / "dumped.yaml"
    f.write_text(dump_config(cfg))
    assert load_config(f) == cfg


@pytest.mark.parametrize(
    "text, message",
    [
        ("student:\n  bach_size: 3\n", "student.bach_size: unknown key"),
        ("student:\n  batch_size: 0\n", "student.batch_size: Input should be greater than or equal to 1"),
        ("teacher:\n  kind: oracle\n", "teacher.kind"),
        ("name: 'bad name/..'\n", "name: String should match pattern"),
        ("difficulty:\n  samples: 3\n  min_agree: 4\n", "min_agree (4) cannot exceed samples (3)"),
        ("task:\n  kind: file\n", "task.file (with a path) is missing"),
        ("teacher:\n  kind: embed\nloop:\n  strategy: stat-syn\n", "needs a teacher that writes items"),
        ("loop:\n  strategy: random\n", "loop.strategy"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("student: [1\n", "invalid YAML"),
        ("loop:\n  rl: {enabled: true, group_size: 1}\n", "loop.rl.group_size: Input should be greater than or equal to 2"),
        ("loop:\n  rl: {prompts: skills}\n", "loop.rl.prompts: Input should be 'targeted' or 'uniform'"),
        ("loop:\n  rl: {enabled: true}\nray:\n  trainer_workers: 2\n", "loop.rl trains in one process"),
        ("loop:\n  rounds: 0\n", "loop: rounds: 0 runs no round"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert message in str(err.value)
    assert str(f) in str(err.value)


def test_override_errors():
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["student.batch_size"])
    with pytest.raises(ConfigError, match="student.batch_size: Input should be a valid integer"):
        load_config(None, ["student.batch_size=many"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Path("/nonexistent/sgi.yaml"))


def test_the_preset_switch_picks_the_task_and_explicit_families_win():
    from sgi.orchestrator.build import build_task
    from sgi.skills.tasks.gym import PRESETS

    assert load_config().task.gym.preset == "learnable"
    assert build_task(load_config()).families == PRESETS["learnable"].families
    hard = build_task(load_config(None, ["task.gym.preset=hard"]))
    assert hard.families == PRESETS["hard"].families and hard.general == PRESETS["hard"].general
    assert build_task(load_config(None, ["task.gym.preset=hard", "task.gym.families={gcd: 10}"])).families == {"gcd": 10}
    with pytest.raises(ConfigError, match="task.gym.preset"):
        load_config(None, ["task.gym.preset=easy"])


def test_a_run_stored_before_presets_reads_as_the_hard_preset_it_was_made_with():
    old = dump_config(load_config()).replace("    preset: learnable\n", "")
    assert "preset" not in old
    assert load_config(None, [], stored=old).task.gym.preset == "hard"
    assert load_config(None, [], stored=dump_config(load_config())).task.gym.preset == "learnable"


def test_a_run_stored_before_the_weighting_option_keeps_the_papers_rule():
    old = dump_config(load_config()).replace("  weighting: null\n", "")
    assert "weighting" not in old
    assert not load_config(None, [], stored=old).loop.by_learnability
    assert load_config(None, [], stored=dump_config(load_config())).loop.by_learnability
