"""Is a predicted answer equal to the reference? Fast paths that say only what they can prove, then
Math-Verify for everything else.

The rule: wherever Math-Verify alone is right, so are we. A fast path therefore answers "equal" when
the normalised spellings or exact values agree, and "not equal" only for plain numbers (or number
tuples in the same brackets) whose values differ by more than Math-Verify's own rounding could
bridge. Answers with words, `=`, `:`, `\\in`, `\\pm`, connectives, environments, units or differing
element counts always reach Math-Verify: first as written, then in the canonical spelling of
`normalize.canonical` (so that families Math-Verify misreads, such as `-2 \\le x \\le 7`, get a
second reading that can only turn "not equal" into "equal").
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

from limr_exp.rewards.normalize import (
    as_rational,
    canonical,
    column_entries,
    enclosed,
    light_clean,
    normalize,
    split_top_level,
    strip_outer_parens,
    without_commands,
)
from limr_exp.rewards.numeric import evaluate, exact_value, letters

FLOAT_ROUNDING = 6  # Math-Verify rounds a float to 6 decimal places before comparing
# two values further apart than this differ after any rounding to FLOAT_ROUNDING places
_PROVABLY_APART = Fraction(2, 10**FLOAT_ROUNDING)
_FLOAT_APART = float(_PROVABLY_APART)
_DIVISION = re.compile(r"/|\\div")  # `1/2\pi`: readers disagree on precedence; such pairs go to Math-Verify
_SET_MARKS = re.compile(r"\\cup|\\infty")  # unions and half-lines
_CONSTANT_LETTERS = {"e", "E"}  # Euler's number to Math-Verify
_IMAGINARY = {"i", "I"}
_LETTER_RUN = re.compile(r"[A-Za-z]{2,}")
# spellings that normalisation drops but Math-Verify reads as a change of value (28\% = 0.28, 30^\circ = pi/6)
_PERCENT = re.compile(r"%")
_DEGREE_MARK = re.compile(r"\\circ|°|\\degree")
_SCALE_MARKS = re.compile(f"{_PERCENT.pattern}|{_DEGREE_MARK.pattern}")


_MATRIX = re.compile(r"\\begin\{[pbv]?matrix\}")
_WORD = re.compile(r"(?:\\text\{)?[A-Za-z]{2,}\}?")  # a normalised word: no digits, no maths
_BASE_NUMERAL = re.compile(r"(?P<digits>-?[0-9A-Za-z]+)_\{?(?P<base>\d{1,2})\}?")


def _other_base_apart(s: str, value) -> bool:
    """`s` is a numeral in another base (1110_4, \\text{A5}_{11}) whose value and literal digits both
    differ from `value` beyond any rounding."""
    m = _BASE_NUMERAL.fullmatch(s.replace("\\text{", "").replace("}_", "_"))
    if not m or not 2 <= int(m["base"]) <= 36:
        return False
    try:
        in_base = int(m["digits"], int(m["base"]))
    except ValueError:
        return False
    literal = as_rational(m["digits"])
    readings = [Fraction(in_base)] + ([literal] if literal is not None else [])
    return all(_apart(r, value) for r in readings)


def _numbers_equal(g: Fraction, p: Fraction) -> bool | None:
    """Exactly equal -> True; apart by more than rounding can bridge -> False; else undecided."""
    if g == p:
        return True
    if abs(g - p) > _PROVABLY_APART:
        return False
    return None


def _apart(a: Fraction | float, b: Fraction | float) -> bool:
    """Values that no rounding to FLOAT_ROUNDING places (nor float error) can make equal."""
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return abs(a - b) > _PROVABLY_APART
    a, b = float(a), float(b)
    return abs(a - b) > _FLOAT_APART + 1e-9 * max(abs(a), abs(b))


def _value(s: str) -> Fraction | float | None:
    """The exact value of a plain number, or the value of a closed form (\\frac, \\sqrt, \\pi, powers,
    products) without letters and without `/` (whose precedence readers disagree on); else None."""
    v = as_rational(s)
    if v is not None:
        return v
    if letters(s) or _DIVISION.search(s):
        return None
    return evaluate(s)


def _values(s: str) -> tuple[str, list] | None:
    """('', [v]) for one value, (brackets, [v1, v2, ...]) for a bracketed or bare list of values, else None."""
    brackets, inner = "", s
    if enclosed(s):
        brackets, inner = s[0] + s[-1], s[1:-1]
    parts = split_top_level(inner, ",")
    if len(parts) == 1 and brackets:
        return None  # '{5}' or '[5]': not a list
    values = [_value(x) for x in parts]
    return None if any(v is None for v in values) else (brackets, values)


def _trailing_unit(s: str) -> bool:
    """Math-Verify's parser would strip a trailing unit (`3h`, `5 m`): its own pattern decides."""
    try:
        from latex2sympy2_extended.math_normalization import units_regex
    except ImportError:  # another version: any trailing letter might be a unit
        return s[-1].isalpha()
    return units_regex.search(s) is not None


