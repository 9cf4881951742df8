"""Symbolic equivalence on Math-Verify (run inside pool workers, which bound its time and memory).

Both sides reach Math-Verify as LaTeX inside `$...$`, gold first, through `LatexExtractionConfig`
only: its `ExprExtractionConfig` path calls sympy's `parse_expr` (an `eval`) on raw text, so model
output never goes there.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

# math-verify warns on every call that its own signal-based timeouts are off (the pool bounds time)
# and logs each unparseable answer; neither is news to a user.
logging.getLogger("math_verify").setLevel(logging.CRITICAL)


_INTEGER = re.compile(r"-?\d{1,50}")


@lru_cache(maxsize=4096)
def _parse(latex: str):
    """Math-Verify's parse of `$latex$`; a plain integer is built directly, as the parser builds it
    (`[Integer(n), text]`, checked against the parser in the tests), saving most of a pair's time."""
    if _INTEGER.fullmatch(latex):
        from sympy import Integer

        return [Integer(int(latex)), latex]
    from math_verify import LatexExtractionConfig, parse

    return parse(f"${latex}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)


def verify_pair(gold: str, pred: str) -> bool:
    """Math-Verify's judgement of `pred` against `gold` (both LaTeX, without delimiters); an answer
    Math-Verify cannot read (or a sympy failure inside it) is not equal."""
    from math_verify import verify

    try:
        g, p = _parse(gold), _parse(pred)
        return bool(g and p and verify(g, p, timeout_seconds=None))
    except MemoryError:
        raise
    except Exception:
        return False
