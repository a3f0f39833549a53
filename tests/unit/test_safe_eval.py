"""The `program` solver's evaluator: right values for arithmetic, refusal for everything else."""

from __future__ import annotations

import ast
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgi.skills.safe_eval import FUNCTIONS, MAX_BITS, UnsafeExpression, evaluate, format_value

# --- valid arithmetic: computed exactly ------------------------------------------------

numbers = st.integers(min_value=-10**6, max_value=10**6)


@st.composite
def expressions(draw, depth=0):
    """(text, exact value) of a random arithmetic expression the evaluator must accept."""
    if depth >= 3 or draw(st.booleans()):
        n = draw(numbers)
        return f"({n})", Fraction(n)
    op = draw(st.sampled_from(["+", "-", "*", "/", "gcd", "lcm"]))
    (a, va), (b, vb) = draw(expressions(depth + 1)), draw(expressions(depth + 1))
    if op in ("gcd", "lcm"):
        if va.denominator != 1 or vb.denominator != 1:
            return a, va
        import math

        return f"{op}({a}, {b})", Fraction(getattr(math, op)(int(va), int(vb)))
    if op == "/" and vb == 0:
        return a, va
    value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else None}[op]
    return f"({a} {op} {b})", value


@settings(max_examples=300, deadline=None)
@given(expressions())
def test_valid_expressions_get_their_exact_value(case):
    text, value = case
    assert evaluate(text) == value


def test_worked_examples_and_formatting():
    assert evaluate("12 * 7 - 3") == 81
    assert format_value(evaluate("84/36")) == "7/3"
    assert format_value(evaluate("gcd(84, 36)")) == "12"
    assert format_value(evaluate("lcm(4, 6, 10)")) == "60"
    assert format_value(evaluate("2 ** 10 + -(3)")) == "1021"
    assert format_value(evaluate("(20 - 5) / 3")) == "5"
    assert format_value(evaluate("0.5 + 1.25")) == "7/4"
    assert evaluate("17 // 5") == 3 and evaluate("17 % 5") == 2


# --- everything that is not bounded arithmetic is refused ------------------------------

REFUSED = [
    "__import__('os').system('echo hi')", "open('/etc/passwd')", "x", "x + 1", "print(1)", "abs(-1)",
    "(1).__class__", "().__class__.__bases__[0].__subclasses__()", "[1, 2]", "{1: 2}", "'a' * 3", "1 if 1 else 2",
    "lambda: 1", "1 < 2", "1 and 2", "gcd(x=1, y=2)", "gcd(*[1, 2])", "gcd(1)", "gcd(1.5, 2)", "f'{1}'",
    "1; 2", "import os", "a = 1", "10 ** 10 ** 10", "9 ** 999", "2 ** 0.5", "1 / 0", "5 % 0", "0 ** -1",
    "-(" * 30 + "1" + ")" * 30, "-" * 200 + "1", "+".join(["1"] * 200), "1e400", "True + 1", "1j",
    "9" * 400, "not 1", "~1", "1 << 2", "1 @ 2", "b'1'", "...", "None",
]


@pytest.mark.parametrize("text", REFUSED)
def test_non_arithmetic_is_refused(text):
    with pytest.raises(UnsafeExpression):
        evaluate(text)


def _identifiers():
    return st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
        lambda name: name not in FUNCTIONS and name.isidentifier() and name not in {"True", "False", "None"}
        and not __import__("keyword").iskeyword(name))


@st.composite
def hostile(draw):
    """An otherwise valid expression with one disallowed construct spliced in."""
    text, _ = draw(expressions())
    name = draw(_identifiers())
    construct = draw(st.sampled_from([
        name, f"{name}(1)", f"{name}.real", f"(1).{name}", f"{name}[0]", f"gcd({name}, 2)", f"{name}(*())",
        f"gcd(1, {name}=2)", "(2 ** 100) ** 100", f"'{name}'", f"[{name}]", f"({name} := 1)", f"1 if {name} else 2",
        f"(lambda {name}: 1)(1)", f"1 < {name}",
    ]))
    return draw(st.sampled_from([f"{text} + {construct}", f"{construct} * {text}", f"gcd({construct}, 4)"]))


@settings(max_examples=300, deadline=None)
@given(hostile())
def test_any_disallowed_construct_anywhere_is_refused(text):
    with pytest.raises(UnsafeExpression):
        evaluate(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_either_parses_to_arithmetic_or_is_refused(text):
    """No input escapes as another exception, and nothing outside the whitelist is accepted."""
    try:
        evaluate(text)
    except UnsafeExpression:
        return
    allowed = (ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.operator,
               ast.unaryop)
    tree = ast.parse(text.strip(), mode="eval")
    assert all(isinstance(n, allowed) for n in ast.walk(tree))
    assert all(n.id in FUNCTIONS for n in ast.walk(tree) if isinstance(n, ast.Name))


def test_intermediate_values_are_bounded():
    with pytest.raises(UnsafeExpression, match="bits"):
        evaluate("(2 ** 60) ** 60")
    big = "*".join(["(99**64)"] * 6)  # each factor is fine, the product is not
    with pytest.raises(UnsafeExpression, match="bits"):
        evaluate(big)
    assert evaluate("2 ** 60").numerator.bit_length() < MAX_BITS