def _non_constant(s: str) -> bool:
    """An expression that equals no number in Math-Verify's reading: it changes with its one-letter
    variables. Excluded, because Math-Verify reads them otherwise: `e` (Euler's number), runs of letters
    (words and units it rewrites: pct, inf, cm), a trailing unit letter (which it strips), `/`. The
    imaginary `i` may occur once, outside powers and roots: then the expression is (a i + b)/(c i + d),
    real at i = sqrt(-1) only when it is constant in i, so "changes with i" proves it is no real number."""
    names = letters(s)
    if not names or names & _CONSTANT_LETTERS or _DIVISION.search(s) or _LETTER_RUN.search(without_commands(s)):
        return False
    if names & _IMAGINARY and (len(re.findall(r"(?<![A-Za-z\\])[iI](?![A-Za-z])", s)) != 1 or "^" in s or "\\sqrt" in s):
        return False
    if _trailing_unit(s):
        return False
    values = [evaluate(s, {name: x + 0.37 * j for j, name in enumerate(sorted(names))}) for x in (0.5, -1.7, 2.3)]
    return None not in values and any(_apart(values[0], v) for v in values[1:])


def _same_set(xs: list, ys: list) -> bool:
    """Every value of each list is (to 1e-12) some value of the other."""
    def within(a, b):
        return all(any(math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12) for y in b) for x in a)

    return within(xs, ys) and within(ys, xs)


def _has_stranger(xs: list, ys: list) -> bool:
    """Some value of xs is apart from every value of ys."""
    return any(all(_apart(x, y) for y in ys) for x in xs)


def decide_fast(gold: str, pred: str, light: bool = False) -> bool | None:
    """True/False when provable without symbolic work (both normalised), else None. `light`: without the
    checks that need Math-Verify's modules (for a caller that has not imported them)."""
    if gold == pred:
        return True
    gold, pred = strip_outer_parens(gold), strip_outer_parens(pred)
    if gold == pred:
        return True
    g, p = as_rational(gold), as_rational(pred)
    if g is not None and p is not None:
        return _numbers_equal(g, p)
    gv, pv = _values(gold), _values(pred)
    if gv is not None and pv is not None:
        (gb, gs), (pb, ps) = gv, pv
        if gb == pb and len(gs) == len(ps):
            if all(isinstance(a, Fraction) and isinstance(b, Fraction) and a == b for a, b in zip(gs, ps)):
                return True  # the same numbers in the same order and brackets
            if len(gs) == 1 and math.isclose(gs[0], ps[0], rel_tol=1e-12, abs_tol=1e-12):
                return True  # closed forms of one value: 2\\sqrt{3} and \\sqrt{12}
        if {gb, pb} == {"", "()"} and len(gs) > 1 and _same_set(gs, ps):
            return True  # Math-Verify reads a bare list as a set and compares it with a tuple as sets
        if _has_stranger(gs, ps) or _has_stranger(ps, gs):
            return False  # the value sets differ: unequal as numbers, tuples, sets and intervals alike
        return None
    if (gv is None) != (pv is None):
        other, number = (gold, pv) if gv is None else (pred, gv)
        if _SET_MARKS.search(other):
            return False  # numbers never equal a union or a half-line
        if (_MATRIX.search(other) and ("&" in other or "\\\\" in other)) or _WORD.fullmatch(other):
            return False  # nor a matrix of several entries, nor a word (Sunday, \text{odd})
        if len(number[1]) == 1 and _other_base_apart(other, number[1][0]):
            return False  # 1110_4 is 84 (or, read literally, 1110)
        if not light and _non_constant(gold if gv is None else pred) and len((gv or pv)[1]) == 1:
            return False  # an expression that changes with its variables equals no number
    return None


