"""Where converted models are cached, and a missing model path named with what to do."""

from __future__ import annotations

import pytest

from sgi.workers.models import ModelNotFoundError, cache_root, resolve_model


def test_cache_root_honours_sgi_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SGI_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("SGI_CACHE")
    assert cache_root().parts[-2:] == (".cache", "sgi")


def test_missing_model_path_says_what_to_do(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model(str(missing))
    msg = str(err.value)
    assert str(missing) in msg and "smollm2" in msg and "\n" not in msg
    assert isinstance(err.value, ValueError)
