"""The RL reward on recorded real outputs of the student: the task's own checker, binarised,
and the format term (the answer alone, as the supervised rounds train it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgi.skills.records import Item
from sgi.skills.rewards import score
from sgi.skills.tasks.gym import GymTask

# SmolLM2-135M-Instruct's own answers: bare ones from the warm-up student (right and wrong),
# sentences from the zero-shot model (right, wrong, and one cut off before any answer).
RECORDED = [json.loads(line) for line in (Path(__file__).parents[1] / "data" / "rl_outputs.jsonl").open()]


@pytest.mark.parametrize("row", RECORDED, ids=[f"{r['family']}-{r['output'][:20]}" for r in RECORDED])
def test_recorded_outputs_are_scored_by_the_tasks_own_checker(row):
    item = Item("x", row["question"], row["answer"], "test", row["family"], (), row["meta"])
    scored = score(GymTask(), item, row["output"])
    assert (scored.correct, scored.formatted) == (row["correct"], row["formatted"])
    assert scored.reward(0.0) == row["correct"] and scored.reward(0.5) == row["correct"] + 0.5 * row["formatted"]


def test_a_completion_is_only_read_never_run():
    item = Item("x", "Calculate 6 * 7.", "42", "test", "mixed_ops", (), {})
    for text in ("__import__('os').system('touch /tmp/sgi-pwned')", "eval('6*7')", "<script>6 * 7</script>", "\x00\x1b[2J"):
        assert score(GymTask(), item, text).correct == 0.0
    assert not Path("/tmp/sgi-pwned").exists()
    assert score(GymTask(), item, "42.").formatted == 1.0 and score(GymTask(), item, "It is 42").formatted == 0.0
