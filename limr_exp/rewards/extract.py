"""Answer extraction and LIMR's format rule: the last complete `\\boxed{...}` is the answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

BOX_RE = re.compile(r"\\(?:boxed|fbox)")
# characters of ordinary maths/text: ASCII printable and whitespace, Greek, common maths symbols, typography
_ALLOWED_NON_ASCII = re.compile(r"[\u00a0-\u00ff\u0370-\u03ff\u2000-\u206f\u2100-\u214f\u2190-\u22ff\u2500-\u257f\u27e8-\u27e9]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    n_boxes: int
    problem: str | None  # None, or the format-error reason
    span: tuple[int, int] = (0, 0)  # where the answer stands in the text


def _braced(text: str, start: int) -> int:
    """Index just past the brace group opening at text[start] == '{', or -1 if it never closes."""
    depth = 0
    for m in re.finditer(r"\\.|[{}]", text[start:], flags=re.S):  # escaped chars (\{ \}) don't count
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return start + m.end()
    return -1


def last_boxed(text: str) -> Extraction:
    """The content of the last \\boxed{...} (nested braces of any depth) or \\boxed x."""
    starts = [m.end() for m in BOX_RE.finditer(text)]
    if not starts:
        return Extraction(None, 0, "no_box")
    pos = starts[-1]
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if pos < len(text) and text[pos] == "{":
        end = _braced(text, pos)
        if end < 0:
            return Extraction(None, len(starts), "unterminated_box")
        content, span = text[pos + 1:end - 1].strip(), (pos + 1, end - 1)
    else:  # "\boxed 5": the token up to whitespace or '$'
        m = re.match(r"[^\s$]+", text[pos:])
        content, span = (m.group().strip(), (pos, pos + m.end())) if m else ("", (pos, pos))
    if not content:
        return Extraction(None, len(starts), "empty_box")
    return Extraction(content, len(starts), None, span)


def garbled(text: str, max_fraction: float) -> bool:
    """More than `max_fraction` of the characters fall outside the usual maths/text set."""
    if not text:
        return False
    if text.isascii():
        bad = len(_CONTROL.findall(text))
    else:
        non_ascii = sum(1 for ch in text if ord(ch) > 127)
        bad = non_ascii - len(_ALLOWED_NON_ASCII.findall(text)) + len(_CONTROL.findall(text))
    return bad > max_fraction * len(text)


def repeated(text: str, min_span: int, min_repeats: int, max_span: int = 200) -> bool:
    """A span of `min_span`+ characters (at least two distinct non-space ones) repeated
    `min_repeats`+ times in a row: the mark of a degenerate, looping generation.

    Linear scan: a run of period L repeats every `min_span`-gram at distance L, so candidate periods
    come from the previous occurrence of each gram and are confirmed by one string comparison.
    """
    n, s, r = len(text), min_span, max(min_repeats, 2)
    if n < s * r:
        return False
    last: dict[str, int] = {}
    for i in range(n - s + 1):
        gram = text[i:i + s]
        j = last.get(gram)
        last[gram] = i
        if j is None:
            continue
        period = i - j
        if s <= period <= max_span and j + r * period <= n and text[j:j + (r - 1) * period] == text[j + period:j + r * period]:
            if len(set(text[j:j + period]) - set(" \t\n")) >= 2:
                return True
    return False


def end_of_response(response: str, settings, ended: bool | None = None) -> tuple[str, str | None]:
    """(the text to judge, None) or (text, "no_end_token"), as LIMR's RM server reads a response: only the
    text before the first end token counts (what follows it was never the model's answer), and with
    `settings.require_end_token` a response without one (cut at the token limit) is a format error.
    `ended` is the generator's own word (decoded text has no special tokens): True stopped at an end
    token, False cut at the limit, None read from the text."""
    cut = min((i for i in (response.find(t) for t in settings.end_tokens if t) if i >= 0), default=-1)
    if cut >= 0:
        return response[:cut], None
    if settings.require_end_token and not ended:
        return response, "no_end_token"
    return response, None


def format_problem(response: str, settings) -> tuple[str | None, str | None]:
    """(extracted answer, None) for a well-formed response, or (None | answer, reason) for a format error."""
    ex = last_boxed(response)
    if ex.problem == "no_box":
        return None, "no_box"
    if settings.max_boxes > 0 and ex.n_boxes >= settings.max_boxes:
        return ex.answer, "too_many_boxes"
    if ex.problem is not None:
        return None, ex.problem
    prose = response[:ex.span[0]] + response[ex.span[1]:]  # the answer itself may repeat: 1, 1, 1, 1, 1 or a zero matrix
    if settings.check_garbled and garbled(prose, settings.garbled_fraction):
        return ex.answer, "garbled"
    if settings.check_repetition and repeated(prose, settings.repetition_min_span, settings.repetition_min_repeats):
        return ex.answer, "repetition"
    return ex.answer, None
