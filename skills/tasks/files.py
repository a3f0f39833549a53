"""A task read from the user's own JSONL, CSV/TSV or Parquet file.

    FileTask(Path("items.jsonl"), fields={"question": "q", "answer": "a"}).load_items()

`fields` maps our names to the file's columns: question and answer are required; id,
skills and split are optional. Without an id column an item's id is a hash of its
question, and without a split column the id is hashed into pool/probe/test, so both are
stable across runs and row reorderings. A split column holds pool, probe, test or general,
or the usual names (train -> pool, validation/val/dev -> probe; listed in `self.aliased`).
`skills` (optional) is the allowed catalogue:
a row naming any other skill is bad; without it the supplied labels are the catalogue.

Bad input raises one `TaskDataError` that names the file, the line (Parquet: the row
index) and what to do. Row problems (bad JSON line, missing or empty field, duplicate
id, non-UTF-8 bytes, a question over MAX_QUESTION_BYTES, an unknown skill or split) are
left out with `on_bad_row="skip"` and listed in `self.skipped`; file problems (empty
file, missing column, unreadable Parquet or CSV) always raise. `load_items` returns
every good item or raises: nothing is ever half-loaded. A second call on an unchanged
file returns the first call's result without reading it again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from difflib import get_close_matches
from functools import lru_cache
from pathlib import Path
from typing import Any

from sgi.skills.answers import extract_answer
from sgi.skills.records import SPLITS, Item

# A question longer than this (UTF-8 bytes) is a bad row: no prompt that long fits a small
# student's context, and it is almost always a broken export (a whole document in a cell).
MAX_QUESTION_BYTES = 64 * 1024
ANSWER_KINDS = ("number", "text", "math")
DEFAULT_SPLIT_FRACTIONS = {"pool": 0.6, "probe": 0.2, "test": 0.2}
_FIELDS = ("question", "answer", "id", "skills", "split")
# The split names datasets usually carry, read as ours: training data is the pool STAT
# selects from; a validation split is the probe it measures the student on.
SPLIT_ALIASES = {"train": "pool", "training": "pool", "validation": "probe", "valid": "probe", "val": "probe",
                 "dev": "probe"}
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
# Without a signal-based timeout (off the main thread) a pathological answer could keep
# sympy busy for minutes; answers longer than this are only compared as text there.
_MAX_UNTIMED_VERIFY_CHARS = 200


class TaskDataError(ValueError):
    """A user's data file is wrong: one line naming the file, the line or row, the problem and the fix."""

    def __init__(self, path: Path, line: int | None, problem: str, *, row_index: bool = False) -> None:
        self.path, self.line, self.problem = path, line, problem
        where = "" if line is None else (f", row index {line}" if row_index else f", line {line}")
        super().__init__(f"{path}{where}: {problem}".replace("\n", " "))


class _RowError(Exception):
    """One row's problem; turned into a TaskDataError or a skip by the loader."""


