"""Normalisation of answer strings and the exact fast paths that decide common cases without
symbolic work: identical after normalisation, or both plain numbers/fractions compared exactly."""

from __future__ import annotations

import re
from fractions import Fraction

_SUBS = [
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\left|\\right|\\big|\\Big|\\bigg|\\Bigg"), ""),
    (re.compile(r"(?<!\\)\\[!,;: ]|\\quad|\\qquad|~"), " "),  # spacing commands, not the row break \\ 3
    (re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree"), ""),
    (re.compile(r"\\%|%|\\\$|\$"), ""),
    (re.compile(r"\{,\}"), ""),  # 1{,}000
    (re.compile(r"\\displaystyle|\\mathrm|\\mathbf|\\textstyle"), ""),
]
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|mbox|operatorname)\s*\{([^{}]*)\}")
_TRAILING_UNITS = re.compile(r"^(.*?\d)\s*\\(?:text|mbox|mathrm)\s*\{\s*[a-zA-Z][a-zA-Z ./^\d-]*\}(\^\s*\{?\d\}?)?\s*$")
_LHS = re.compile(r"^\s*[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?P<rhs>[^=<>]+)$")
_MIXED = re.compile(r"^(?P<sign>-?)(?P<whole>\d+)\\frac\{(?P<num>\d+)\}\{(?P<den>\d+)\}$")  # 918\frac{1}{2}
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
# 1 1/2, 2\ \frac{3}{4}: a whole number and a proper fraction, apart (before spaces are dropped)
_SPACED_MIXED = re.compile(r"^(?P<whole>-?\d+)(?:\s|\\ |~)+(?:(?P<n1>\d+)/(?P<d1>\d+)|\\frac\{(?P<n2>\d+)\}\{(?P<d2>\d+)\}"
                           r"|\\frac(?P<n3>\d)(?P<d3>\d))$")
_WRAPPERS = [re.compile(r"^\$+(.*?)\$+$", re.S), re.compile(r"^\\\((.*)\\\)$", re.S), re.compile(r"^\\\[(.*)\\\]$", re.S)]


def strip_delimiters(answer: str) -> str:
    """'$x$', '\\(x\\)', '\\[x\\]' -> 'x'."""
    s = answer.strip()
    for pattern in _WRAPPERS:
        m = pattern.match(s)
        if m:
            s = m.group(1).strip()
    return s


def normalize(answer: str) -> str:
    """A canonical spelling of a LaTeX answer; equal strings mean equal answers."""
    s = strip_delimiters(answer)
    m = _TRAILING_UNITS.match(s)  # "5 \text{ cm}" -> "5"
    if m:
        s = m.group(1)
    for pattern, repl in _SUBS:
        s = pattern.sub(repl, s)
    s = _TEXT_CMD.sub(r"\1", s)
    m = _LHS.match(s)  # "x = 5" -> "5"
    if m:
        s = m.group("rhs")
    s = s.strip().rstrip(".").strip()
    m = _SPACED_MIXED.match(s)
    if m:
        s = f"{m['whole']}\\frac{{{m['n1'] or m['n2'] or m['n3']}}}{{{m['d1'] or m['d2'] or m['d3']}}}"
    if _THOUSANDS.match(s.replace(" ", "")):
        s = s.replace(",", "")
    s = re.sub(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])", "\\1\0", s)  # keep "\tan x" apart
    s = re.sub(r"\s+", "", s).replace("\0", " ")
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)  # \frac12
    s = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", s)
    s = re.sub(r"\{([^{}])\}(?![{_^])", r"\1", s) if s.startswith("{") and s.endswith("}") and s.count("{") == 1 else s
    return s


_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_FRAC = re.compile(r"^(?P<sign>[+-]?)\\frac\{(?P<num>[+-]?\d+(?:\.\d+)?)\}\{(?P<den>[+-]?\d+(?:\.\d+)?)\}$")
_SLASH = re.compile(r"^(?P<num>[+-]?\d+(?:\.\d+)?)/(?P<den>[+-]?\d+(?:\.\d+)?)$")
_SCI = re.compile(r"^(?P<m>[+-]?\d+(?:\.\d+)?)(?:\\times|\\cdot|\*)10\^\{?(?P<e>[+-]?\d+)\}?$")
_MAX_DIGITS = 400  # longer numerals go to the symbolic path, which has a time budget


