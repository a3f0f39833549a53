"""Pull the committed answer out of a student's free text.

Small models wrap answers in prose ("The answer is 12.") or echo the question; taking the
*first* number would credit numbers copied from the question, so we prefer an explicit
"answer:" marker, then the first line, and within a line the *last* number.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"(?:final answer|answer)\s*(?:is\s*:?|:|=)\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*-?\d+)?")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def answer_line(output: str) -> str:
    """The line of the output that carries the answer, stripped of decoration."""
    text = output.strip()
    if boxed := _BOXED.findall(text):
        return boxed[-1].strip()
    if marker := _MARKER.search(text):
        text = marker.group(1)
    line = text.splitlines()[0] if text else ""
    return line.strip().strip("*").strip().rstrip(".").strip()


def extract_number(output: str) -> str:
    """The last number (integer, decimal or a/b fraction) on the answer line, normalised.

    After an "=", only what follows the last one counts: "13 + 51 = 143" commits to 143,
    and "23 + 79 =" (the sum left unfinished) commits to nothing.
    """
    numbers = _NUMBER.findall(answer_line(output).rsplit("=", 1)[-1])
    if not numbers:
        return ""
    return re.sub(r"\s+", "", numbers[-1]).replace(",", "")


def extract_answer(output: str, kind: str = "text") -> str:
    """`kind` is "number" for numeric tasks, "sentence" for a whole sentence (its closing
    period is part of the answer), anything else for free text."""
    if kind == "number":
        return extract_number(output)
    if kind == "sentence":
        text = output.strip()
        return text.splitlines()[0].strip() if text else ""
    return answer_line(output)
