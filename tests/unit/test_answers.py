"""Answer extraction on outputs recorded from the real student (zero-shot and warmed up)."""

import json
from pathlib import Path

import pytest

from sgi.skills.answers import extract_answer
from sgi.skills.tasks.gym import FAMILY_SPECS

RECORDED = [json.loads(line) for line in (Path(__file__).parents[1] / "data" / "real_outputs.jsonl").open()]


@pytest.mark.parametrize("row", RECORDED, ids=lambda r: r["output"][:40])
def test_recorded_outputs(row):
    kind = FAMILY_SPECS[row["family"]].kind
    assert extract_answer(row["output"], kind) == row["expected"]


def test_recording_covers_prose_and_bare_answers():
    assert len(RECORDED) >= 15
    assert any("\n" in r["output"] for r in RECORDED)
    assert any(r["expected"] == "" for r in RECORDED)


@pytest.mark.parametrize(
    "output, kind, expected",
    [
        ("The answer is: Paris.", "text", "Paris"),
        ("**Answer:** 3/4", "number", "3/4"),
        ("\\boxed{12}", "number", "12"),
        ("1,234", "number", "1234"),
        ("x = -5", "number", "-5"),
        ("", "number", ""),
    ],
)
def test_marker_and_format_rules(output, kind, expected):
    assert extract_answer(output, kind) == expected