def as_rational(s: str) -> Fraction | None:
    """An exact value for plain numbers, decimals, a/b, \\frac{a}{b} and a\\times10^{b}; else None."""
    if len(s) > _MAX_DIGITS:
        return None
    try:
        if _NUMBER.match(s):
            return Fraction(s)
        m = _FRAC.match(s) or _SLASH.match(s)
        if m:
            den = Fraction(m.group("den"))
            if den == 0:
                return None
            value = Fraction(m.group("num")) / den
            return -value if m.groupdict().get("sign") == "-" else value
        m = _MIXED.match(s)
        if m and int(m.group("den")) != 0 and int(m.group("num")) < int(m.group("den")):
            value = int(m.group("whole")) + Fraction(int(m.group("num")), int(m.group("den")))
            return -value if m.group("sign") else value
        m = _SCI.match(s)
        if m and abs(int(m.group("e"))) <= 300:
            return Fraction(m.group("m")) * Fraction(10) ** int(m.group("e"))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def light_clean(answer: str) -> str:
    """What Math-Verify gets: delimiters, \\dfrac, spacing commands and thousands marks tidied, spacing kept."""
    s = strip_delimiters(answer)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\!|\{,\}", "", s)
    s = re.sub(r"\\\$", "", s)
    return s.strip().rstrip(".").strip()


# -- brackets ---------------------------------------------------------------------------------------

_OPEN, _CLOSE = "([{", ")]}"


