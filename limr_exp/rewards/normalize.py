"""Normalisation of answer strings and the exact fast paths that decide common cases without
symbolic work: identical after normalisation, or both plain numbers/fractions compared exactly."""

from __future__ import annotations

import re
from fractions import Fraction

_SUBS = [
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\left|\\right|\\big|\\Big|\\bigg|\\Bigg"), ""),
    (re.compile(r"\\[!,;: ]|\\quad|\\qquad|~"), " "),
    (re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree"), ""),
    (re.compile(r"\\%|%|\\\$|\$"), ""),
    (re.compile(r"\{,\}"), ""),  # 1{,}000
    (re.compile(r"\\displaystyle|\\mathrm|\\mathbf|\\textstyle"), ""),
]
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|mbox|operatorname)\s*\{([^{}]*)\}")
_TRAILING_UNITS = re.compile(r"^(.*?\d)\s*\\(?:text|mbox|mathrm)\s*\{\s*[a-zA-Z][a-zA-Z ./^\d-]*\}(\^\s*\{?\d\}?)?\s*$")
_LHS = re.compile(r"^\s*[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?P<rhs>[^=<>]+)$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
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
