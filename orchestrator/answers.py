"""Answers kept across runs: the cached warm-up student's, and System 2's.

Every strategy of a study, and every repeat of `sgi run` on the default, starts from the
same cached warm-up student and evaluates it on the same items first; its answers do not
depend on the run. They are kept in `<warm-up folder>/answers/<settings digest>.jsonl`, one
line per answered prompt (a digest of the prompt text, the generation, and the seconds per
item it took when it was answered, so latency figures stay true), and a later run answers
only the prompts it has not seen. Deleting the warm-up folder deletes its answers.
Sampled answers (difficulty.consistency) are never cached.

System 2's answers do not depend on the round's student either (the program writer, the
teacher): they are kept under the cache root in `system2/<solver key>.jsonl`, keyed by a
digest of the question, so a second run, every arm of a study and `sgi compose` with other
router settings pay System 2 once. The solver key digests every setting that shapes an
answer (`stages.compose.system2_key`): another writer model, prompt or exemplar file is
another file. Whether a cached answer is right is decided again by the task's checker.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sgi.skills.records import Generation, Solved


@dataclass(frozen=True)
class CachedAnswer:
    generation: Generation
    seconds: float  # per item, when it was answered


class KeyedLog:
    """An append-only JSONL file of records keyed by a digest, shared by concurrent runs:
    each batch is one write under an exclusive lock, so lines interleave whole, and a line
    cut by a kill is skipped when read (its key is simply answered again)."""

    def __init__(self, path: Path, key_field: str = "key"):
        self.path = path
        self.key_field = key_field

    def read(self) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        known: dict[str, dict[str, Any]] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                known[row[self.key_field]] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill mid-write
        return known

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append records (each with its key field), never through a link."""
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, lines.encode("utf-8"))
        finally:
            os.close(fd)


class AnswerCache:
    """One settings digest's answers of one model, as an append-only JSONL file."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_model(cls, model_dir: Path, settings: dict[str, Any]) -> AnswerCache:
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return cls(model_dir.parent / "answers" / f"{digest}.jsonl")

    def lookup(self, item_ids: Sequence[str], prompts: Sequence[str]) -> dict[str, CachedAnswer]:
        """item id -> its cached answer, for the prompts answered before."""
        known = KeyedLog(self.path, "prompt").read()
        found = {}
        for item_id, prompt in zip(item_ids, prompts):
            try:
                row = known[_key(prompt)]
                found[item_id] = CachedAnswer(Generation(**{**row["generation"], "item_id": item_id}),
                                              float(row["seconds"]))
            except (KeyError, TypeError, ValueError):
                continue
        return found

    def add(self, prompts: Sequence[str], generations: Sequence[Generation], seconds: float) -> None:
        """Append one batch."""
        KeyedLog(self.path, "prompt").append({"prompt": _key(p), "generation": asdict(g), "seconds": seconds}
                                             for p, g in zip(prompts, generations))


class System2Cache:
    """One System-2 solver's answers (by its settings key), keyed by question, across runs."""

    def __init__(self, root: Path, solver_key: str):
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in solver_key)
        self.path = root / "system2" / f"{safe}.jsonl"

    def lookup(self, item_ids: Sequence[str], questions: Sequence[str]) -> list[Solved]:
        """The cached answers to these questions, under today's item ids."""
        known = KeyedLog(self.path).read()
        found = []
        for item_id, question in zip(item_ids, questions):
            try:
                row = known[_key(question)]
                found.append(Solved(item_id, str(row["output"]), str(row["answer"]), int(row["n_tokens"]),
                                    float(row["seconds"])))
            except (KeyError, TypeError, ValueError):
                continue
        return found

    def add(self, questions: Sequence[str], solved: Sequence[Solved]) -> None:
        KeyedLog(self.path).append({"key": _key(q), "output": s.output, "answer": s.answer, "n_tokens": s.n_tokens,
                                    "seconds": s.seconds} for q, s in zip(questions, solved))


def _key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:32]