def split_top_level(s: str, sep: str) -> list[str]:
    """`s` split at each `sep` outside brackets (any of ()[]{}): '(1,2),3' -> ['(1,2)', '3']."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0 and s.startswith(sep, k):
            parts.append(s[start:k])
            start = k + len(sep)
    return parts + [s[start:]]


def enclosed(s: str) -> bool:
    """The whole of `s` is one bracket group: '(1,2]' yes, '(1)(2)' no."""
    if len(s) < 2 or s[0] not in _OPEN or s[-1] not in _CLOSE:
        return False
    depth = 0
    for k, ch in enumerate(s):
        depth += ch in _OPEN
        depth -= ch in _CLOSE
        if depth == 0:
            return k == len(s) - 1
    return False


def strip_outer_parens(s: str) -> str:
    """'(8-i)' -> '8-i' when round parentheses wrap a single value (never a tuple or an interval)."""
    while s.startswith("(") and s.endswith(")") and enclosed(s) and len(split_top_level(s[1:-1], ",")) == 1:
        s = s[1:-1]
    return s


# -- canonical spellings of answer families that graders accept -------------------------------------
# Each rewrite keeps the meaning: it is used for the exact fast path and as Math-Verify's second reading.

_CONNECTIVE = re.compile(r"\s*,?\s*(?:\\(?:text|textbf|mbox|mathrm)\s*\{\s*(?:and|or)\s*\}|(?<![A-Za-z\\])(?:and|or)(?![A-Za-z]))\s*")
_ENV = re.compile(r"\\(begin|end)\s*\{(?:bmatrix|matrix|smallmatrix)\}")
_ARRAY = re.compile(r"(?:\\left\s*)?[\[(]\s*\\begin\s*\{array\}\s*\{[^{}]*\}(?P<body>.*?)\\end\s*\{array\}\s*(?:\\right\s*)?[\])]", re.S)
_UNIT_TEXT = re.compile(r"^(?P<value>.*?[\d}.])\s*\\(?:text|textbf|textit|mbox|mathrm)\s*\{\s*[a-zA-Z][a-zA-Z .]*\}(?:\s*\^\s*\{?\d\}?)?\s*$")  # noqa: E501
_UNIT_WORDS = re.compile(r"^(?P<value>.*?\d)\s+[a-zA-Z]{2,}(?:\s+[a-zA-Z]+)*\.?(?:\s*\^\s*\{?[23]\}?)?$")
# units written straight after the number (10weeks, 5km, 10cm^2): only known unit words, never a variable
_GLUED_UNIT = re.compile(r"^(?P<value>-?\d+(?:\.\d+)?)\s*(?:" + "|".join((
    "seconds?", "secs?", "minutes?", "mins?", "hours?", "hrs?", "days?", "weeks?", "months?", "years?", "yrs?",
    "mm", "cm", "km", "meters?", "metres?", "inch(?:es)?", "feet", "foot", "ft", "yards?", "yds?", "miles?",
    "mph", "kph", "grams?", "kg", "mg", "pounds?", "lbs?", "ounces?", "oz", "liters?", "litres?", "ml",
    "dollars?", "cents?", "units?", "degrees?", "people", "students", "cookies", "apples", "ways")) +
    r")\.?(?:\s*\^\s*\{?[23]\}?)?$")
# the value a unit may follow: a number or a closed form, never text of its own (\text{A}\text{BCDE} is a hedge)
_TEXT_INSIDE = re.compile(r"\\(?:text|textbf|textit|mbox|mathrm|operatorname)\b|[A-Za-z]{2,}")
_PERCENT_WORD = re.compile(r"\s*(?:\\(?:text|mbox|mathrm)\s*\{\s*(?:percent|pct)\.?\s*\}|(?:percent|pct)\.?)\s*$")
# the left side of `label = value`: symbols, subscripts, primes, f(x), |AB|, (p,q), V_1:V_2, \frac{NO}{BO}, \angle ABC
_LABEL = re.compile(r"^(?:[A-Za-z\s_{}(),:|'^]|\\(?:frac|angle|overline|mathrm|text|left|right|prime|alpha|beta|gamma|theta|phi)"
                    r"|_\{?\d+\}?)+$")
_IN_SET = re.compile(r"^\s*[A-Za-z]\s*\\in\s*(?P<set>.+)$")
_LE, _LT = r"(?:\\leq?|\\leqslant|≤)", r"(?:<|\\lt)"
_CHAIN = re.compile(rf"^(?P<a>[^<>=\\]*?(?:\\[a-z]+\{{[^{{}}]*\}}\{{?[^{{}}<>=]*\}}?)?)\s*(?P<op1>{_LE}|{_LT})\s*[A-Za-z]\s*(?P<op2>{_LE}|{_LT})\s*(?P<b>.+)$")  # noqa: E501


def _strip_label(s: str) -> str:
    parts = split_top_level(s, "=")
    if len(parts) == 2 and parts[1].strip() and _LABEL.match(parts[0].strip()) and not letters_outside_commands(parts[1]):
        return parts[1].strip()
    return s


_COMMAND = re.compile(r"\\[a-zA-Z]+")


def without_commands(s: str) -> str:
    """`s` with its LaTeX commands (\\frac, \\sqrt, \\text, ...) removed: what is left are its own letters."""
    return _COMMAND.sub("", s)


_ENV_NAME = re.compile(r"\\(?:begin|end)\s*\{[a-z*]+\}")


def letters_outside_commands(s: str) -> bool:
    return bool(re.search(r"[A-Za-z]", without_commands(_ENV_NAME.sub("", s))))


_SPACING = re.compile(r"\\[,;:! ]|~|\\quad|\\qquad")


def _element(s: str) -> str:
    s = _SPACING.sub(" ", s).strip()
    m = _IN_SET.match(s)
    if m:
        s = m.group("set").strip()
    m = _CHAIN.match(s)
    if m:
        lo = "(" if re.fullmatch(_LT, m.group("op1")) else "["
        hi = ")" if re.fullmatch(_LT, m.group("op2")) else "]"
        s = f"{lo}{m.group('a').strip()},{m.group('b').strip()}{hi}"
    s = _as_tuple(_strip_label(s))
    s = _PERCENT_WORD.sub(r"\\%", s) if re.search(r"\d\s*(?:\\[a-z]+\s*\{\s*)?(?:percent|pct)", s) else s
    for pattern in (_UNIT_TEXT, _UNIT_WORDS, _GLUED_UNIT):
        m = pattern.match(s)
        value = m.group("value").strip() if m else ""
        if value and re.search(r"\d", value) and not _TEXT_INSIDE.search(without_commands_keep_text(value)):
            s = value
    return _function_label(s)


_FUNCTION_LHS = re.compile(r"^\s*(?:y|[a-zA-Z]\s*\(\s*[a-zA-Z]\s*\))\s*=\s*(?P<rhs>[^=<>]+)$")


def _function_label(s: str) -> str:
    """`y = 2x+1` and `f(x) = 2x+1` name the same function: its right-hand side."""
    m = _FUNCTION_LHS.match(s)
    return m.group("rhs").strip() if m else s


def without_commands_keep_text(s: str) -> str:
    """`s` without its maths commands (\\frac, \\sqrt ...), keeping the text commands visible."""
    return re.sub(r"\\(?!text|mbox|mathrm|operatorname)[a-zA-Z]+", "", s)


_COLUMN = re.compile(r"^\\begin\{[pb]?matrix\}(?P<body>[^&]*?)\\end\{[pb]?matrix\}$", re.S)
_ROOT_OF_QUOTIENT = re.compile(r"\\sqrt\s*\{\s*(?:\\frac\s*\{(?P<a>[^{}]+)\}\s*\{(?P<b>[^{}]+)\}|(?P<c>[^{}/]+)/(?P<d>[^{}/]+))\s*\}")
_WRAPPED_MATRIX = re.compile(r"^(?:\\left)?\(\s*(\\begin\{pmatrix\}.*\\end\{pmatrix\})\s*(?:\\right)?\)$", re.S)
_ANGLE_LIST = re.compile(r"^\\langle(?P<body>.*)\\rangle$", re.S)


def column_entries(s: str) -> list[str] | None:
    """The entries of a column vector (a one-column matrix of 2+ rows, also inside `\\left( \\right)`), or None."""
    m = _COLUMN.match(_WRAPPED_MATRIX.sub(r"\1", s.strip()))
    if not m:
        return None
    rows = [r.strip() for r in re.split(r"\\\\", m.group("body")) if r.strip()]
    return rows if len(rows) >= 2 else None


def _as_tuple(s: str) -> str:
    """A column vector, `\\langle a, b\\rangle` or a bracketed list of 3+ entries, as the tuple `(a, b, c)`."""
    rows = column_entries(s)
    if rows is not None:
        return f"({', '.join(rows)})"
    m = _ANGLE_LIST.match(s.strip())
    if m:
        return f"({m.group('body').strip()})"
    if s.startswith("[") and s.endswith("]") and enclosed(s) and len(split_top_level(s[1:-1], ",")) >= 3:
        return f"({s[1:-1]})"  # [a, b, c] is no interval
    return s


def _root_of_quotient(match: re.Match) -> str:
    a, b = (match["a"], match["b"]) if match["a"] is not None else (match["c"], match["d"])
    return f"\\frac{{\\sqrt{{{a.strip()}}}}}{{\\sqrt{{{b.strip()}}}}}"


def canonical(answer: str) -> str:
    """One spelling per meaning for the families graders accept: `(p,q)=(3,2)` -> `(3,2)`,
    `\\frac{1}{3}\\text{ meters}` -> `\\frac{1}{3}`, `28 percent` -> `28\\%`, `6 and 8` -> `6, 8`,
    `bmatrix`/`array` -> `pmatrix`, `\\pm 2` -> `-2, 2`, `x\\in[-2,7]` and `-2\\le x\\le 7` -> `[-2,7]`."""
    s = _ARRAY.sub(r"\\begin{pmatrix}\g<body>\\end{pmatrix}", answer)
    s = _ENV.sub(r"\\\1{pmatrix}", s)
    s = _ROOT_OF_QUOTIENT.sub(_root_of_quotient, s)
    if s.count("\\pm") + s.count("\\mp") == 1 and "," not in s:
        s = s.replace("\\mp", "\\pm")
        s = f"{s.replace(chr(92) + 'pm', '-', 1)}, {s.replace(chr(92) + 'pm', '+', 1)}"
        s = re.sub(r"^\+\s*", "", s.replace(", +", ", "))
    s = _CONNECTIVE.sub(", ", s)
    parts = split_top_level(s, ",")
    rewritten = [_element(x) for x in parts]
    if rewritten == [x.strip() for x in parts]:
        return s
    return ", ".join(x for x in rewritten if x)
