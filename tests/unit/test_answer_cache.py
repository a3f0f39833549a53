"""The warm-up student's answer cache on real files: what is kept, what is looked up, a line
cut by a kill, a link in its place, and the settings digest that keys it."""

from __future__ import annotations

import os

import pytest

from sgi.orchestrator import build
from sgi.orchestrator.answers import AnswerCache
from sgi.orchestrator.config import load_config
from sgi.skills.records import Generation


def _gen(item_id: str, text: str) -> Generation:
    return Generation(item_id, 0, text, 2, 0.9, 0.5, 0.4)


def test_answers_are_found_by_prompt_under_todays_item_ids(tmp_path):
    cache = AnswerCache(tmp_path / "answers" / "x.jsonl")
    assert cache.lookup(["a"], ["What is 2 + 2?"]) == {}
    cache.add(["What is 2 + 2?", "What is 3 + 3?"], [_gen("old-1", "4"), _gen("old-2", "6")], seconds=0.25)
    found = cache.lookup(["t-7", "t-8", "t-9"], ["What is 3 + 3?", "What is 2 + 2?", "What is 5 + 5?"])
    assert set(found) == {"t-7", "t-8"}  # the unseen prompt is a miss
    assert found["t-7"].generation == _gen("t-7", "6") and found["t-7"].seconds == 0.25
    assert found["t-8"].generation.text == "4"


def test_a_line_cut_by_a_kill_is_skipped_and_later_lines_still_count(tmp_path):
    cache = AnswerCache(tmp_path / "x.jsonl")
    cache.add(["p1"], [_gen("a", "1")], 0.1)
    with open(cache.path, "a") as f:
        f.write('{"prompt": "cut mid-wri')  # what a SIGKILL during a write leaves
    cache.add(["p2"], [_gen("b", "2")], 0.2)
    assert set(cache.lookup(["a", "b"], ["p1", "p2"])) == {"a"}  # p2's line was glued to the cut one
    cache.add(["p2"], [_gen("b", "2")], 0.2)
    assert set(cache.lookup(["a", "b"], ["p1", "p2"])) == {"a", "b"}


def test_the_cache_file_is_never_written_through_a_link(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    path = tmp_path / "answers" / "x.jsonl"
    path.parent.mkdir()
    os.symlink(target, path)
    with pytest.raises(OSError):
        AnswerCache(path).add(["p"], [_gen("a", "1")], 0.1)
    assert target.read_text() == "precious\n"


def test_the_settings_that_shape_an_answer_key_the_file(tmp_path):
    model = tmp_path / "warmup" / "abc" / "merged"
    base = AnswerCache.for_model(model, build.answer_settings(load_config()))
    assert base.path.parent == model.parent / "answers"
    assert base.path == AnswerCache.for_model(model, build.answer_settings(load_config(None, ["seed=3"]))).path
    for change in ("student.system_prompt=Be brief.", "student.max_new_tokens=8", "student.batch_size=4"):
        assert AnswerCache.for_model(model, build.answer_settings(load_config(None, [change]))).path != base.path
