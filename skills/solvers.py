"""System-2 solvers, composed with the student (System 1) by the routers in `routing`.

    ProgramSolver(writer, shots)   # a model writes an expression; `safe_eval` computes it
    SelfConsistencySolver(...)     # the student reasons n times; majority vote
    TeacherSolver(teacher)         # the LLM teacher solves step by step
    OracleSolver()                 # the reference answer: a ceiling, labelled as such

Engines (the writer, the sampling student, the teacher) are handed in; this module
imports no torch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sgi.skills.records import Item, Solved
from sgi.skills.safe_eval import UnsafeExpression, evaluate, format_value

ORACLE_LABEL = "oracle (ceiling)"  # the reference answers: a ceiling, not a solver
REASONING_SUFFIX = "\n\nThink step by step, then give the final answer on its own line after 'Answer:'."


@dataclass(frozen=True)
class ProgramShots:
    system: str
    shots: tuple[tuple[str, str], ...]  # (question, expression)


def load_program_shots(path: Path | None = None) -> ProgramShots:
    """The writer's system prompt and exemplars: the shipped ones, or a YAML file's (named on error)."""
    source = path or resources.files("sgi.skills").joinpath("templates/program.v1.yaml")
    where = str(path) if path else "the shipped program.v1.yaml"
    try:
        data = yaml.safe_load(Path(str(source)).read_text() if path else source.read_text())
        shots = tuple((str(s["question"]), str(s["expression"])) for s in data["shots"])
        system = str(data.get("system", ""))
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise ValueError(f"{where}: expected `system` and `shots: [{{question, expression}}]` ({err})") from None
    if not shots:
        raise ValueError(f"{where}: no shots")
    return ProgramShots(system, shots)


def program_answer(text: str) -> str:
    """The value of the expression a writer produced, or "" if it is not safe arithmetic.

    Only the first line counts, and a trailing `= value` is dropped: small models often
    append their own (unreliable) result, and the point is that the evaluator computes it.
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    expression = line.split("=", 1)[0].strip().rstrip(".").strip("`$ ")
    try:
        return format_value(evaluate(expression))
    except UnsafeExpression:
        return ""


class ProgramSolver:
    """Program-aided System 2: the writer engine (set up with the exemplars as chat turns)
    turns each question into an expression that `safe_eval` computes exactly."""

    def __init__(self, writer: Any, batch_size: int = 16):
        self.writer = writer
        self.batch_size = batch_size

    def solve(self, items: Sequence[Item]) -> list[Solved]:
        out = []
        def write(batch: Sequence[Item]) -> list:
            return self.writer.generate([i.item_id for i in batch], [i.question for i in batch])

        for (batch, generations), seconds in _timed_batches(items, self.batch_size, write):
            out += [Solved(i.item_id, g.text, program_answer(g.text), g.n_tokens, seconds)
                    for i, g in zip(batch, generations)]
        return out


class SelfConsistencySolver:
    """The student reasoning at a temperature `n` times; the most common extracted answer wins
    (ties: the earliest sample's)."""

    def __init__(self, engine: Any, extract: Callable[[Item, str], str], n: int, temperature: float,
                 batch_size: int = 16):
        self.engine = engine
        self.extract = extract
        self.n = n
        self.temperature = temperature
        self.batch_size = batch_size

    def solve(self, items: Sequence[Item]) -> list[Solved]:
        out = []

        def sample(batch: Sequence[Item]) -> list:
            # samples=n-1 after the greedy one: n answers per item in all
            return self.engine.generate([i.item_id for i in batch], [i.question + REASONING_SUFFIX for i in batch],
                                        samples=self.n - 1, temperature=self.temperature)

        for (batch, generations), seconds in _timed_batches(items, self.batch_size, sample):
            for k, item in enumerate(batch):
                mine = generations[k * self.n: (k + 1) * self.n]
                votes = [self.extract(item, g.text) for g in mine]
                counted = Counter(v for v in votes if v)
                answer = max(counted, key=lambda v: (counted[v], -votes.index(v))) if counted else ""
                out.append(Solved(item.item_id, " | ".join(votes), answer, sum(g.n_tokens for g in mine), seconds))
        return out


class TeacherSolver:
    """The LLM teacher solving with reasoning (its `solve` template)."""

    def __init__(self, teacher: Any, batch_size: int = 16):
        self.teacher = teacher
        self.batch_size = batch_size

    def solve(self, items: Sequence[Item]) -> list[Solved]:
        out = []
        for (batch, answers), seconds in _timed_batches(items, self.batch_size, lambda b: self.teacher.solve(b)):
            out += [Solved(i.item_id, a, a, 0, seconds) for i, a in zip(batch, answers)]
        return out


class OracleSolver:
    """The task's reference answer: measures the ceiling on generated tasks, never a real solver."""

    def solve(self, items: Sequence[Item]) -> list[Solved]:
        return [Solved(i.item_id, ORACLE_LABEL, i.answer, 0, 0.0) for i in items]


def _timed_batches(items: Sequence[Item], size: int, run: Callable[[Sequence[Item]], Any]):
    """((batch, run(batch)), seconds per item) for consecutive batches."""
    for start in range(0, len(items), size):
        batch = items[start: start + size]
        began = time.perf_counter()
        result = run(batch)
        yield (batch, result), (time.perf_counter() - began) / len(batch)


def system2_label(key: str) -> str:
    """How a System-2 solver stored under `key` ("program@1a2b3c4d") is named wherever it is shown."""
    solver = key.split("@", 1)[0]
    return ORACLE_LABEL if solver == "oracle" else solver
