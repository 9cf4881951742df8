"""Symbolic equivalence on Math-Verify (run inside pool workers, which bound its time and memory).

Both sides reach Math-Verify as LaTeX inside `$...$`, gold first, through `LatexExtractionConfig`
only: its `ExprExtractionConfig` path calls sympy's `parse_expr` (an `eval`) on raw text, so model
output never goes there.
"""

from __future__ import annotations

import logging
from functools import lru_cache


# math-verify warns on every call that its own signal-based timeouts are off (the pool bounds time)
# and logs each unparseable answer; neither is news to a user.
logging.getLogger("math_verify").setLevel(logging.CRITICAL)

@lru_cache(maxsize=4096)
def _parse(latex: str):
    from math_verify import LatexExtractionConfig, parse

    return parse(f"${latex}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)


def verify_pair(gold: str, pred: str) -> bool:
    """Math-Verify's judgement of `pred` against `gold` (both LaTeX, without delimiters)."""
    from math_verify import verify

    g, p = _parse(gold), _parse(pred)
    if not g or not p:
        return False
    return bool(verify(g, p, timeout_seconds=None))
