"""Plain records passed between the stages; every row in the store comes from one of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

SPLITS = ("pool", "probe", "test", "general")


@dataclass(frozen=True)
class Item:
    """One task item with a checkable reference answer."""

    item_id: str  # stable across runs: derived from the source, never from row order alone
    question: str
    answer: str  # reference answer, as text
    split: str  # one of SPLITS
    family: str = ""  # generator / source family (e.g. "gcd"); "" for plain files
    skills: tuple[str, ...] = ()  # labels supplied with the data, if any
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # JSON-able structure


@dataclass(frozen=True)
class Skill:
    name: str  # short slug, unique within a catalogue (e.g. "add-carry")
    description: str  # one line a user can read in a report
    family: str = ""


@dataclass(frozen=True)
class Label:
    """Item `item_id` requires `skill` (multi-label: 1-5 labels per item)."""

    item_id: str
    skill: str
    score: float = 1.0  # labeller's confidence / similarity; 1.0 for exact rules


@dataclass(frozen=True)
class Generation:
    """One sampled student answer with the confidence of its answer tokens."""

    item_id: str
    sample: int  # 0 = greedy; 1..n = extra samples for self-consistency
    text: str  # raw decoded output
    n_tokens: int
    mean_prob: float  # mean top-1 probability over the generated answer tokens
    min_prob: float  # min top-1 probability over the generated answer tokens
    margin: float | None = None  # mean top-1 minus top-2 probability over them (None: engine lacks it)


@dataclass(frozen=True)
class Case:
    """A difficult item handed to the teacher for diagnosis."""

    item: Item
    output: str  # the student's full answer text
    extracted: str  # the answer parsed from it ("" if none)
    skills: tuple[str, ...]  # the item's labelled skills


@dataclass(frozen=True)
class Diagnosis:
    item_id: str
    skills: tuple[str, ...]  # 1-3 catalogue skills the student failed to apply
    reason: str


@dataclass(frozen=True)
class Candidate:
    """A teacher-written item for STAT-Syn, with the evidence `synthesis.keep` judges."""

    item: Item  # split "synthetic", a stable item_id; meta["provenance"] = {"skill", "references"}
    solutions: tuple[str, ...]  # final answers of independent solutions (3 by default)
    verified: bool  # an exact solver confirmed the reference answer (verifiable tasks only)


class SynthesisOutcome(NamedTuple):
    """One STAT-Syn candidate as the store records it: written for (skill, cause), kept or not."""

    candidate: Candidate
    skill: str
    cause: str  # the difficult item whose missing skill asked for it
    kept: bool  # passed `synthesis.keep` and was new


class TeacherCall(NamedTuple):
    """One try of one request to an LLM teacher (`workers.llm_client`), as `teacher_calls` keeps it."""

    key: str  # the request's digest: what the store's cache is keyed by
    attempt: int
    template: str
    model: str
    status: str  # "ok" or "error"
    response: str  # the reply's text, kept with an error too
    error: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


@dataclass(frozen=True)
class Solved:
    """A System-2 solver's answer to one item."""

    item_id: str
    output: str  # what the solver produced (reasoning, an expression, the votes)
    answer: str  # the final answer, for the task's checker ("" if none)
    n_tokens: int  # tokens generated for it (0 for solvers that generate none)
    seconds: float  # its share of the wall time of the batch it was solved in


@dataclass(frozen=True)
class TokenSolved:
    """An answer the student and a larger model decoded together, token by token (FS-GEN)."""

    item_id: str
    text: str
    n_tokens: int  # up to and including the EOS that ended it
    large_tokens: int  # how many of them the larger model chose
    seconds: float  # its share of the wall time of its batch
