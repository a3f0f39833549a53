"""The SmolLM2 conversion cache and the batched student engine (real model, CPU)."""

from __future__ import annotations

import json

import pytest

from sgi.workers.models import resolve_model

PROMPTS = [
    "What is 3 + 4?",
    "What is 25 + 17? Give only the number.",
    "Name a colour.",
    "Write the word cat backwards, then explain briefly how you did it.",
]
IDS = ["a", "b", "c", "d"]


@pytest.mark.slow
def test_resolve_model_converts_once_and_caches(tmp_path, capfd):
    notes: list[str] = []
    path = resolve_model("smollm2", cache_dir=tmp_path, note=notes.append)
    assert path.parent == tmp_path / "models" and path.name.startswith("smollm2-")
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config  # a plain folder, loadable without gguf
    assert (path / "tokenizer.json").is_file() and (path / "model.safetensors").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == [path.name]  # no temp leftovers
    # one note says what the first call does; transformers' conversion bars are held back
    assert len(notes) == 1 and "converting the shipped SmolLM2 GGUF" in notes[0]
    assert "GGUF tensors" not in capfd.readouterr().err
    assert resolve_model("smollm2", cache_dir=tmp_path, note=notes.append) == path
    assert len(notes) == 1  # the second call found the folder and converted nothing


@pytest.fixture(scope="module")
def fp32_student():
    from sgi.workers.student import TransformersStudent

    return TransformersStudent(resolve_model(), "Give only the final answer.", dtype="float32", max_new_tokens=12)


@pytest.mark.slow
def test_batched_greedy_matches_one_at_a_time(fp32_student):
    # Prompts of different lengths: left padding must not change what the model writes.
    fp32_student.batch_size = 4
    batched = fp32_student.generate(IDS, PROMPTS)
    fp32_student.batch_size = 1
    single = fp32_student.generate(IDS, PROMPTS)
    fp32_student.batch_size = 16
    assert [g.item_id for g in batched] == IDS and [g.sample for g in batched] == [0] * 4
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.n_tokens for g in batched] == [g.n_tokens for g in single]
    for b, s in zip(batched, single):
        assert b.mean_prob == pytest.approx(s.mean_prob, abs=1e-3)
        assert 0 < b.min_prob <= b.mean_prob <= 1
        assert 1 <= b.n_tokens <= fp32_student.max_new_tokens
        assert "<|im_end|>" not in b.text and "<|im_start|>" not in b.text


@pytest.mark.slow
def test_samples_are_indexed_and_reproducible(fp32_student):
    first = fp32_student.generate(IDS[:2], PROMPTS[:2], samples=2, temperature=1.0)
    again = fp32_student.generate(IDS[:2], PROMPTS[:2], samples=2, temperature=1.0)
    assert [(g.item_id, g.sample) for g in first] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    assert first == again
    greedy = fp32_student.generate(IDS[:2], PROMPTS[:2])
    assert [g.text for g in greedy] == [first[0].text, first[3].text]
    for g in first:
        assert 0 < g.min_prob <= g.mean_prob <= 1 and 1 <= g.n_tokens <= fp32_student.max_new_tokens


@pytest.mark.slow
def test_bf16_default_answers_sanely():
    from sgi.workers.student import TransformersStudent

    student = TransformersStudent(resolve_model(), None, max_new_tokens=8)
    (g,) = student.generate(["x"], ["What is the capital of France?"])
    assert "Paris" in g.text and 0 < g.min_prob <= g.mean_prob <= 1


@pytest.mark.slow
def test_a_long_shared_prefix_is_run_once_with_the_same_answers():
    """The program writer's prompts share ~370 tokens of worked examples: they are run once
    and reused by every row, and the answers are the ones plain left padding gives."""
    from sgi.skills.solvers import load_program_shots
    from sgi.workers import student as engine

    shots = load_program_shots()
    writer = engine.TransformersStudent(resolve_model(), shots.system, shots=shots.shots, dtype="float32",
                                        max_new_tokens=16, batch_size=4)
    questions = ["What is 17 + 25?", "Find the Greatest Common Divisor (GCD) of these numbers: 12, 18",
                 "Solve the following multiplication: 9 * 7. Give only the result as your final answer.", "3 - 8 = ?"]
    reused = writer.generate(IDS, questions)
    assert writer._prefix is not None and len(writer._prefix[0]) >= engine.PREFIX_REUSE_MIN
    writer._prefix, limit = None, engine.PREFIX_REUSE_MIN
    engine.PREFIX_REUSE_MIN = 10**6  # the plain path
    try:
        plain = writer.generate(IDS, questions)
    finally:
        engine.PREFIX_REUSE_MIN = limit
    assert writer._prefix is None
    assert [g.text for g in reused] == [g.text for g in plain]
    for r, p in zip(reused, plain):
        assert r.n_tokens == p.n_tokens and r.mean_prob == pytest.approx(p.mean_prob, abs=1e-3)
