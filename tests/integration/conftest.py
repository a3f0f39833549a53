"""Fixtures the integration tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.training import save_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer (the trainer's and Ray Train's tests)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))
