"""The SFT trainer on real weights: deterministic for a seed, it learns, it resumes to the
uninterrupted run's weights, and full fine-tunes write a plain model.

Resume and bookkeeping tests use a tiny random Llama with SmolLM2's tokenizer (a few ms a
step); learning tests use SmolLM2 itself.
"""

from __future__ import annotations

import pytest
from support.training import SYSTEM, additions

from sgi.workers.models import resolve_model
from sgi.workers.trainer import IGNORE


@pytest.mark.slow
def test_encode_masks_the_prompt_and_ends_with_eos():
    from transformers import AutoTokenizer

    from sgi.workers.student import render_chat
    from sgi.workers.trainer import _encode

    tok = AutoTokenizer.from_pretrained(resolve_model())
    ids, labels = _encode(tok, SYSTEM, "What is 3 + 4?", "7", max_len=128)
    answer = [t for t in labels if t != IGNORE]
    assert answer[-1] == tok.eos_token_id and tok.decode(answer[:-1]) == "7"
    prompt_len = labels.index(answer[0])
    # The trained prompt is exactly what the student feeds the model.
    assert tok.decode(ids[:prompt_len]) == render_chat(tok, SYSTEM, "What is 3 + 4?")
    assert _encode(tok, SYSTEM, "What is 3 + 4?", "7", max_len=10) is None


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(tmp_path):
    from sgi.workers.trainer import fine_tune

    runs = []
    for name in ("one", "two"):
        losses = []
        fine_tune(resolve_model(), additions(0, 32), tmp_path / name, system_prompt=SYSTEM, steps=3,
                  batch_size=4, progress=lambda s, n, loss: losses.append(loss))
        runs.append(losses)
    assert runs[0] == runs[1] and len(runs[0]) == 3


