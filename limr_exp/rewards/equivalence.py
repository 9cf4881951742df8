"""Is a predicted answer equal to the reference? Fast exact paths first, Math-Verify for the rest.

The fast paths follow Math-Verify's own rules so the two agree: integers and fractions compare
exactly, a decimal on either side compares after rounding both to 6 places, closed-form numbers
(\\sqrt, \\pi, ...) compare numerically, and a tuple never equals a number of another arity.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from limr_exp.rewards.normalize import _NUMBER, as_rational, light_clean, normalize
from limr_exp.rewards.numeric import evaluate, letters

_COMMANDS = re.compile(r"\\[a-zA-Z]+")
_SET_MARKS = re.compile(r"\\cup|\\cap|\\infty|\\emptyset|\\varnothing")
FLOAT_ROUNDING = 6


def _top_level_commas(s: str) -> int:
    depth, commas = 0, 0
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            commas += 1
    return commas


def _arity(s: str) -> int:
    """Elements of a tuple/list/interval/set answer (1 for a single value)."""
    if len(s) >= 2 and s[0] in "([{" and s[-1] in ")]}":
        depth = 0
        for k, ch in enumerate(s):
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth == 0 and k < len(s) - 1:
                return _top_level_commas(s) + 1
        return _top_level_commas(s[1:-1]) + 1
    return _top_level_commas(s) + 1


def _strip_outer_parens(s: str) -> str:
    """'(8-i)' -> '8-i' when the parentheses wrap the whole answer and it is not a tuple."""
    while len(s) >= 2 and s[0] == "(" and s[-1] == ")":
        depth = 0
        for k, ch in enumerate(s):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(s) - 1:
                return s
        inner = s[1:-1]
        if _top_level_commas(inner):
            return s
        s = inner
    return s


def _is_decimal(s: str) -> bool:
    return bool(_NUMBER.match(s)) and ("." in s or "e" in s.lower())


def _free_letters(s: str) -> set[str]:
    """Letters outside LaTeX commands and \\text-like words (e may be Euler's number)."""
    return set(re.findall(r"[a-df-zA-Z]", _COMMANDS.sub("", s)))


_PROBE_POINTS = (0.5, -1.7, 2.3)  # where two expressions in the same variables are compared


def _compare_values(gv: float, pv: float, decimal: bool) -> bool | None:
    if decimal and round(gv, FLOAT_ROUNDING) == round(pv, FLOAT_ROUNDING):
        return True
    if math.isclose(gv, pv, rel_tol=1e-12, abs_tol=1e-12):
        return True
    if not math.isclose(gv, pv, rel_tol=1e-6, abs_tol=1e-9):
        return False
    return None  # close but not equal: let Math-Verify decide


def _elements(s: str) -> list[str]:
    if len(s) >= 2 and s[0] in "([{" and s[-1] in ")]}" and _arity(s) == _top_level_commas(s[1:-1]) + 1:
        s = s[1:-1]
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:k])
            start = k + 1
    return parts + [s[start:]]


def decide_fast(gold: str, pred: str) -> bool | None:
    """True/False when decidable without symbolic work (both normalised), else None."""
    if gold == pred:
        return True
    gold, pred = _strip_outer_parens(gold), _strip_outer_parens(pred)
    if gold == pred:
        return True
    g, p = as_rational(gold), as_rational(pred)
    if g is not None and p is not None:
        if _is_decimal(gold) or _is_decimal(pred):
            return round(g, FLOAT_ROUNDING) == round(p, FLOAT_ROUNDING)
        return g == p
    if _arity(gold) != _arity(pred):
        return False
    if _arity(gold) > 1:  # same arity: unequal sorted values mean unequal in every reading (tuple, set, interval)
        gvals = [evaluate(x) for x in _elements(gold)]
        pvals = [evaluate(x) for x in _elements(pred)]
        if None not in gvals and None not in pvals and any(
                not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(sorted(gvals), sorted(pvals))):
            return False
        return None
    if (_SET_MARKS.search(gold) is None) != (_SET_MARKS.search(pred) is None):
        return False  # an interval or union never equals a plain value
    gl, pl = _free_letters(gold), _free_letters(pred)
    if gl != pl:
        return False  # an expression in x never equals one in y or a constant (up to cancellation)
    if "=" in gold or "=" in pred:
        return None
    decimal = _is_decimal(gold) or _is_decimal(pred)
    names = letters(gold) | letters(pred)
    if not names:
        gv, pv = evaluate(gold), evaluate(pred)
        return None if gv is None or pv is None else _compare_values(gv, pv, decimal)
    for x in _PROBE_POINTS:  # the same function of its variables? differs at a point -> no
        point = {name: x + 0.37 * j for j, name in enumerate(sorted(names))}
        gv, pv = evaluate(gold, point), evaluate(pred, point)
        if gv is None or pv is None:
            return None
        if _compare_values(gv, pv, False) is False:
            return False
    return None


@lru_cache(maxsize=100_000)
def equal(gold: str, pred: str) -> bool:
    """Full decision (may call Math-Verify; run it where a time budget is enforced)."""
    verdict = decide_fast(normalize(gold), normalize(pred))
    if verdict is not None:
        return verdict
    from limr_exp.rewards.verifier import verify_pair

    try:
        return verify_pair(light_clean(gold), light_clean(pred))
    except MemoryError:
        raise
    except Exception:  # an answer Math-Verify cannot read (or a sympy failure) is not equal
        return False
