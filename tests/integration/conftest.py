"""Fixtures the integration tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.training import save_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer (the trainer's and Ray Train's tests)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module", autouse=True)
def _drop_merged_weights_after_the_module(tmp_path_factory):
    """Delete the merged-model weights this module's runs wrote, once the module is done.

    Every trained round writes a 540 MB merged model; kept for the whole suite they came to
    18 GB and filled a shared disk in CI. The stores, ledgers and logs stay for debugging.
    """
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    yield
    for folder in set(base.iterdir()) - before:
        for weights in folder.glob("**/merged/*.safetensors"):
            weights.unlink(missing_ok=True)
