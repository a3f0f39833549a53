"""Greedy answers of the cached warm-up student, kept across runs beside its weights.

Every strategy of a study, and every repeat of `sgi run` on the default, starts from the
same cached warm-up student and evaluates it on the same items first; its answers do not
depend on the run. They are kept in `<warm-up folder>/answers/<settings digest>.jsonl`, one
line per answered prompt (a digest of the prompt text, the generation, and the seconds per
item it took when it was answered, so latency figures stay true), and a later run answers
only the prompts it has not seen. Deleting the warm-up folder deletes its answers.
Sampled answers (difficulty.consistency) are never cached.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sgi.skills.records import Generation


@dataclass(frozen=True)
class CachedAnswer:
    generation: Generation
    seconds: float  # per item, when it was answered


class AnswerCache:
    """One settings digest's answers of one model, as an append-only JSONL file."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_model(cls, model_dir: Path, settings: dict[str, Any]) -> AnswerCache:
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return cls(model_dir.parent / "answers" / f"{digest}.jsonl")

    def lookup(self, item_ids: Sequence[str], prompts: Sequence[str]) -> dict[str, CachedAnswer]:
        """item id -> its cached answer, for the prompts answered before (a cut last line is skipped)."""
        if not self.path.is_file():
            return {}
        known: dict[str, CachedAnswer] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                known[row["prompt"]] = CachedAnswer(Generation(**row["generation"]), float(row["seconds"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill mid-write
        return {i: replace(known[k], generation=replace(known[k].generation, item_id=i))
                for i, p in zip(item_ids, prompts) if (k := _key(p)) in known}

    def add(self, prompts: Sequence[str], generations: Sequence[Generation], seconds: float) -> None:
        """Append one batch (one write under an exclusive lock, so runs sharing the file interleave whole lines)."""
        lines = "".join(json.dumps({"prompt": _key(p), "generation": asdict(g), "seconds": seconds}) + "\n"
                        for p, g in zip(prompts, generations))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, lines.encode("utf-8"))
        finally:
            os.close(fd)


def _key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:32]
