"""The contracts between the loop and its engines, as Protocols (no base classes).

The loop is handed objects that satisfy these; Ray actors wrap the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sgi.skills.records import Candidate, Case, Diagnosis, Generation, Item, Label, Skill, Solved


class Task(Protocol):
    """A source of items and the checker for their answers."""

    name: str

    def load_items(self) -> list[Item]: ...

    def extract(self, item: Item, output: str) -> str:
        """The answer the output commits to ("" when there is none)."""
        ...

    def is_correct(self, item: Item, answer: str) -> bool:
        """The task's own checker, binarised."""
        ...


class TeacherOutputError(ValueError):
    """A teacher's answer could not be used (did not parse, or broke its schema); worth a retry."""


class TeacherRefused(RuntimeError):
    """The teacher's server refuses what the config demands of it (a reply schema under
    `structured: json_schema`); no retry helps, so the run stops and says what to change."""


class Teacher(Protocol):
    """Builds the skill catalogue, labels items, and diagnoses failures."""

    def build_catalogue(self, items: Sequence[Item]) -> list[Skill]: ...

    def label(self, items: Sequence[Item], catalogue: Sequence[Skill]) -> list[Label]: ...

    def diagnose(self, cases: Sequence[Case], skill_accuracy: dict[str, float],
                 catalogue: Sequence[Skill] = ()) -> list[Diagnosis]:
        """Name 1-3 labelled skills each case failed to apply.

        `skill_accuracy` is the student's accuracy per skill on this round's attempts,
        for teachers that attribute blame statistically; `catalogue` gives the skills'
        descriptions (passed each time: a restarted teacher actor keeps no state).
        """
        ...


class StudentEngine(Protocol):
    """Answers prompts in batches, keeping per-token confidence."""

    def generate(
        self, item_ids: Sequence[str], prompts: Sequence[str], *, samples: int = 0, temperature: float = 0.7
    ) -> list[Generation]:
        """Greedy answer (sample 0) per prompt, plus `samples` sampled answers each.

        A prompt is the user-message text; the engine applies the model's chat template.
        """
        ...


class Solver(Protocol):
    """A System-2 solver: slower and stronger than the student, used where the router escalates."""

    def solve(self, items: Sequence[Item]) -> list[Solved]:
        """One answer per item, in order."""
        ...


class Synthesizer(Protocol):
    """A teacher that can write new items for a skill (STAT-Syn); the rules teacher does."""

    def synthesize(
        self, skill: str, references: Sequence[Item], n: int, seed: int, *, avoid: Sequence[str] = (),
        description: str = "",
    ) -> list[Candidate]:
        """Up to n new items exercising `skill` (described by `description`), like
        `references`, none of whose questions is in `avoid`; each with independent
        solutions for the keep-rule."""
        ...
