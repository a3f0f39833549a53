"""Text from a dataset, a teacher or a model, made safe to show in the terminal.

Such text is data: rich must not read `[red]` or `[/x]` in a skill name as markup (a
MarkupError ends `sgi status`), and an escape sequence, carriage return or bidi override
in it must not restyle the terminal or hide what is printed. Control characters are shown
as Python-style escapes (`\\x1b`), so the reader sees that they are there.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

# C0 and C1 controls (newline and tab too: a cell is one line), DEL, zero-width and
# direction-changing marks, and the line/paragraph separators
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def literal(value: object) -> str:
    """`value` as text with every control character written as an escape."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def as_text(value: object) -> Text:
    """A table cell that rich shows exactly as written (no markup is parsed in a Text)."""
    return Text(literal(value))


def as_markup(value: object) -> str:
    """`value` for an f-string that rich parses as markup: shown literally all the same."""
    return escape(literal(value))
