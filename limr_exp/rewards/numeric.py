"""A small, safe evaluator for closed-form numeric LaTeX (numbers, \\frac, \\sqrt, \\pi, powers,
+ - * / and implicit products). It never calls eval/sympify: a strict recursive-descent parser that
returns None for anything outside its grammar or its magnitude limits, so the caller falls back to
Math-Verify. Used only to decide common cases fast."""

from __future__ import annotations

import math
import re

_TOKEN = re.compile(r"\d+\.?\d*|\.\d+|\\frac|\\sqrt|\\pi|\\cdot|\\times|\\div|[-+*/^(){}\[\]]|[a-zA-Z]")
_MAX_ABS = 1e100


class _Fail(Exception):
    pass


def tokenize(s: str) -> list[str] | None:
    tokens, pos = [], 0
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            return None  # something outside the grammar (a letter, a command we don't know)
        tokens.append(m.group())
        pos = m.end()
    return tokens if pos == len(s) and tokens else None


class _Parser:
    def __init__(self, tokens: list[str], variables: dict[str, float]):
        self.t, self.i, self.vars = tokens, 0, variables

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Fail
        self.i += 1
        return tok

    def expr(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return _check(value)

    def term(self) -> float:
        value = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times", "/", "\\div"):
                self.take()
                rhs = self.unary()
                if tok in ("/", "\\div"):
                    if rhs == 0:
                        raise _Fail
                    value = value / rhs
                else:
                    value = value * rhs
            elif tok is not None and (tok[0].isdigit() or tok[0].isalpha() or tok in ("\\frac", "\\sqrt", "\\pi", "(")):
                value = value * self.power()  # implicit product: 2\sqrt{3}, 3\pi
            else:
                return _check(value)

    def unary(self) -> float:
        if self.peek() in ("+", "-"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            if self.peek() == "{":
                self.take()
                exponent = self.expr()
                self.take("}")
            else:
                tok = self.take()
                if not tok.isdigit() or len(tok) != 1:
                    raise _Fail
                exponent = float(tok)
            if abs(exponent) > 64 or (base < 0 and exponent != int(exponent)) or (base == 0 and exponent < 0):
                raise _Fail
            try:
                base = base ** exponent
            except (OverflowError, ZeroDivisionError):
                raise _Fail from None
        return _check(base)

    def group(self, open_: str = "{", close: str = "}") -> float:
        self.take(open_)
        value = self.expr()
        self.take(close)
        return value

    def atom(self) -> float:
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            if len(tok) > 30:
                raise _Fail
            return float(tok)
        if tok == "\\pi":
            return math.pi
        if tok.isalpha():
            if tok not in self.vars:
                raise _Fail
            return self.vars[tok]
        if tok == "(":
            value = self.expr()
            self.take(")")
            return value
        if tok == "{":
            value = self.expr()
            self.take("}")
            return value
        if tok == "\\frac":
            num = self.group() if self.peek() == "{" else float(self.take())
            den = self.group() if self.peek() == "{" else float(self.take())
            if den == 0:
                raise _Fail
            return num / den
        if tok == "\\sqrt":
            index = self.group("[", "]") if self.peek() == "[" else 2.0
            radicand = self.group() if self.peek() == "{" else self.atom()
            if radicand < 0 or index == 0:
                raise _Fail
            return radicand ** (1.0 / index)
        raise _Fail


def _check(value: float) -> float:
    if not math.isfinite(value) or abs(value) > _MAX_ABS:
        raise _Fail
    return value


def letters(s: str) -> set[str]:
    """Single-letter variables of an expression in the grammar (empty set if none or outside it)."""
    tokens = tokenize(s)
    return {t for t in tokens if t.isalpha()} if tokens else set()


def evaluate(s: str, variables: dict[str, float] | None = None) -> float | None:
    """The value of a closed-form expression (letters take `variables`), or None outside the grammar."""
    if len(s) > 200:
        return None
    tokens = tokenize(s)
    if tokens is None:
        return None
    p = _Parser(tokens, variables or {})
    try:
        value = p.expr()
    except (_Fail, ValueError, OverflowError, RecursionError):
        return None
    return value if p.i == len(tokens) else None
