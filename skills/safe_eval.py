"""Arithmetic a model wrote, computed without `eval`: the `program` System-2 solver's evaluator.

    value = evaluate("gcd(84, 36) + 3/4")   # Fraction(51, 4)
    format_value(value)                      # "51/4"

The text is parsed with `ast` (parsing runs nothing) and walked over a whitelist:
numbers, + - * / // % **, unary signs, parentheses, and calls of `gcd` / `lcm` on
positional arguments. Anything else (names, attributes, other calls, subscripts,
comparisons, lambdas, strings) is refused. Arithmetic is exact (`Fraction`), and the
cost is bounded by construction: the text length, the number of nodes, the nesting
depth, the exponent and the size of every intermediate value are capped, so no input
can take long or use much memory.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from fractions import Fraction

MAX_CHARS = 300
MAX_NODES = 120
MAX_DEPTH = 24
MAX_EXPONENT = 64
MAX_BITS = 2048  # of any numerator or denominator along the way


class UnsafeExpression(ValueError):
    """The text is not a small arithmetic expression (or its value is out of bounds)."""


def _integers(name: str, fn: Callable[[int, int], int]) -> Callable[..., Fraction]:
    def apply(*args: Fraction) -> Fraction:
        if len(args) < 2 or any(a.denominator != 1 for a in args):
            raise UnsafeExpression(f"{name}() takes two or more integers")
        return Fraction(fn(*(int(a) for a in args)))

    return apply


FUNCTIONS: dict[str, Callable[..., Fraction]] = {"gcd": _integers("gcd", math.gcd), "lcm": _integers("lcm", math.lcm)}

_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: lambda a, b: a % b,
}


def evaluate(text: str) -> Fraction:
    """The exact value of `text`; UnsafeExpression if it is anything but bounded arithmetic."""
    if len(text) > MAX_CHARS:
        raise UnsafeExpression(f"expression longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise UnsafeExpression(f"not an expression: {type(err).__name__}") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise UnsafeExpression(f"expression has {nodes} nodes, more than {MAX_NODES}")
    return _value(tree.body, 0)


def _value(node: ast.AST, depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise UnsafeExpression(f"expression nested deeper than {MAX_DEPTH}")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise UnsafeExpression("non-finite number")
        return _bounded(Fraction(str(node.value)) if isinstance(node.value, float) else Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _value(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_value(node.left, depth + 1), _value(node.right, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left, depth + 1), _value(node.right, depth + 1)
        if right == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise UnsafeExpression("division by zero")
        return _bounded(_BINARY[type(node.op)](left, right))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
            and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
        return _bounded(FUNCTIONS[node.func.id](*(_value(a, depth + 1) for a in node.args)))
    raise UnsafeExpression(f"{type(node).__name__} is not allowed in an arithmetic expression")


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise UnsafeExpression(f"exponent must be an integer of at most {MAX_EXPONENT}")
    if base == 0 and exponent < 0:
        raise UnsafeExpression("division by zero")
    # bits of the result are about |exponent| x bits of the base: refuse before computing
    if abs(int(exponent)) * max(base.numerator.bit_length(), base.denominator.bit_length()) > MAX_BITS:
        raise UnsafeExpression(f"power larger than {MAX_BITS} bits")
    return _bounded(base ** int(exponent))


def _bounded(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise UnsafeExpression(f"intermediate value larger than {MAX_BITS} bits")
    return value


def format_value(value: Fraction) -> str:
    """An integer as digits, anything else as a reduced fraction `p/q` (the form tasks accept)."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
