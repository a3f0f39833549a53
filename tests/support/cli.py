"""`sgi` in-process through `cli.main` (the entry point that turns user errors into one
line), with a stand-in student folder, and the check that an error is one line."""

from __future__ import annotations

from pathlib import Path


def fake_model(tmp_path: Path) -> Path:
    """A student folder with the files a model needs, each an empty stand-in: it passes the
    model-folder check, and anything that loaded it would crash."""
    model = tmp_path / "fake-model"
    model.mkdir(exist_ok=True)
    for name, text in (("config.json", '{"model_type": "llama"}'), ("model.safetensors", ""), ("tokenizer.json", "{}")):
        (model / name).write_text(text, encoding="utf-8")
    return model


def one_error_line(code: int, err: str, *parts: str) -> str:
    """The stderr of a user error: exactly one `error: ...` line holding every part."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    return lines[0]


