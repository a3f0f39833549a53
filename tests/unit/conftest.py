"""Fixtures the unit tests share."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support.cli import fake_model

from sgi.orchestrator import cli


@pytest.fixture
def sgi(tmp_path, monkeypatch, capsys):
    """Run `sgi <args>` in-process; returns (exit code, stdout, stderr)."""
    model = fake_model(tmp_path)
    # main() sets these with setdefault; set them here so the test leaves no trace.
    for key, value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                       ("HF_HUB_OFFLINE", "1"), ("PYTHONWARNINGS", "ignore::FutureWarning"), ("RAY_DEDUP_LOGS", "1")):
        monkeypatch.setenv(key, os.environ.get(key, value))

    def run(*args: str, model_path: Path | None = model, run_options: bool = True) -> tuple[int, str, str]:
        """`run_options`: add the tiny-run settings (for commands that take --set and --quiet)."""
        argv = ["sgi", *args]
        if run_options:
            argv += ["--quiet", "--set", f"runs_dir={tmp_path / 'runs'}", "--set", "ray.enabled=false",
                     "--set", "warmup.enabled=false"]
        if run_options and model_path is not None:
            argv += ["--set", f"student.model={model_path}"]
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli.main()
        out, err = capsys.readouterr()
        return exited.value.code, out, err

    return run