class FileTask:
    """A `Task` over a JSONL, CSV/TSV or Parquet file with question and answer columns."""

    def __init__(
        self,
        path: Path,
        fields: Mapping[str, str],
        *,
        name: str | None = None,
        default_split_fractions: Mapping[str, float] | None = None,
        on_bad_row: str = "error",
        answer_kind: str = "text",
        skills: Sequence[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            raise ValueError(f"FileTask fields: unknown key(s) {unknown}; use some of {list(_FIELDS)}")
        for required in ("question", "answer"):
            if not fields.get(required):
                raise ValueError(f"FileTask fields: '{required}' is required, e.g. fields={{'{required}': 'column name'}}")
        self.fields = dict(fields)
        if on_bad_row not in ("error", "skip"):
            raise ValueError(f"FileTask on_bad_row must be 'error' or 'skip', not {on_bad_row!r}")
        if answer_kind not in ANSWER_KINDS:
            raise ValueError(f"FileTask answer_kind must be one of {ANSWER_KINDS}, not {answer_kind!r}")
        self.on_bad_row = on_bad_row
        self.answer_kind = answer_kind
        self.split_fractions = _check_fractions(default_split_fractions or DEFAULT_SPLIT_FRACTIONS)
        self.allowed_skills = _check_catalogue(skills, self.fields)
        self._allowed = frozenset(self.allowed_skills or ())
        self.skipped: list[tuple[int, str]] = []  # (line or row index, problem) of rows left out
        self.aliased: dict[str, str] = {}  # split values read by their common name, e.g. 'train' -> 'pool'
        self._loaded: tuple[tuple[int, int], list[Item], list[tuple[int, str]], dict[str, str]] | None = None

    # -- Task protocol -------------------------------------------------------------

    def load_items(self) -> list[Item]:
        fmt = _SUFFIXES.get(self.path.suffix.lower())
        if fmt is None:
            raise TaskDataError(self.path, None, f"unknown file type '{self.path.suffix}'; use one of {', '.join(_SUFFIXES)}")
        if not self.path.is_file():
            raise TaskDataError(self.path, None, "file not found; check the path (relative paths start at the working directory)")
        stat = self.path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        if self._loaded and self._loaded[0] == key:
            self.skipped, self.aliased = list(self._loaded[2]), dict(self._loaded[3])
            return list(self._loaded[1])
        if stat.st_size == 0:
            raise TaskDataError(self.path, None, "the file is empty (0 bytes), no rows; add items (one question and answer per row)")
        rows = {"jsonl": self._jsonl_rows, "csv": self._csv_rows, "tsv": self._csv_rows, "parquet": self._parquet_rows}[fmt]()
        by_row_index = fmt == "parquet"

        items: list[Item] = []
        skipped: list[tuple[int, str]] = []
        self.aliased = {}
        first_seen: dict[str, int] = {}
        n_rows = 0
        for where, row in rows:
            n_rows += 1
            try:
                if isinstance(row, _RowError):
                    raise row
                item = self._item(row, where)
                if item.item_id in first_seen:
                    how = "question" if "id" not in self.fields else "id"
                    raise _RowError(
                        f"duplicate {how} (id {item.item_id!r}, first at {_where(first_seen[item.item_id], by_row_index)}); "
                        f"remove the duplicate row" + ("" if how == "id" else " or add an id column")
                    )
            except _RowError as bad:
                if self.on_bad_row == "error":
                    raise TaskDataError(self.path, where, f"{bad}; or load with on_bad_row='skip'", row_index=by_row_index) from None
                skipped.append((where, str(bad)))
                continue
            first_seen[item.item_id] = where
            items.append(item)

        if n_rows == 0:
            what = {"jsonl": "only blank lines", "parquet": "0 rows"}.get(fmt, "only a header")
            raise TaskDataError(self.path, None, f"the file has no rows ({what}); add items (one question and answer per row)")
        if not items:
            first = skipped[0]
            raise TaskDataError(
                self.path, None,
                f"all {len(skipped)} rows are bad, first at {_where(first[0], by_row_index)}: {first[1]}",
            )
        self.skipped = skipped
        self._loaded = (key, items, skipped, dict(self.aliased))
        return list(items)

    def extract(self, item: Item, output: str) -> str:
        return extract_answer(output, "number" if self.answer_kind == "number" else "text")

    def is_correct(self, item: Item, answer: str) -> bool:
        if not answer.strip():
            return False
        if _normalise_text(answer) == _normalise_text(item.answer):
            return True
        if self.answer_kind == "text":
            return False
        return math_equal(item.answer, answer)

    # -- rows ----------------------------------------------------------------------

    def _item(self, row: Mapping[str, Any], where: int) -> Item:
        question = _text(row, self.fields["question"], "question", required=True)
        answer = _text(row, self.fields["answer"], "answer", required=True)
        size = len(question.encode("utf-8", "surrogateescape"))
        if size > MAX_QUESTION_BYTES:
            raise _RowError(
                f"question is over {MAX_QUESTION_BYTES // 1024} KB ({size:,} bytes; the limit is "
                f"MAX_QUESTION_BYTES = {MAX_QUESTION_BYTES:,} bytes of UTF-8); shorten it or drop the row"
            )
        for key in ("question", "answer", "id", "skills", "split"):
            value = row.get(self.fields.get(key, ""))
            if isinstance(value, str) and _has_bad_bytes(value):
                raise _RowError(f"non-UTF-8 bytes in field '{self.fields[key]}'; re-save the file as UTF-8")
        if "id" in self.fields:
            item_id = _text(row, self.fields["id"], "id", required=True)
        else:
            item_id = "q" + hashlib.sha256(question.encode("utf-8")).hexdigest()[:16]
        skills = _skills(row.get(self.fields["skills"])) if "skills" in self.fields else ()
        if self.allowed_skills is not None:
            for skill in skills:
                if skill not in self._allowed:
                    raise _RowError(_unknown_skill(skill, self.fields["skills"], self.allowed_skills))
        if "split" in self.fields:
            value = _text(row, self.fields["split"], "split", required=True).strip().lower()
            split = SPLIT_ALIASES.get(value, value)
            if split not in SPLITS:
                raise _RowError(f"unknown split {value!r}; use one of {', '.join(SPLITS)} "
                                f"(or {', '.join(f'{a} for {s}' for a, s in SPLIT_ALIASES.items())})")
            if split != value:
                self.aliased[value] = split
        else:
            split = hashed_split(item_id, self.split_fractions)
        return Item(
            item_id=item_id, question=question, answer=answer, split=split, skills=skills,
            meta={"file": self.path.name, "row": where},
        )

    def _jsonl_rows(self) -> Iterator[tuple[int, dict | _RowError]]:
        offset = 0  # of the line's first byte in the file
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                start, offset = offset, offset + len(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as bad:
                    yield number, _RowError(
                        f"non-UTF-8 byte 0x{raw[bad.start]:02x} at column {bad.start + 1} (file byte offset "
                        f"{start + bad.start}); re-save the file as UTF-8"
                    )
                    continue
                line = line.lstrip("\ufeff") if number == 1 else line
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as bad:
                    yield number, _RowError(f"bad JSON ({bad.msg} at column {bad.colno}); each line must be one JSON object")
                    continue
                if not isinstance(row, dict):
                    yield number, _RowError(f"a JSON {type(row).__name__}, not an object; each line must be one JSON object")
                elif (column := _lone_surrogate(row)) is not None:
                    # JSON can escape half of a UTF-16 pair ("\ud800"): not a character, so no text holds it
                    yield number, _RowError(f"field {column!r} holds an unpaired surrogate escape (\\ud800-\\udfff), "
                                            "which is not text; write the character itself")
                else:
                    yield number, row

    def _csv_rows(self) -> Iterator[tuple[int, dict | _RowError]]:
        # surrogateescape keeps undecodable bytes as marker characters, so one bad row can
        # be reported (or skipped) by its line instead of failing the whole file.
        text = self.path.read_bytes().decode("utf-8", "surrogateescape").lstrip("\ufeff")
        # The default limit (128 KB a field) would make one over-long question an unreadable
        # file; above it the row is still reported (or skipped) by the question limit.
        csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if self.path.suffix.lower() == ".tsv" else ",")
        try:
            header = next(reader, None)
        except csv.Error as bad:
            raise TaskDataError(self.path, 1, f"unreadable CSV header ({bad})") from None
        if header is None:
            return
        header = [column.strip() for column in header]
        if any(_has_bad_bytes(column) for column in header):
            raise TaskDataError(self.path, 1, "non-UTF-8 bytes in the header; re-save the file as UTF-8")
        self._check_columns(header, 1)
        end = reader.line_num
        while True:
            start = end + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as bad:
                raise TaskDataError(self.path, start, f"unreadable CSV ({bad}); check quoting on this line") from None
            end = reader.line_num
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                yield start, _RowError(f"{len(values)} values but the header has {len(header)} columns; check commas and quoting")
                continue
            yield start, dict(zip(header, values))

    def _parquet_rows(self) -> Iterator[tuple[int, dict | _RowError]]:
        import pyarrow.parquet as pq  # only Parquet users pay for the import

        try:
            schema = pq.read_schema(self.path)
            self._check_columns(schema.names, None)
            table = pq.read_table(self.path, columns=sorted(set(self.fields.values())))
        except TaskDataError:
            raise
        except Exception as bad:  # pyarrow raises several types for a corrupt or non-Parquet file
            raise TaskDataError(self.path, None, f"not a readable Parquet file ({type(bad).__name__}: {bad})") from None
        for index, row in enumerate(table.to_pylist()):
            yield index, row

    def _check_columns(self, columns: list[str], line: int | None) -> None:
        for key, column in self.fields.items():
            if column not in columns:
                raise TaskDataError(
                    self.path, line,
                    f"no column {column!r} for field '{key}' (columns: {', '.join(map(str, columns))}); "
                    f"fix the file or the mapping fields={{'{key}': ...}}",
                )


# -- helpers ---------------------------------------------------------------------------


def hashed_split(item_id: str, fractions: Mapping[str, float]) -> str:
    """The split an id falls in: a hash of the id, so it never depends on row order."""
    point = int.from_bytes(hashlib.sha256(f"split:{item_id}".encode()).digest()[:8], "big") / 2**64
    total = 0.0
    names = [split for split in SPLITS if split in fractions]
    for split in names:
        total += fractions[split]
        if point < total:
            return split
    return names[-1]


def math_equal(gold: str, answer: str) -> bool:
    """math-verify's equivalence (0.5 = 1/2 = \\frac{1}{2}); a parse failure is just False."""
    # math-verify times out with signal.alarm, which only works on the main thread;
    # elsewhere (Ray actor threads, thread pools) we turn the timeout off and bound the
    # input length instead.
    on_main = threading.current_thread() is threading.main_thread()
    if not on_main and max(len(gold), len(answer)) > _MAX_UNTIMED_VERIFY_CHARS:
        return False
    timeout = 5 if on_main else None
    from math_verify import verify
    from math_verify.errors import TimeoutException  # a BaseException, so named here

    try:
        parsed_gold, parsed_answer = _parse(gold, timeout), _parse(answer, timeout)
        if not parsed_gold or not parsed_answer:
            return False
        return bool(verify(parsed_gold, parsed_answer, timeout_seconds=timeout))
    except (Exception, TimeoutException):  # sympy raises many types; all mean "not shown equal"
        return False


@lru_cache(maxsize=8192)
def _parse(text: str, timeout: int | None) -> list:
    from math_verify import parse

    return parse(text, parsing_timeout=timeout)


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    bad = sorted(set(fractions) - set(SPLITS))
    if bad or not fractions:
        raise ValueError(f"default_split_fractions: unknown split(s) {bad}; use some of {list(SPLITS)}")
    if any(value < 0 for value in fractions.values()) or not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise ValueError(f"default_split_fractions must be non-negative and sum to 1, got {dict(fractions)}")
    return dict(fractions)


def _text(row: Mapping[str, Any], column: str, key: str, *, required: bool) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise _RowError(f"missing field '{key}' (column {column!r}); fill it in or drop the row")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _RowError(f"field '{key}' (column {column!r}) must be text or a number, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise _RowError(f"empty {key} (column {column!r}); fill it in or drop the row")
    return text


def _skills(value: Any) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, str):
        parts = value.split(";") if ";" in value else value.split(",")
    elif isinstance(value, (list, tuple)):
        parts = [str(part) for part in value if part is not None]
    else:
        raise _RowError(f"skills must be a list or a ';'/','-separated string, got {type(value).__name__}")
    return tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))