@lru_cache(maxsize=100_000)
def _spellings(answer: str) -> tuple[str, str, str, bool]:
    """(as Math-Verify gets it, canonical, normalised, carries a scale mark): a reference answer is
    prepared once per worker, however many samples are judged against it."""
    light = light_clean(answer)
    if _PLAIN.fullmatch(light):
        return light, light, light, False
    canon = canonical(light)
    return light, canon, normalize(canon), _SCALE_MARKS.search(light) is not None


_PLAIN = re.compile(r"-?\d{1,30}(?:\.\d{1,30})?")
_DECIMAL = re.compile(r"\d\.\d|(?<!\d)\.\d|\d\.(?!\d)")
_IMAGINARY_UNIT = re.compile(r"(?<![A-Za-z\\])i(?![A-Za-z])")
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_CLOCK = re.compile(r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?")
# a relative gap this large between two values that Math-Verify's 6-place rounding would call equal
# is no rounding of one value: tiny values (1e-8 and 2e-8) are different numbers
_TINY_REL_GAP = Fraction(1, 1000)


def _exact_verdict(gold: str, pred: str) -> bool | None:
    """Both sides exact closed forms (over the rationals, or Q(i) when `i` occurs and nothing else is a
    letter): decided exactly. With a decimal on either side, a decimal may be a rounding of the other
    side, so only "equal", "far apart" or "tiny and relatively apart" are decided."""
    imaginary = bool(_IMAGINARY_UNIT.search(gold) or _IMAGINARY_UNIT.search(pred))
    if imaginary and (letters(gold) | letters(pred)) - _IMAGINARY:
        return None
    g, p = exact_value(gold, imaginary), exact_value(pred, imaginary)
    if g is None or p is None:
        return None
    if g == p:
        return True
    if imaginary:
        return None  # equal as complex numbers is proven above; "not equal" is Math-Verify's to say
    if not (_DECIMAL.search(gold) or _DECIMAL.search(pred)):
        return False
    gap = abs(g.re - p.re)
    if gap > _PROVABLY_APART or gap > _TINY_REL_GAP * max(abs(g.re), abs(p.re)):
        return False
    return None


def _degrees_verdict(gold: str, pred: str) -> bool | None:
    """Trigonometric values in degrees (\\sin 30^\\circ = \\frac12), which Math-Verify misreads: "equal"
    when both sides evaluate to the same number; anything else is left to Math-Verify."""
    if not (_TRIG.search(gold) or _TRIG.search(pred)) or letters(gold) or letters(pred):
        return None
    g, p = evaluate(gold), evaluate(pred)
    if g is not None and p is not None and math.isclose(g, p, rel_tol=1e-9, abs_tol=1e-12):
        return True
    return None


_MERIDIEM = re.compile(r"\s*(?:\\(?:text|mbox|mathrm)\s*\{\s*)?(?P<half>[aApP])\.?\s*[mM]\.?\s*\}?$")


def _time_of_day(s: str) -> tuple[int, int, int] | None:
    """(hours on a 24-hour clock, minutes, seconds) of `20:34`, `20:34:00`, `8:34 pm`, `8:34\\text{ p.m.}`."""
    half = _MERIDIEM.search(s)
    m = _CLOCK.fullmatch(s[:half.start()].strip() if half else s.strip())
    if not m:
        return None
    h, minutes, seconds = int(m["h"]), int(m["m"]), int(m["s"] or 0)
    if half:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if half["half"] in "pP" else 0)
    return (h, minutes, seconds) if h < 24 and minutes < 60 and seconds < 60 else None


def _column_verdict(gold: str, pred: str) -> bool | None:
    """A column vector against a bracketed list of the same entries, `[a, b]` included (a list beside a
    vector is no interval): equal when every entry is provably equal, in order."""
    for vec, other in ((gold, pred), (pred, gold)):
        rows, o = column_entries(vec), other.strip()
        if rows is None or not (o[:1] in "([" and enclosed(o) or o.startswith("\\langle")):
            continue
        inner = o[len("\\langle"):-len("\\rangle")] if o.startswith("\\langle") and o.endswith("\\rangle") else o[1:-1]
        entries = [e.strip() for e in split_top_level(inner, ",")]
        if len(rows) == len(entries):
            return True if all(decide_fast(normalize(a), normalize(b), True) for a, b in zip(rows, entries)) else None
    return None


