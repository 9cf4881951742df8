"""Small, safe evaluators for closed-form numeric LaTeX. They never call eval/sympify: strict
recursive-descent parsers that return None for anything outside their grammar or magnitude limits, so
the caller falls back to Math-Verify. Used only to decide common cases fast.

- `evaluate`: a float (numbers, \\frac, \\sqrt, \\pi, powers, + - * / and implicit products,
  trigonometric functions, degree marks `^\\circ`).
- `exact_value`: an exact Gaussian rational a + b i (numbers, \\frac, /, integer powers, factorials, the
  imaginary unit when asked), so values no float can tell apart (1/2004! and 1/2006!) are told apart."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_TOKEN = re.compile(r"\d+\.?\d*|\.\d+|\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\(?:frac|sqrt|pi|cdot|times|div|sin|cos|tan|cot|sec|csc)(?![a-zA-Z])"  # noqa: E501
                    r"|[-+*/^(){}\[\]!]|[a-zA-Z]|\s+")
_DEGREE = "^circ"  # the token of a degree mark: ^\circ, ^{\circ}, °
_TRIG = {"\\sin": math.sin, "\\cos": math.cos, "\\tan": math.tan, "\\cot": lambda x: 1 / math.tan(x),
         "\\sec": lambda x: 1 / math.cos(x), "\\csc": lambda x: 1 / math.sin(x)}
_MAX_ABS = 1e100


class _Fail(Exception):
    pass


def tokenize(s: str) -> list[str] | None:
    tokens, pos = [], 0
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            return None  # something outside the grammar (a letter, a command we don't know)
        tok = m.group()
        pos = m.end()
        if tok.isspace():
            continue
        tokens.append(_DEGREE if "circ" in tok or tok == "°" else tok)
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

    IMPLICIT = ("\\frac", "\\sqrt", "\\pi", "(")  # tokens that start an implicit product: 2\sqrt{3}, 3\pi

    def check(self, value):
        return _check(value)

    def divide(self, a, b):
        if b == 0:
            raise _Fail
        return a / b

    def expr(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return self.check(value)

    def term(self):
        value = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times", "/", "\\div"):
                self.take()
                rhs = self.unary()
                value = self.divide(value, rhs) if tok in ("/", "\\div") else value * rhs
            elif tok is not None and (tok[0].isdigit() or tok[0].isalpha() or tok in self.IMPLICIT):
                value = value * self.power()
            else:
                return self.check(value)

    def unary(self) -> float:
        if self.peek() in ("+", "-"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if self.peek() == _DEGREE:  # 30^\circ: degrees, in radians
            self.take()
            base = base * math.pi / 180
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
        if tok in _TRIG:  # \sin 30^\circ, \cos(2x), \sin^2 30^\circ: the argument is one power term
            exponent = 1.0
            if self.peek() == "^":
                self.take()
                exponent = self.group() if self.peek() == "{" else float(self.take())
                if exponent not in (1.0, 2.0, 3.0):
                    raise _Fail  # \sin^{-1}: an inverse, not a power
            try:
                return _TRIG[tok](self.power()) ** exponent
            except (ValueError, ZeroDivisionError, OverflowError):
                raise _Fail from None
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


# -- exact values: Gaussian rationals ---------------------------------------------------------------

_MAX_BITS = 200_000  # numerators/denominators beyond this many bits go to the symbolic path
_MAX_FACTORIAL = 3000


class _Exact:
    """a + b i with a, b Fractions; only the operations the grammar needs."""

    __slots__ = ("re", "im")

    def __init__(self, re_: Fraction, im: Fraction = Fraction(0)):
        self.re, self.im = re_, im
        for part in (re_, im):
            if part.numerator.bit_length() > _MAX_BITS or part.denominator.bit_length() > _MAX_BITS:
                raise _Fail

    def __add__(self, o):
        return _Exact(self.re + o.re, self.im + o.im)

    def __sub__(self, o):
        return _Exact(self.re - o.re, self.im - o.im)

    def __mul__(self, o):
        return _Exact(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)

    def __neg__(self):
        return _Exact(-self.re, -self.im)

    def __truediv__(self, o):
        norm = o.re * o.re + o.im * o.im
        if norm == 0:
            raise _Fail
        return self * _Exact(o.re / norm, -o.im / norm)

    def __eq__(self, o):
        return isinstance(o, _Exact) and self.re == o.re and self.im == o.im

    def __hash__(self):
        return hash((self.re, self.im))

    def real(self) -> bool:
        return self.im == 0


class _ExactParser(_Parser):
    """The same grammar over Gaussian rationals: no \\pi, no roots but exact ones, integer powers,
    factorials of integers; the letter `i` is the imaginary unit only when `imaginary` is set."""

    def __init__(self, tokens: list[str], imaginary: bool):
        super().__init__(tokens, {})
        self.imaginary = imaginary

    IMPLICIT = ("\\frac", "\\sqrt", "(")

    def check(self, value):
        return value  # exact values need no float checks; their size is bounded in _Exact

    def divide(self, a, b):
        return a / b  # _Exact refuses a zero divisor

    def power(self):
        base = self.atom()
        while self.peek() == "!":
            self.take()
            if not base.real() or base.re.denominator != 1 or not 0 <= base.re <= _MAX_FACTORIAL:
                raise _Fail
            base = _Exact(Fraction(math.factorial(int(base.re))))
        if self.peek() == "^":
            self.take()
            exponent = self.group() if self.peek() == "{" else self.atom()
            if not exponent.real() or exponent.re.denominator != 1 or abs(exponent.re) > 10_000:
                raise _Fail
            n = int(exponent.re)
            if base == _Exact(Fraction(0)) and n < 0:
                raise _Fail
            result = _Exact(Fraction(1))
            factor = base if n >= 0 else _Exact(Fraction(1)) / base
            for bit in bin(abs(n))[2:]:  # square and multiply, each step within the size limit
                result = result * result
                if bit == "1":
                    result = result * factor
            base = result
        return base

    def atom(self):
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            if len(tok) > 60:
                raise _Fail
            return _Exact(Fraction(tok))
        if tok == "i" and self.imaginary:
            return _Exact(Fraction(0), Fraction(1))
        if tok in ("(", "{"):
            value = self.expr()
            self.take(")" if tok == "(" else "}")
            return value
        if tok == "\\frac":
            num = self.group() if self.peek() == "{" else _Exact(Fraction(self.take()))
            den = self.group() if self.peek() == "{" else _Exact(Fraction(self.take()))
            return num / den
        if tok == "\\sqrt" and self.peek() == "{":
            radicand = self.group()
            if not radicand.real() or radicand.re < 0:
                raise _Fail
            num, den = math.isqrt(radicand.re.numerator), math.isqrt(radicand.re.denominator)
            if num * num != radicand.re.numerator or den * den != radicand.re.denominator:
                raise _Fail  # an irrational root: not exact
            return _Exact(Fraction(num, den))
        raise _Fail


def exact_value(s: str, imaginary: bool = False) -> _Exact | None:
    """The exact value of a closed form over the rationals (with `i` when `imaginary`), or None."""
    if len(s) > 200:
        return None
    tokens = tokenize(s)
    if tokens is None or _DEGREE in tokens or any(t in _TRIG or t == "\\pi" for t in tokens):
        return None
    p = _ExactParser(tokens, imaginary)
    try:
        value = p.expr()
    except (_Fail, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    return value if p.i == len(tokens) else None


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
