"""Where a benchmark result came from: date, commit, CPU, precision; and where it is kept.

Every bench that keeps finished results in `bench/results/<bench>/` stamps them with
`provenance()`, so a study that spans sessions and machines says which row ran where
(AVX-512 BF16 machines train in bf16, AVX2-only ones in fp32, about 2x slower).
"""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def provenance() -> dict[str, Any]:
    import torch

    from sgi.workers.models import native_bf16

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"date": datetime.date.today().isoformat(), "commit": commit or "unknown", "cpu": cpu_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "precision": "bf16" if native_bf16() else "fp32", "threads": torch.get_num_threads()}


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def keep(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write one finished result with its provenance, atomically; returns what was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {**record, **provenance()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamped, indent=1))
    tmp.replace(path)
    return stamped
