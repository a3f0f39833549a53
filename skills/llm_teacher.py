"""The `llm` teacher: STAT's four teacher jobs as prompts to any OpenAI-compatible model.

    client = ChatClient(base_url, model, cache=store)          # workers/llm_client.py
    teacher = LLMTeacher(client.complete, load_templates())
    catalogue = teacher.build_catalogue(items)    # one fine skill per sampled item, then merged
    labels = teacher.label(items, catalogue)      # 1-5 catalogue skills per item
    diagnoses = teacher.diagnose(cases, {})       # judge, reason, 1-3 of the item's skills
    candidates = teacher.synthesize(skill, references, n, seed)   # new items, 3 solutions each

Prompts are template files (skills/templates/NAME.vN.j2: YAML front matter declaring the
inputs, the output model and the sampling, then the user message), overridable by name
from a folder (`teacher.llm.templates`). Every reply is parsed into the declared pydantic
model; the request carries that model's JSON schema, with the allowed skills as an enum,
so a server with guided decoding cannot answer outside the catalogue. A reply that still
does not parse is retried by the client and then recorded as an error: its item is left
out (unlabelled, undiagnosed, not synthesized), never guessed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sgi.skills.interfaces import TeacherOutputError
from sgi.skills.records import Candidate, Case, Diagnosis, Item, Label, Skill
from sgi.skills.synthesis import question_key

# --- output models: what each template's reply must parse into ---------------------------


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FineSkill(_Reply):
    skill: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1, max_length=300)


class CatalogueEntry(_Reply):
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1, max_length=300)


class Catalogue(_Reply):
    skills: list[CatalogueEntry] = Field(min_length=1, max_length=50)


class ItemLabels(_Reply):
    skills: list[str] = Field(min_length=1, max_length=5)  # constrained to the catalogue
    reason: str = Field(max_length=500)


class Verdict(_Reply):
    judge: Literal["correct", "incorrect"]
    reason: str = Field(max_length=500)
    skills: list[str] = Field(min_length=1, max_length=3)  # constrained to the item's skills


class NewItem(_Reply):
    question: str = Field(min_length=1, max_length=1000)
    answer: str = Field(min_length=1, max_length=100)


class Solution(_Reply):
    reasoning: str = Field(max_length=2000)
    answer: str = Field(min_length=1, max_length=100)


OUTPUTS: dict[str, type[_Reply]] = {
    "FineSkill": FineSkill, "Catalogue": Catalogue, "ItemLabels": ItemLabels, "Verdict": Verdict,
    "NewItem": NewItem, "Solution": Solution,
}


# --- templates ----------------------------------------------------------------------------

_TEMPLATE_FILE = re.compile(r"(?P<name>[a-z_]+)\.v(?P<version>\d+)\.j2")
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                            keep_trailing_newline=False, autoescape=False)  # prompt text, never HTML


@dataclass(frozen=True)
class Template:
    """One versioned prompt: declared inputs, output model and sampling; renders to chat messages."""

    name: str
    version: int
    output: type[_Reply]
    inputs: tuple[str, ...]
    temperature: float
    max_tokens: int
    system: str
    user: str
    source: str  # where it was loaded from, for error messages

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"

    def messages(self, **inputs: Any) -> list[dict[str, str]]:
        missing = [k for k in self.inputs if k not in inputs]
        extra = [k for k in inputs if k not in self.inputs]
        if missing or extra:
            raise ValueError(f"{self.source}: template {self.id} declares inputs {list(self.inputs)}; "
                             f"got {sorted(inputs)}")
        return [{"role": "system", "content": self.system.strip()},
                {"role": "user", "content": _JINJA.from_string(self.user).render(**inputs).strip()}]


def load_templates(override_dir: Path | None = None) -> dict[str, Template]:
    """The shipped templates (highest version of each name), then any in `override_dir` by name."""
    templates: dict[str, Template] = {}
    shipped = resources.files("sgi.skills").joinpath("templates")
    for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
        if _TEMPLATE_FILE.fullmatch(entry.name):
            t = _parse_template(entry.read_text(), f"sgi/skills/templates/{entry.name}")
            if t.name not in templates or t.version > templates[t.name].version:
                templates[t.name] = t
    if override_dir is not None:
        folder = Path(override_dir)
        if not folder.is_dir():
            raise ValueError(f"teacher.llm.templates: {folder} is not a folder")
        for path in sorted(folder.glob("*.j2")):
            if not _TEMPLATE_FILE.fullmatch(path.name):
                raise ValueError(f"{path}: template files are named NAME.vN.j2 (e.g. label.v2.j2)")
            t = _parse_template(path.read_text(), str(path))
            if t.name not in templates:
                raise ValueError(f"{path}: no template named {t.name!r} to override; "
                                 f"the teacher's templates are {', '.join(sorted(templates))}")
            templates[t.name] = t
    return templates


def _parse_template(text: str, source: str) -> Template:
    match = _TEMPLATE_FILE.fullmatch(Path(source).name)
    parts = text.split("---\n", 2) if text.startswith("---\n") else []
    if len(parts) != 3:
        raise ValueError(f"{source}: a template starts with YAML front matter between '---' lines")
    try:
        head = yaml.safe_load(parts[1]) or {}
        output = OUTPUTS[head["output"]]
        template = Template(
            name=match["name"], version=int(match["version"]), output=output, inputs=tuple(head["inputs"]),
            temperature=float(head.get("temperature", 0.0)), max_tokens=int(head.get("max_tokens", 256)),
            system=str(head.get("system", "")), user=parts[2], source=source,
        )
        _JINJA.parse(template.user)
    except (yaml.YAMLError, KeyError, TypeError, ValueError, jinja2.TemplateSyntaxError) as err:
        raise ValueError(f"{source}: bad template ({type(err).__name__}: {err}); the front matter needs "
                         f"output (one of {', '.join(OUTPUTS)}) and inputs") from None
    return template


# --- the contract with the client (workers/llm_client.py) ------------------------------


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion whose reply must parse into `parse`'s model."""

    template: str  # template id, e.g. "label.v1": recorded with the call
    messages: list[dict[str, str]]
    schema: dict[str, Any]  # JSON schema of the expected reply (sent where the server supports it)
    temperature: float
    max_tokens: int
    seed: int
    parse: Callable[[str], Any] = field(compare=False, repr=False)  # raises TeacherOutputError

    @property
    def key(self) -> str:
        """Cache key: everything that decides the reply (the model is added by the client)."""
        body = json.dumps([self.template, self.messages, self.schema, self.temperature, self.max_tokens, self.seed],
                          sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChatReply:
    value: Any = None  # the parsed reply, None when every try failed
    error: str = ""  # the last error, with the raw text the server sent
    cached: bool = False


Complete = Callable[[Sequence[ChatRequest]], list[ChatReply]]


# --- the teacher --------------------------------------------------------------------------


class LLMTeacher:
    """`Teacher` and `Synthesizer` over a chat model; deterministic for a fixed seed and model."""

    def __init__(self, complete: Complete, templates: dict[str, Template], *, discovery_sample: int = 60,
                 merge: Literal["teacher", "embed"] = "teacher", max_skills: int = 12,
                 embed: Callable[[list[str]], Any] | None = None, max_tokens: int | None = None, seed: int = 0):
        if merge == "embed" and embed is None:
            raise ValueError("LLMTeacher merge='embed' needs an embedding function")
        self.complete = complete
        self.templates = templates
        self.discovery_sample = discovery_sample
        self.merge = merge
        self.max_skills = max_skills
        self.embed = embed
        self.max_tokens = max_tokens
        self.seed = seed

    def request(self, name: str, seed: int = 0, enum: Sequence[str] | None = None, max_items: int | None = None,
                **inputs: Any) -> ChatRequest:
        """A request for template `name`; `enum` restricts the reply's skill names to those given,
        `max_items` the length of its skills list."""
        t = self.templates[name]
        schema = _closed(t.output.model_json_schema())
        if enum is not None:
            schema["properties"]["skills"]["items"] = {"type": "string", "enum": list(enum)}
        if max_items is not None:
            schema["properties"]["skills"]["maxItems"] = max_items

        def parse(text: str) -> Any:
            return _parse_reply(t, text, enum)

        return ChatRequest(t.id, t.messages(**inputs), schema, t.temperature, self.max_tokens or t.max_tokens,
                           seed, parse)

    # --- Teacher ---

    def build_catalogue(self, items: Sequence[Item]) -> list[Skill]:
        sample = _sample(items, self.discovery_sample, self.seed)
        replies = self.complete([self.request("discover", question=i.question, answer=i.answer) for i in sample])
        fine = [r.value for r in replies if r.value is not None]
        if not fine:
            errors = "; ".join(r.error for r in replies[:3])
            raise TeacherOutputError(f"skill discovery: no usable reply for {len(sample)} items ({errors})")
        return self._merge_by_teacher(fine) if self.merge == "teacher" else self._merge_by_embedding(fine)

    def label(self, items: Sequence[Item], catalogue: Sequence[Skill]) -> list[Label]:
        names = [s.name for s in catalogue]
        entries = [{"name": s.name, "description": s.description} for s in catalogue]
        replies = self.complete([self.request("label", enum=names, question=i.question, answer=i.answer,
                                              catalogue=entries) for i in items])
        return [Label(item.item_id, skill) for item, reply in zip(items, replies) if reply.value is not None
                for skill in dict.fromkeys(reply.value.skills)]

    def diagnose(self, cases: Sequence[Case], skill_accuracy: dict[str, float],
                 catalogue: Sequence[Skill] = ()) -> list[Diagnosis]:
        """The teacher's verdict per case; the task's checker still decides what counts as wrong."""
        described = {s.name: s.description for s in catalogue}
        asked = [c for c in cases if c.skills]  # an unlabelled item has nothing to blame
        replies = self.complete([
            self.request("diagnose", enum=list(c.skills), question=c.item.question, answer=c.item.answer,
                         output=c.output, skills=[{"name": s, "description": described.get(s, "")}
                                                  for s in c.skills])
            for c in asked
        ])
        out = []
        for case, reply in zip(asked, replies):
            if reply.value is not None:
                d = reply.value
                reason = d.reason if d.judge == "incorrect" else f"(teacher judged it correct) {d.reason}"
                out.append(Diagnosis(case.item.item_id, tuple(dict.fromkeys(d.skills)), reason))
        return out

    # --- Synthesizer ---

    def synthesize(self, skill: str, references: Sequence[Item], n: int, seed: int, *,
                   avoid: Sequence[str] = (), description: str = "") -> list[Candidate]:
        refs = [{"question": r.question, "answer": r.answer} for r in references[:3]]
        written = self.complete([
            self.request("synthesize", seed=seed * 1000 + i, skill=skill,
                         description=description or skill, references=refs)
            for i in range(n)
        ])
        avoided = {question_key(q) for q in avoid}
        new = list({question_key(r.value.question): r.value for r in written
                    if r.value is not None and question_key(r.value.question) not in avoided}.values())
        solutions = self.complete([self.request("solve", seed=seed * 1000 + 100 + k, question=w.question)
                                   for w in new for k in range(3)])
        family = references[0].family if references else ""
        out = []
        for j, item in enumerate(new):
            answers = tuple(r.value.answer.strip() if r.value is not None else "" for r in solutions[3 * j: 3 * j + 3])
            item_id = "syn-" + hashlib.sha1(f"{skill}|{item.question}".encode()).hexdigest()[:16]
            provenance = {"skill": skill, "references": [r.item_id for r in references[:3]], "teacher": "llm"}
            out.append(Candidate(Item(item_id, item.question.strip(), item.answer.strip(), "synthetic", family,
                                      (skill,), {"provenance": provenance}), answers, verified=False))
        return out

    # --- System 2 ---

    def solve(self, items: Sequence[Item]) -> list[str]:
        """The teacher's final answer per item, reasoning step by step ("" where it gave none)."""
        replies = self.complete([self.request("solve", seed=self.seed, question=i.question) for i in items])
        return [r.value.answer.strip() if r.value is not None else "" for r in replies]

    # --- catalogue merging ---

    def _merge_by_teacher(self, fine: Sequence[FineSkill]) -> list[Skill]:
        counted = _count_fine(fine)
        (reply,) = self.complete([self.request("merge", max_items=self.max_skills, fine_skills=counted,
                                               max_skills=self.max_skills)])
        if reply.value is None:
            raise TeacherOutputError(f"skill discovery: the teacher could not merge {len(counted)} skills "
                                     f"into a catalogue ({reply.error})")
        return _unique_skills([(e.name, e.description) for e in reply.value.skills][: self.max_skills])

    def _merge_by_embedding(self, fine: Sequence[FineSkill]) -> list[Skill]:
        """k-means over the fine names' embeddings; each cluster named by its most frequent member."""
        import numpy as np
        from sklearn.cluster import KMeans

        counted = _count_fine(fine)
        k = min(self.max_skills, len(counted))
        vectors = np.asarray(self.embed([f"{c['name']}: {c['description']}" for c in counted]))
        assignment = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit_predict(vectors) if k > 1 \
            else np.zeros(len(counted), int)
        named = []
        for cluster in sorted(set(assignment.tolist())):
            members = [c for c, a in zip(counted, assignment) if a == cluster]
            top = max(members, key=lambda c: c["count"])  # counted is sorted, so ties keep its order
            named.append((top["name"], top["description"]))
        return _unique_skills(named)


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """No properties beyond the declared ones, as OpenAI's strict structured outputs require."""
    for node in [schema, *schema.get("$defs", {}).values()]:
        if node.get("type") == "object":
            node["additionalProperties"] = False
    return schema


def _parse_reply(t: Template, text: str, enum: Sequence[str] | None) -> Any:
    try:
        value = t.output.model_validate_json(_json_part(text))
    except ValidationError as err:
        raise TeacherOutputError(f"{t.id}: reply does not match {t.output.__name__} "
                                 f"({err.errors()[0]['msg']} at {err.errors()[0]['loc']}): {text[:300]!r}") from None
    if enum is not None:
        outside = [s for s in value.skills if s not in enum]
        if outside:
            raise TeacherOutputError(f"{t.id}: skills {outside} are not among {list(enum)[:12]}: {text[:300]!r}")
    return value


def _json_part(text: str) -> str:
    """The JSON object in a reply, allowing for a ```json fence a model without guided decoding adds."""
    start, end = text.find("{"), text.rfind("}")
    return text[start: end + 1] if 0 <= start < end else text


def _sample(items: Sequence[Item], n: int, seed: int) -> list[Item]:
    """n items, pool first, in an order fixed by the seed and item ids (not by load order)."""
    pool = [i for i in items if i.split == "pool"] or list(items)
    return sorted(pool, key=lambda i: hashlib.sha1(f"{seed}|{i.item_id}".encode()).hexdigest())[:n]


def _count_fine(fine: Sequence[FineSkill]) -> list[dict[str, Any]]:
    """Distinct fine skill names with counts and their first description, most frequent first."""
    counts = Counter(_slug(f.skill) for f in fine)
    first = {}
    for f in fine:
        first.setdefault(_slug(f.skill), f.description.strip())
    return [{"name": name, "count": n, "description": first[name]} for name, n in counts.most_common()]


def _unique_skills(named: Sequence[tuple[str, str]]) -> list[Skill]:
    out: dict[str, Skill] = {}
    for name, description in named:
        slug = base = _slug(name) or "skill"
        n = 2
        while slug in out:
            slug, n = f"{base}-{n}", n + 1
        out[slug] = Skill(slug, " ".join(description.split())[:300])
    return list(out.values())


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:48]