@pytest.mark.slow
def test_lora_learns_two_digit_addition(tmp_path):
    from sgi.workers.student import TransformersStudent
    from sgi.workers.trainer import fine_tune

    base = resolve_model()
    held_out = [x for x in additions(1, 40) if x not in set(additions(0, 200))][:24]

    def correct(model_path) -> int:
        student = TransformersStudent(model_path, SYSTEM, max_new_tokens=8)
        gens = student.generate([str(i) for i in range(len(held_out))], [q for q, _ in held_out])
        return sum(g.text == a for g, (_, a) in zip(gens, held_out))

    seen = []
    metrics = fine_tune(base, additions(0, 200), tmp_path / "round1", system_prompt=SYSTEM, steps=20,
                        progress=lambda s, n, loss: seen.append((s, n)))
    assert seen[-1] == (20, 20) and metrics["steps"] == 20
    assert metrics["final_loss"] < metrics["first_loss"] / 3
    assert (tmp_path / "round1" / "adapter" / "adapter_config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["round1"]  # no temp folders left beside it
    before, after = correct(base), correct(tmp_path / "round1" / "merged")
    assert after > before and after >= len(held_out) // 4, (before, after)


class _Killed(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True], ids=["lora", "full"])
def test_resumed_run_equals_an_uninterrupted_one(tiny_model, tmp_path, full):
    import torch
    from safetensors.torch import load_file

    from sgi.workers.trainer import saved_step, state_path, fine_tune

    args = dict(system_prompt=SYSTEM, steps=6, batch_size=4, seed=1, full_finetune=full)
    data = additions(0, 10)  # 2 batches an epoch: steps 4-6 cross an epoch boundary
    whole = fine_tune(tiny_model, data, tmp_path / "whole", **args)

    def kill_at_3(step, steps, loss):
        if step == 3:
            raise _Killed

    out = tmp_path / "round"
    # this run also keeps its step-2 model (the warm-up's half-way student), before the kill
    with pytest.raises(_Killed):
        fine_tune(tiny_model, data, out, state_every=3, progress=kill_at_3, also_save_step=2, **args)
    assert not out.exists() and saved_step(out) == 3
    torch.manual_seed(123)  # the state restores the RNG, whatever the process did meanwhile
    seen = []
    resumed = fine_tune(tiny_model, data, out, state_every=3, resume=True, also_save_step=2,
                        progress=lambda s, n, loss: seen.append(s), **args)
    assert seen == [4, 5, 6] and resumed["resumed_from"] == 3 and whole["resumed_from"] is None
    assert resumed["losses"] == whole["losses"]  # bitwise, bf16 autocast included
    weights = "merged/model.safetensors" if full else "adapter/adapter_model.safetensors"
    a, b = load_file(tmp_path / "whole" / weights), load_file(out / weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # keeping a copy changed nothing
    assert not state_path(out).exists()
    final, kept = load_file(out / "merged/model.safetensors"), load_file(out / "step-2/merged/model.safetensors")
    base = load_file(tiny_model / "model.safetensors")
    assert final.keys() == kept.keys() == base.keys()  # a plain model, LoRA merged
    assert not all(torch.equal(kept[k], final[k]) for k in kept) and not all(torch.equal(kept[k], base[k]) for k in kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round", "whole"]


@pytest.mark.slow
def test_resume_refuses_a_state_from_other_settings(tiny_model, tmp_path):
    from sgi.workers.trainer import fine_tune

    def kill_at_2(step, steps, loss):
        if step == 2:
            raise _Killed

    out = tmp_path / "round"
    with pytest.raises(_Killed):
        fine_tune(tiny_model, additions(0, 8), out, system_prompt=SYSTEM, steps=4, batch_size=4,
                  state_every=2, progress=kill_at_2)
    with pytest.raises(ValueError, match=r"other settings \(lr\)"):
        fine_tune(tiny_model, additions(0, 8), out, system_prompt=SYSTEM, steps=4, batch_size=4,
                  lr=1e-3, resume=True)


@pytest.mark.slow
def test_metrics_record_every_step(tiny_model, tmp_path):
    import json

    from sgi.workers.trainer import fine_tune

    m = fine_tune(tiny_model, additions(0, 8) + [("x" * 500, "1")], tmp_path / "r", system_prompt=SYSTEM,
                  steps=3, batch_size=4, group_by_length=True)
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == m
    assert len(m["losses"]) == 3 and m["first_loss"] == m["losses"][0]
    assert m["examples"] == 8 and m["skipped"] == 1 and m["resumed_from"] is None
    assert 0 < m["tokens_per_step"] <= m["padded_tokens_per_step"]
    # seconds is rounded to 0.01 (0.005 / 3 steps) and s_per_step to 0.001: 2e-3 failed once at 0.51 s
    assert m["seconds"] > 0 and m["s_per_step"] == pytest.approx(m["seconds"] / 3, abs=0.005 / 3 + 0.0005 + 1e-6)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["adapter", "merged", "metrics.json"]


@pytest.mark.slow
def test_full_finetune_learns_and_writes_a_plain_model(tmp_path):
    from transformers import AutoModelForCausalLM

    from sgi.workers.trainer import fine_tune

    # One fixed example repeated: memorising it drives the loss down within a few steps
    # (measured 3.8 -> 0.9 by step 3 at batch 4, lr 5e-5).
    m = fine_tune(resolve_model(), [("What is 12 + 30?", "42")] * 2, tmp_path / "full", system_prompt=SYSTEM,
                  steps=4, batch_size=2, full_finetune=True)
    assert m["full_finetune"] and m["losses"][-1] < m["losses"][0] / 2, m["losses"]
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["merged", "metrics.json"]
    AutoModelForCausalLM.from_pretrained(tmp_path / "full" / "merged")  # loads without peft


def test_training_without_ray_moves_the_bar_each_step_and_stops_when_asked(tiny_model, tmp_path):
    """Inline (ray.enabled false) the trainer runs in a worker thread while the caller polls it,
    as it polls an actor: the bar moves during training, and a stop saves the state mid-way."""
    from sgi.workers import actors
    from sgi.workers.train_host import TrainerHost
    from sgi.workers.trainer import saved_step

    trainer = actors.spawn(TrainerHost, {}, use_ray=False, role="trainer")
    shown: list[int] = []
    out = tmp_path / "round"
    result = actors.call_with_progress(
        trainer, "train", (tiny_model, additions(0, 16), out),
        {"system_prompt": SYSTEM, "steps": 200, "batch_size": 4, "bf16": False, "state_every": 1, "resume": True},
        shown.append, stop=lambda: sum(shown) >= 2, poll_s=0.05)
    assert "stopped_at" in result, "the stop never reached the trainer: all 200 steps ran"
    assert 2 <= result["stopped_at"] < 200 and sum(shown) == result["stopped_at"]
    assert sum(1 for s in shown if s) >= 2  # moved while training, not in one jump at the end
    assert saved_step(out) == result["stopped_at"] and not (out / "merged").exists()
