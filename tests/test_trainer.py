"""The LoRA SFT trainer: batching and masking (fast), and real learning on SmolLM2 (slow)."""

from __future__ import annotations

import random

import pytest

from sgi.workers.trainer import IGNORE, _batches, _collate

SYSTEM = "Give only the final answer."


def _additions(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = ((rng.randint(10, 49), rng.randint(10, 49)) for _ in range(n))
    return [(f"What is {a} + {b}?", str(a + b)) for a, b in pairs]


def test_collate_pads_right_and_masks_padding():
    batch = _collate([([5, 6, 7], [IGNORE, IGNORE, 7]), ([5, 8], [IGNORE, 8])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 8, 0]]
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 7], [IGNORE, 8, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_batches_are_seeded_full_epochs():
    a, b = _batches(10, 4, seed=3), _batches(10, 4, seed=3)
    first = [next(a) for _ in range(4)]
    assert first == [next(b) for _ in range(4)]
    assert all(len(x) == 4 for x in first)  # the ragged tail of an epoch is dropped
    assert len(set(first[0] + first[1])) == 8  # no repeats within an epoch
    assert first != [next(_batches(10, 4, seed=4)) for _ in range(4)]


@pytest.mark.slow
def test_encode_masks_the_prompt_and_ends_with_eos():
    from transformers import AutoTokenizer

    from sgi.workers.models import resolve_student
    from sgi.workers.student import render_chat
    from sgi.workers.trainer import _encode

    tok = AutoTokenizer.from_pretrained(resolve_student())
    ids, labels = _encode(tok, SYSTEM, "What is 3 + 4?", "7", max_len=128)
    answer = [t for t in labels if t != IGNORE]
    assert answer[-1] == tok.eos_token_id and tok.decode(answer[:-1]) == "7"
    prompt_len = labels.index(answer[0])
    # The trained prompt is exactly what the student feeds the model.
    assert tok.decode(ids[:prompt_len]) == render_chat(tok, SYSTEM, "What is 3 + 4?")
    assert _encode(tok, SYSTEM, "What is 3 + 4?", "7", max_len=10) is None


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(tmp_path):
    from sgi.workers.models import resolve_student
    from sgi.workers.trainer import train_lora

    runs = []
    for name in ("one", "two"):
        losses = []
        train_lora(resolve_student(), _additions(0, 32), tmp_path / name, system_prompt=SYSTEM, steps=3,
                   batch_size=4, progress=lambda s, n, loss: losses.append(loss))
        runs.append(losses)
    assert runs[0] == runs[1] and len(runs[0]) == 3


@pytest.mark.slow
def test_lora_learns_two_digit_addition(tmp_path):
    from sgi.workers.models import resolve_student
    from sgi.workers.student import TransformersStudent
    from sgi.workers.trainer import train_lora

    base = resolve_student()
    held_out = [x for x in _additions(1, 40) if x not in set(_additions(0, 200))][:24]

    def correct(model_path) -> int:
        student = TransformersStudent(model_path, SYSTEM, max_new_tokens=8)
        gens = student.generate([str(i) for i in range(len(held_out))], [q for q, _ in held_out])
        return sum(g.text == a for g, (_, a) in zip(gens, held_out))

    seen = []
    metrics = train_lora(base, _additions(0, 200), tmp_path / "round1", system_prompt=SYSTEM, steps=20,
                         progress=lambda s, n, loss: seen.append((s, n)))
    assert seen[-1] == (20, 20) and metrics["steps"] == 20
    assert metrics["final_loss"] < metrics["first_loss"] / 3
    assert (tmp_path / "round1" / "adapter" / "adapter_config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["round1"]  # no temp folders left beside it
    before, after = correct(base), correct(tmp_path / "round1" / "merged")
    assert after > before and after >= len(held_out) // 4, (before, after)