def _clock_verdict(gold: str, pred: str) -> bool | None:
    """20:34, 20:34:00 and 8:34 pm (and 8:30 and 08:30) are one time of day; a plain `a:b` without seconds
    or a.m./p.m. on either side may be a ratio, so it is left to Math-Verify."""
    if not (":" in gold and ":" in pred):
        return None
    g, p = _time_of_day(gold), _time_of_day(pred)
    clock_like = lambda s: s.count(":") == 2 or _MERIDIEM.search(s) is not None  # noqa: E731
    if g is not None and g == p and (clock_like(gold) or clock_like(pred)):
        return True
    return None


def _readings(light: str, normalised: str) -> list | None:
    """Every value Math-Verify may give a number with a scale mark: 28\\% as 28 or 0.28, 30^\\circ as 30
    or pi/6; None when it is not one number."""
    value = _value(normalised)
    if value is None:
        return None
    values = [value]
    if _PERCENT.search(light):
        values.append(value / 100)
    if _DEGREE_MARK.search(light):
        values.append(float(value) * math.pi / 180)
    return values


def _apart_in_every_reading(g: str, gn: str, p: str, pn: str) -> bool:
    gs, ps = _readings(g, gn), _readings(p, pn)
    return gs is not None and ps is not None and all(_apart(a, b) for a in gs for b in ps)


_CHOICE_NOISE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox)\b|\\[ ,;:!]|[{}()\[\]$\s.:~\\]")


def _choice_verdict(gold: str, pred: str) -> bool | None:
    """A multiple-choice reference (A, (B), \\text{(C)}) is matched by exactly that letter: an answer that
    names several capital letters (\\text{A}\\text{BCDE}, A \\text{B}, (C)(D)) is a hedge, never paid,
    although Math-Verify would read the extra text as a unit and drop it."""
    g = _CHOICE_NOISE.sub("", gold)
    if not re.fullmatch(r"[A-Z]", g):
        return None
    p = _CHOICE_NOISE.sub("", pred)
    if p == g:
        return True
    if len(set(re.findall(r"[A-Z]", p))) >= 2 or (re.fullmatch(r"[A-Z]+", p) and len(p) > 1):
        return False
    return None


def _several_candidates(gold: str, pred: str) -> bool:
    """A list of different answers (`3 cm, 4 cm`, `A, B`) against a reference of one: a hedge. (The same
    answer listed twice, `1/2, 1/2`, is still one answer; so is a list against a list.)"""
    inner = gold[2:-2] if gold.startswith("\\{") and gold.endswith("\\}") else gold[1:-1] if enclosed(gold) else gold
    def items(x: str) -> list[str]:
        return [y.strip() for part in split_top_level(x, ",") for y in split_top_level(part, ";") if y.strip()]

    g_parts, p_parts = items(inner), items(pred)
    return len(g_parts) <= 1 and len(p_parts) >= 2 and len(set(p_parts)) >= 2 and "\\pm" not in gold + pred


def fast_verdict(gold: str, pred: str, light: bool = False) -> bool | None:
    """What can be proven without Math-Verify: True, False, or None (undecided). Pure Python on short
    strings, so a caller may run it in its own thread without a time budget; `light` leaves out the one
    check that imports Math-Verify's modules (sympy), so a caller thread never pays for that import."""
    g, _, gn, g_scaled = _spellings(gold)
    p, _, pn, p_scaled = _spellings(pred)
    choice = _choice_verdict(g, p)
    if choice is not None:
        return choice
    if _several_candidates(gn, pn):
        return False
    if _degrees_verdict(g, p) or _clock_verdict(g, p) or _column_verdict(g, p):
        return True
    verdict = decide_fast(gn, pn, light)
    if verdict is None:
        verdict = _exact_verdict(gn, pn)
    if verdict is True or (verdict is False and not (g_scaled or p_scaled)):
        return verdict
    if verdict is False and _apart_in_every_reading(g, gn, p, pn):
        return False  # a scale mark read either way leaves the numbers apart
    return None


@lru_cache(maxsize=100_000)
def equal(gold: str, pred: str) -> bool:
    """Full decision (may call Math-Verify; run it where a time budget is enforced)."""
    verdict = fast_verdict(gold, pred)
    if verdict is not None:
        return verdict
    from limr_exp.rewards.verifier import verify_pair

    g, gc, _, _ = _spellings(gold)
    p, pc, _, _ = _spellings(pred)
    return verify_pair(g, p) or ((gc, pc) != (g, p) and verify_pair(gc, pc))