def _check_catalogue(skills: Sequence[str] | None, fields: Mapping[str, str]) -> tuple[str, ...] | None:
    if skills is None:
        return None
    if isinstance(skills, str):
        raise ValueError("FileTask skills must be a list of skill names, not one string")
    names = tuple(dict.fromkeys(str(name).strip() for name in skills))
    if not names or "" in names:
        raise ValueError("FileTask skills must be a non-empty list of non-empty skill names (or None)")
    if "skills" not in fields:
        raise ValueError("FileTask skills (the allowed catalogue) needs a skills column: fields={'skills': ...}")
    return names


def _unknown_skill(skill: str, column: str, allowed: tuple[str, ...]) -> str:
    close = get_close_matches(skill, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    shown = ", ".join(allowed[:12]) + (f", ... ({len(allowed)} in all)" if len(allowed) > 12 else "")
    return f"unknown skill {skill!r} in column {column!r}; {hint}allowed (task.file.skills): {shown}"


def _lone_surrogate(row: Mapping[str, Any]) -> str | None:
    """The first column of a JSON row whose text (or list of texts) holds a lone surrogate."""
    for column, value in row.items():
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and any("\ud800" <= c <= "\udfff" for c in t) for t in texts):
            return column
    return None


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def _normalise_text(text: str) -> str:
    text = text.strip().strip("*").strip().strip("\"'`").rstrip(".").strip()
    return re.sub(r"\s+", " ", text).casefold()


def _where(location: int, by_row_index: bool) -> str:
    return f"row index {location}" if by_row_index else f"line {location}"
