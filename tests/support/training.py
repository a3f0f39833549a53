"""Tiny training data and a tiny model for the trainer's tests."""

from __future__ import annotations

import random
from pathlib import Path

SYSTEM = "Give only the final answer."


def additions(seed: int, n: int) -> list[tuple[str, str]]:
    """`n` two-digit additions with their sums, the same for a seed."""
    rng = random.Random(seed)
    pairs = ((rng.randint(10, 49), rng.randint(10, 49)) for _ in range(n))
    return [(f"What is {a} + {b}?", str(a + b)) for a, b in pairs]


def save_tiny_model(path: Path) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer: trains in milliseconds a step."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from sgi.workers.models import resolve_model

    base = resolve_model()
    config = AutoConfig.from_pretrained(base)
    config.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(base).save_pretrained(path)
    return path
