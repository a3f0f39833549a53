"""The programmatic teacher for the gym task: exact skill labels and a bug library.

Labels come from each item's structure (a column carry, a negative intermediate, mixed
operators whose order matters), so they are finer than one skill per generator. A
diagnosis re-solves the item, computes what well-known mistakes would have answered
(left-to-right evaluation, a flipped sign, a dropped carry, GCD given for LCM, ...) and
blames the sub-skill whose mistake reproduces the student's answer. Expressions are parsed
by a small recursive-descent parser over a token whitelist; nothing is eval()'d.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import math
import re
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, NamedTuple

import reasoning_gym

from sgi.skills.checks import MAX_LABELS
from sgi.skills.records import Candidate, Case, Diagnosis, Item, Label, Skill
from sgi.skills.tasks.gym import FAMILY_SPECS, GymTask, _jsonable

SKILLS: dict[str, str] = {
    "addition": "Add whole numbers without carrying",
    "add-carry": "Add with a carry from one column into the next",
    "subtraction": "Subtract whole numbers without borrowing",
    "sub-borrow": "Subtract with a borrow from the next column",
    "negative-numbers": "Work with negative operands, intermediates or results",
    "multi-term-chain": "Keep a running total over three or more terms",
    "times-tables": "Multiply two single-digit numbers",
    "multi-digit-multiplication": "Multiply when a factor has two or more digits",
    "division": "Divide exactly",
    "operator-precedence": "Do * and / before + and - when the order changes the result",
    "parentheses": "Evaluate parenthesised groups first",
    "gcd-euclid": "Find the greatest common divisor of numbers sharing a factor",
    "coprime-detection": "Recognise numbers with no common factor (GCD 1)",
    "divisibility": "Notice when one number divides the other",
    "lcm-from-gcd": "Find the LCM as the product divided by the GCD",
    "lcm-coprime-product": "The LCM of coprime numbers is their product",
    "fraction-reduction": "Reduce a fraction to lowest terms",
    "isolate-variable": "Solve a linear equation for its variable",
    "inverse-operations": "Undo an added or subtracted constant on both sides",
    "coefficient-division": "Divide both sides by the variable's coefficient",
}
# Families the rules have no finer labels for have one skill each, named after the family.
FAMILY_SKILLS: dict[str, str] = {
    "decimal-add": "Add or subtract numbers with one decimal place",
    "number-sequence": "Continue an integer sequence by its rule",
    "word-reversal": "Reverse the order of a short list of words",
    "weekday": "Name the weekday of a date in 2022",
    "leap-year": "Tell whether a year is a leap year",
    "count-bits": "Count the 1 bits of a number's binary form",
    "prime-factorization": "Factor a number into primes",
    "leg-counting": "Add up the legs of a few animals",
    "base-conversion": "Convert a number between bases 2 to 10",
    "family-relationships": "Name how two people of a short family story are related",
    "sentence-reordering": "Put the shuffled words of a short sentence back in order",
    "number-filtering": "Keep the numbers of a list above or below a bound",
    "count-primes": "Count the primes in a range",
}

_TOKEN = re.compile(r"\s*(\d+|[a-z]|[-+*/()=])")


# --- a safe evaluator for the generators' expressions -------------------------------


class _Op(NamedTuple):
    op: str
    left: Fraction
    right: Fraction
    result: Fraction


class _Parser:
    """Recursive descent over numbers, one variable, + - * / and parentheses.

    `flat=True` gives every operator the same precedence (the left-to-right misreading);
    "/" is floor division, as the generators compute it. Every binary step is recorded
    so the labels can look at each carry and each intermediate sign.
    """

    def __init__(self, tokens: Sequence[str], *, flat: bool = False, env: dict[str, int] | None = None):
        self.tokens, self.i, self.env = list(tokens), 0, env or {}
        self.ops: list[_Op] = []
        self.value = Fraction(0)
        self.levels = ["+-*/"] if flat else ["+-", "*/"]

    def parse(self) -> _Parser:
        """Sets `value` (and `ops`); raises ValueError on anything outside the whitelist."""
        self.value = self._binary(0)
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected token {self.tokens[self.i]!r}")
        return self

    def _peek(self) -> str:
        return self.tokens[self.i] if self.i < len(self.tokens) else ""

    def _take(self) -> str:
        self.i += 1
        return self.tokens[self.i - 1]

    def _binary(self, level: int) -> Fraction:
        if level == len(self.levels):
            return self._unary()
        value = self._binary(level + 1)
        while self._peek() and self._peek() in self.levels[level]:
            op = self._take()
            right = self._binary(level + 1)
            result = _apply(op, value, right)
            self.ops.append(_Op(op, value, right, result))
            value = result
        return value

    def _unary(self) -> Fraction:
        token = self._take() if self._peek() else ""
        if token == "-":
            return -self._unary()
        if token == "(":
            value = self._binary(0)
            if self._take() != ")":
                raise ValueError("unbalanced parentheses")
            return value
        if token.isdigit():
            return Fraction(int(token))
        if token in self.env:
            return Fraction(self.env[token])
        raise ValueError(f"unexpected token {token!r}")


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return Fraction(a // b)


def _tokens(text: str) -> list[str]:
    text = text.strip()
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"cannot parse {text!r} at {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _evaluate(tokens: Sequence[str], *, flat: bool = False, env: dict[str, int] | None = None) -> _Parser:
    return _Parser(tokens, flat=flat, env=env).parse()


def _binary_positions(tokens: Sequence[str]) -> list[int]:
    """Indices of binary operators: a '-' right after an operand is subtraction, else negation."""
    return [i for i, t in enumerate(tokens) if t in "+-*/" and i and (tokens[i - 1].isalnum() or tokens[i - 1] == ")")]


# --- column arithmetic ----------------------------------------------------------------


def _has_carry(x: int, y: int) -> bool:
    """x, y >= 0: does written addition carry in any column? (The first carry always
    comes from a column whose own digits sum to 10 or more.)"""
    return any(x // 10**k % 10 + y // 10**k % 10 >= 10 for k in range(len(str(max(x, y)))))


def _has_borrow(x: int, y: int) -> bool:
    """x >= y >= 0: does written subtraction x - y borrow in any column?"""
    return any(x // 10**k % 10 < y // 10**k % 10 for k in range(len(str(x))))


def _add_sub_skill(step: _Op) -> str:
    """Which written procedure an addition or subtraction step really needs: adding
    numbers of opposite sign is a subtraction of magnitudes, and vice versa."""
    other = step.right if step.op == "+" else -step.right
    x, y = abs(int(step.left)), abs(int(other))
    if 0 in (x, y):  # nothing to carry or borrow: the skill is the operator as written
        return "addition" if step.op == "+" else "subtraction"
    if step.left * other > 0:
        return "add-carry" if _has_carry(x, y) else "addition"
    x, y = max(x, y), min(x, y)
    return "sub-borrow" if _has_borrow(x, y) else "subtraction"


# --- labels per generator -------------------------------------------------------------


def _arith_labels(meta: dict[str, Any]) -> list[str]:
    tokens = _tokens(meta["expression"])
    exact = _evaluate(tokens)
    found: list[str] = []
    if _evaluate(tokens, flat=True).value != exact.value:
        found.append("operator-precedence")
    if "(" in tokens:
        found.append("parentheses")
    if sum(t.isdigit() for t in tokens) >= 3:
        found.append("multi-term-chain")
    for step in exact.ops:
        if step.op == "*":
            found.append("times-tables" if max(abs(step.left), abs(step.right)) < 10 else "multi-digit-multiplication")
        elif step.op == "/":
            found.append("division")
    found += [_add_sub_skill(s) for s in exact.ops if s.op in "+-"]
    if any(v < 0 for s in exact.ops for v in (s.left, s.right, s.result)):
        found.append("negative-numbers")
    return found


def _gcd_labels(meta: dict[str, Any]) -> list[str]:
    a, b = meta["numbers"]
    if math.gcd(a, b) == 1:
        return ["coprime-detection"]
    return ["divisibility"] if max(a, b) % min(a, b) == 0 else ["gcd-euclid"]


def _lcm_labels(meta: dict[str, Any]) -> list[str]:
    a, b = meta["numbers"]
    if max(a, b) % min(a, b) == 0:
        return ["divisibility"]
    return ["lcm-coprime-product"] if math.gcd(a, b) == 1 else ["lcm-from-gcd"]


def _fraction_labels(meta: dict[str, Any]) -> list[str]:
    """A composite common factor cannot be cancelled by one small prime: it needs the GCD."""
    factor = meta["numerator"] // meta["simplified_numerator"]
    composite = any(factor % p == 0 for p in range(2, math.isqrt(factor) + 1))
    return ["fraction-reduction", "gcd-euclid"] if composite else ["fraction-reduction"]


class _Linear(NamedTuple):
    """coef * x + const = rhs, the shape sympy gives every simple_equations item."""

    coef: Fraction
    const: Fraction
    rhs: Fraction


def _linear(meta: dict[str, Any]) -> _Linear:
    left, right = meta["equation"].split("=")
    var, tokens = meta["variable"], _tokens(left)
    const = _evaluate(tokens, env={var: 0}).value
    coef = _evaluate(tokens, env={var: 1}).value - const
    return _Linear(coef, const, _evaluate(_tokens(right)).value)


def _equation_labels(meta: dict[str, Any]) -> list[str]:
    eq = _linear(meta)
    found = ["isolate-variable"]
    if eq.const:
        found.append("inverse-operations")
    if abs(eq.coef) != 1:
        found.append("coefficient-division")
    if min(eq) < 0:
        found.append("negative-numbers")
    return found


# --- the bug library ------------------------------------------------------------------

_Bug = tuple[tuple[str, ...], str]


def _arith_bug(meta: dict[str, Any], answer: Fraction, labels: Sequence[str]) -> _Bug | None:
    tokens = _tokens(meta["expression"])
    truth = _evaluate(tokens).value
    naive = _evaluate(tokens, flat=True).value
    if answer == naive != truth:
        return ("operator-precedence",), f"evaluated left to right ({naive}) instead of {truth}"
    diff = abs(answer - truth)
    carries = tuple(s for s in ("add-carry", "sub-borrow", "multi-digit-multiplication") if s in labels)
    if carries and diff >= 10 and diff.denominator == 1 and _is_power_of_ten(int(diff)):
        return carries, f"off by {diff} from {truth}: a dropped or extra carry"
    return _operator_slip(tokens, answer, labels)


def _is_power_of_ten(n: int) -> bool:
    return str(n).rstrip("0") == "1"


def _operator_slip(tokens: list[str], answer: Fraction, labels: Sequence[str]) -> _Bug | None:
    """The answer one misread operator would give: a lost minus sign or a '*' added."""
    slips = {"-": "+", "+": "-", "*": "+"}
    for i in _binary_positions(tokens):
        if tokens[i] not in slips:
            continue
        misread = tokens[:i] + [slips[tokens[i]]] + tokens[i + 1 :]
        try:
            if _evaluate(misread).value != answer:
                continue
        except ZeroDivisionError:
            continue
        if tokens[i] == "*":
            skill = "multi-digit-multiplication" if "multi-digit-multiplication" in labels else "times-tables"
            return (skill,), "added instead of multiplying"
        if "multi-term-chain" in labels:
            return ("multi-term-chain",), f"lost track of a sign in the chain (used {slips[tokens[i]]} for {tokens[i]})"
        skill = "subtraction" if tokens[i] == "-" else "addition"
        return (_carry_variant(skill, labels),), f"used {slips[tokens[i]]} for {tokens[i]}"
    return None


def _carry_variant(skill: str, labels: Sequence[str]) -> str:
    variant = {"addition": "add-carry", "subtraction": "sub-borrow"}[skill]
    return variant if variant in labels else skill


def _gcd_bug(meta: dict[str, Any], answer: Fraction, labels: Sequence[str]) -> _Bug | None:
    a, b = meta["numbers"]
    g = math.gcd(a, b)
    if answer in (a, b):
        return ("gcd-euclid",), f"answered with an input ({answer}) instead of the GCD {g}"
    if answer in (a * b, math.lcm(a, b)):
        return ("gcd-euclid", "lcm-from-gcd"), f"gave a common multiple ({answer}): confused GCD with LCM"
    if answer == 1:
        return ("coprime-detection",), f"claimed {a} and {b} coprime; they share {g}"
    if answer.denominator == 1 and answer > 0 and a % answer == 0 and b % answer == 0:
        return ("gcd-euclid",), f"{answer} is a common divisor but not the greatest ({g})"
    return None


def _lcm_bug(meta: dict[str, Any], answer: Fraction, labels: Sequence[str]) -> _Bug | None:
    a, b = meta["numbers"]
    g, lcm = math.gcd(a, b), math.lcm(a, b)
    if answer == a * b:
        return ("lcm-from-gcd",), f"multiplied {a} and {b} without dividing by their GCD {g}"
    if answer in (a, b):
        return ("divisibility",), f"answered with an input ({answer}) as if one divided the other"
    if answer == g:
        return ("lcm-from-gcd", "gcd-euclid"), f"gave the GCD ({g}) instead of the LCM {lcm}"
    if answer.denominator == 1 and answer > lcm and answer % a == 0 and answer % b == 0:
        return ("lcm-from-gcd",), f"{answer} is a common multiple but not the least ({lcm})"
    return None


_FRACTION = re.compile(r"^(-?\d+)/(-?\d+)$")


def _fraction_bug(meta: dict[str, Any], text: str, labels: Sequence[str]) -> _Bug | None:
    """Works on the text: Fraction('6/8') would reduce the very mistake we look for."""
    match = _FRACTION.match(text)
    if not match or int(match.group(2)) == 0:
        return None
    p, q = int(match.group(1)), int(match.group(2))
    n, d = meta["numerator"], meta["denominator"]
    if (p, q) == (meta["simplified_numerator"], meta["simplified_denominator"]):
        return None
    if p * d == q * n:
        skills = tuple(s for s in ("fraction-reduction", "gcd-euclid") if s in labels) or ("fraction-reduction",)
        return skills, f"{p}/{q} equals {n}/{d} but is not fully reduced (divide by {math.gcd(n, d)})"
    if p * n == q * d:
        return ("fraction-reduction",), "numerator and denominator swapped"
    return None


def _equation_bug(meta: dict[str, Any], answer: Fraction, labels: Sequence[str]) -> _Bug | None:
    eq = _linear(meta)
    if answer == (eq.rhs + eq.const) / eq.coef:
        return ("inverse-operations",), f"moved the constant {eq.const} across without changing its sign"
    if answer in (eq.rhs / eq.coef - eq.const, eq.rhs / eq.coef + eq.const):
        return ("inverse-operations",), "undid the operations in the wrong order"
    if answer in (eq.rhs - eq.const, (eq.rhs - eq.const) * eq.coef):
        return ("coefficient-division",), f"did not divide by the coefficient {eq.coef}"
    return None


class _Rules(NamedTuple):
    labels: Callable[[dict[str, Any]], list[str]]
    bug: Callable[[dict[str, Any], Any, Sequence[str]], _Bug | None]
    on_text: bool = False  # the bug finder reads the answer text, not its value


RULES: dict[str, _Rules] = {
    "chain_sum": _Rules(_arith_labels, _arith_bug),
    "products": _Rules(_arith_labels, _arith_bug),
    "basic_arithmetic": _Rules(_arith_labels, _arith_bug),
    "gcd": _Rules(_gcd_labels, _gcd_bug),
    "lcm": _Rules(_lcm_labels, _lcm_bug),
    "fraction_simplification": _Rules(_fraction_labels, _fraction_bug, on_text=True),
    "simple_equations": _Rules(_equation_labels, _equation_bug),
}


def family_skill(family: str) -> str:
    """The one skill of a family the rules do not know (the general-ability families)."""
    return family.replace("_", "-")


def item_skills(item: Item) -> list[str]:
    """1-5 skills the item needs, most specific first; its family skill when no rules apply."""
    rules = RULES.get(item.meta.get("source_dataset", ""))
    if rules is None:
        return [family_skill(item.family)]
    return list(dict.fromkeys(rules.labels(item.meta)))[:MAX_LABELS]


# --- the exact solver (for verified synthesis) ----------------------------------------


def _as_answer(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _reduced(meta: dict[str, Any]) -> str:
    g = math.gcd(meta["numerator"], meta["denominator"])
    return f"{meta['numerator'] // g}/{meta['denominator'] // g}"


def _solved_equation(meta: dict[str, Any]) -> str:
    eq = _linear(meta)
    return _as_answer((eq.rhs - eq.const) / eq.coef)


def _decimal_sum(expression: str) -> str:
    """'4.8 - 0.6 + 1.2' with exact decimals (no eval: numbers and signs only)."""
    tokens = expression.split()
    if len(tokens) % 2 == 0 or any(t not in "+-" for t in tokens[1::2]):
        raise ValueError(f"not a chain of sums: {expression!r}")
    total = Decimal(tokens[0])
    for op, number in zip(tokens[1::2], tokens[2::2]):
        total = total + Decimal(number) if op == "+" else total - Decimal(number)
    return str(total)


def _prime_factors(n: int) -> str:
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return " × ".join(map(str, factors + ([n] if n > 1 else [])))


def _in_base(n: int, base: int) -> str:
    digits = ""
    while True:
        n, d = divmod(n, base)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
        if n == 0:
            return digits


def _calendar(meta: dict[str, Any]) -> str:
    if meta["task"] == "is_leap_year":
        return "Yes" if calendar.isleap(meta["year"]) else "No"
    if meta["task"] == "weekday_of_date":
        return datetime.date.fromisoformat(meta["target_date"]).strftime("%A")
    raise ValueError(f"no solver for calendar task {meta['task']!r}")


_SOLVERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "chain_sum": lambda m: _as_answer(_evaluate(_tokens(m["expression"])).value),
    "products": lambda m: _as_answer(_evaluate(_tokens(m["expression"])).value),
    "basic_arithmetic": lambda m: _as_answer(_evaluate(_tokens(m["expression"])).value),
    "gcd": lambda m: str(math.gcd(*m["numbers"])),
    "lcm": lambda m: str(math.lcm(*m["numbers"])),
    "fraction_simplification": _reduced,
    "simple_equations": _solved_equation,
    "letter_counting": lambda m: str(sum(w.lower().count(m["target_letter"]) for w in m["span"])),
    "spell_backward": lambda m: m["word"][::-1],
    "decimal_chain_sum": lambda m: _decimal_sum(m["expression"]),
    "count_bits": lambda m: str(bin(m["number"]).count("1")),
    "prime_factorization": lambda m: _prime_factors(m["number"]),
    "base_conversion": lambda m: _in_base(int(m["source_repr"], m["source_base"]), m["target_base"]),
    "calendar_arithmetic": _calendar,
    "word_sequence_reversal": lambda m: ", ".join(reversed(m["words"])),
    "family_relationships": lambda m: m["relationship"],  # the generator's story is built from it
    "count_primes": lambda m: str(sum(all(n % d for d in range(2, int(n ** 0.5) + 1))
                                      for n in range(max(2, m["start"]), m["end"] + 1))),
}


def solve(item: Item) -> str | None:
    """The answer recomputed from the item's structure, independently of the generator;
    None when no solver applies or the structure cannot be read."""
    solver = _SOLVERS.get(item.meta.get("source_dataset", ""))
    if solver is None:
        return None
    try:
        return solver(item.meta)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, InvalidOperation):
        return None


# Synthetic generator seeds start at 2**48: GymTask's split seeds are
# seed * 1_000_003 + crc32(...) < 2**48 for every task seed below 2**28, so a synthetic
# batch never replays a task split.
_SYN_SEED_BASE = 1 << 48
_SYN_BATCHES = 8  # bounded re-seeding when the skill is rare in the family


def _syn_seed(seed: int, skill: str, references: Sequence[str], family: str, batch: int) -> int:
    key = "/".join([str(seed), skill, family, str(batch), *references]).encode()
    return _SYN_SEED_BASE + int.from_bytes(hashlib.sha256(key).digest()[:5], "big")


def _number(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


class RulesTeacher:
    """The `Teacher` for gym items: exact labels and rule-based diagnoses, no model."""

    def __init__(self) -> None:
        self._catalogue: set[str] = set()

    def build_catalogue(self, items: Sequence[Item]) -> list[Skill]:
        """The skills some item needs; a skill's family is set only when one family uses it."""
        families: dict[str, set[str]] = {}
        for item in items:
            for skill in item_skills(item):
                families.setdefault(skill, set()).add(item.family)
        order = list(SKILLS) + sorted(set(families) - set(SKILLS))
        described = {**SKILLS, **FAMILY_SKILLS}
        catalogue = [
            Skill(name, described.get(name, f"General ability: {name} items"), _only(families[name]))
            for name in order
            if name in families
        ]
        self._catalogue = {s.name for s in catalogue}
        return catalogue

    def label(self, items: Sequence[Item], catalogue: Sequence[Skill]) -> list[Label]:
        known = {s.name for s in catalogue}
        labels = []
        for item in items:
            skills = [s for s in item_skills(item) if s in known]
            if not skills:
                raise ValueError(
                    f"item {item.item_id} needs {item_skills(item)}, none of them in the catalogue; "
                    "build the catalogue from items that include it"
                )
            labels += [Label(item.item_id, s) for s in skills]
        return labels

    def diagnose(self, cases: Sequence[Case], skill_accuracy: dict[str, float],
                 catalogue: Sequence[Skill] = ()) -> list[Diagnosis]:
        """A matched bug names its skills; otherwise the item's labels, weakest first
        (`skill_accuracy`; a skill without attempts ranks last), take the blame."""
        return [self._diagnose(case, skill_accuracy) for case in cases]

    def _diagnose(self, case: Case, skill_accuracy: dict[str, float]) -> Diagnosis:
        labels = list(case.skills) or item_skills(case.item)
        allowed = set(labels) | (self._catalogue or set(SKILLS))
        bug = self._find_bug(case, labels)
        if bug and (skills := tuple(s for s in bug[0] if s in allowed)):
            return Diagnosis(case.item.item_id, skills[:3], bug[1])
        ranked = sorted(labels, key=lambda s: skill_accuracy.get(s, 1.0))
        reason = bug[1] if bug else "unmatched error"
        return Diagnosis(case.item.item_id, tuple(ranked[:3]), reason)

    def synthesize(
        self, skill: str, references: Sequence[Item], n: int, seed: int, *, avoid: Collection[str] = (),
        description: str = "",
    ) -> list[Candidate]:
        """Up to n new gym items that need `skill`, from the references' families.

        Each family's generator runs with fresh seeds derived from (seed, skill, reference
        ids); an item is kept when its rules labels include the skill and its question is
        neither a reference's nor in `avoid`. Fewer than n when the skill is rare there.
        Solutions: the generator's answer, this module's exact solver, and the solver's
        answer again if the task's own scorer accepts it ("" otherwise).
        """
        families = list(dict.fromkeys(r.family for r in references if r.family in FAMILY_SPECS))
        if not families:
            raise ValueError(
                f"RulesTeacher.synthesize({skill!r}) needs reference items from a gym family "
                f"({sorted(FAMILY_SPECS)}); got families {sorted({r.family for r in references})}"
            )
        if n < 1:
            return []
        ref_ids = sorted(r.item_id for r in references)
        seen = set(avoid) | {r.question for r in references}
        out: list[Candidate] = []
        for batch in range(_SYN_BATCHES):
            datasets = [
                reasoning_gym.create_dataset(
                    FAMILY_SPECS[f].generator, seed=_syn_seed(seed, skill, ref_ids, f, batch),
                    size=max(4 * n, 32), **FAMILY_SPECS[f].config,
                )
                for f in families
            ]
            for row in zip(*datasets):  # one entry per family in turn, so every family contributes
                for family, entry in zip(families, row):
                    if entry["question"] in seen:
                        continue
                    seen.add(entry["question"])
                    item = _synthetic_item(family, entry, skill, ref_ids)
                    if skill in item_skills(item):
                        out.append(self.check(item))
                        if len(out) == n:
                            return out
        return out

    def check(self, item: Item) -> Candidate:
        """A candidate for `item` with its three solutions and the exact solver's verdict."""
        solved = solve(item)
        scored = solved if solved is not None and _GYM.is_correct(item, solved) else ""
        return Candidate(item, (item.answer, solved or "", scored), solved is not None and solved == item.answer)

    def _find_bug(self, case: Case, labels: Sequence[str]) -> _Bug | None:
        """None when no rule explains the answer; a bug naming skills otherwise."""
        rules = RULES.get(case.item.meta.get("source_dataset", ""))
        primary = item_skills(case.item)[0]
        if not case.extracted.strip():
            return (primary,), "no answer"
        if rules is None:
            return None
        answer = _number(case.extracted)
        if answer is None:
            return (primary,), f"no answer: {case.extracted!r} is not a number"
        if rules.on_text:
            return rules.bug(case.item.meta, case.extracted, labels)
        truth = Fraction(case.item.answer)
        if answer == truth:
            return None
        if answer == -truth:
            return ("negative-numbers",), f"sign flipped: {answer} instead of {truth}"
        return rules.bug(case.item.meta, answer, labels)


_GYM = GymTask()  # only its scorer is used: building it generates nothing


def _synthetic_item(family: str, entry: dict[str, Any], skill: str, references: list[str]) -> Item:
    digest = hashlib.sha256(f"{family}\n{entry['question']}".encode()).hexdigest()[:12]
    meta = _jsonable(entry["metadata"]) | {"provenance": {"skill": skill, "references": references}}
    return Item(f"syn-{skill}-{digest}", entry["question"], entry["answer"], "synthetic", family, meta=meta)


def _only(families: set[str]) -> str:
    return next(iter(families)) if len(families) == 1 else ""
