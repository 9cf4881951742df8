"""Prompt texts from a log -> the problem set's ids: exact, stripped, or cut out of a chat-templated input.
Texts the set lacks keep an `unmatched-…` id: they still count towards LIM's mean curve, as in the
released script, but can't be selected."""

from __future__ import annotations

import os
import re
from itertools import repeat

import numpy as np

from limr_exp.data.problems import text_key


def unmatched_id(text: str) -> str:
    import hashlib

    return "unmatched-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class TextMatcher:
    """Maps prompt texts from logs to codes into `ids`. A text is the problem itself (exact, then stripped),
    or a chat-templated input that holds it (verl decodes inputs with or without special tokens, under any
    template): then `prompt_regex`'s group 1 when given, else what lies between the template parts that all
    inputs of a file share, else the longest problem text found inside the input. The problem set's ids
    come first, in its order, so a forked worker can code the texts it reads (`lookup`); texts the set
    lacks get a stable `unmatched-…` id, coded in the parent (`unmatched_code`)."""

    ANCHOR = 12  # problems are found inside inputs by their first ANCHOR characters

    def __init__(self, text_to_id: dict[str, str], prompt_regex: str | None = None, templated: bool = False):
        self.ids: list[str] = list(dict.fromkeys(text_to_id.values()))
        code_of_id = {pid: c for c, pid in enumerate(self.ids)}
        self.known = {text: code_of_id[pid] for text, pid in text_to_id.items()}  # stripped text -> code
        self.pattern = re.compile(prompt_regex, re.S) if prompt_regex else None
        self.templated = templated
        self._anchors: dict[str, list[str]] | None = None
        self._unmatched: dict[str, int] = {}

    def _anchor_index(self) -> dict[str, list[str]]:
        """First ANCHOR characters -> the problem texts starting with them (longest first); built on first use."""
        if self._anchors is None:
            self._anchors = {}
            for text in sorted(self.known, key=len, reverse=True):
                self._anchors.setdefault(text[:self.ANCHOR], []).append(text)
        return self._anchors

    def _inside(self, text: str) -> int:
        """The code of the longest problem text that occurs inside `text`, or -1."""
        index, best = self._anchor_index(), ""
        for i in range(len(text) - 1):
            for candidate in index.get(text[i:i + self.ANCHOR], ()):
                if len(candidate) > len(best) and text.startswith(candidate, i):
                    best = candidate
                    break
        return self.known[best] if best else -1

    def _lookup_slow(self, text: str, template: tuple[int, int] = (0, 0)) -> int:
        c = self.known.get(text_key(text), -1)
        if c < 0 and self.pattern is not None:
            m = self.pattern.search(text)
            if m:
                c = self.known.get(text_key(m.group(1)), -1)
        if c < 0 and self.templated and self.pattern is None:
            head, tail = template
            c = self.known.get(text_key(text[head:len(text) - tail]), -1)
            if c < 0:
                c = self._inside(text)
        return c

    def lookup(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        """Codes of `texts` (one exact-text lookup per sample; the slower rules run once per distinct text
        that misses); the j-th distinct text the problem set lacks gets code -1-j and is returned."""
        codes = np.fromiter(map(self.known.get, texts, repeat(-1)), dtype=np.int32, count=len(texts))
        missed = np.flatnonzero(codes < 0).tolist()
        distinct = list(dict.fromkeys(texts[i] for i in missed))
        template = _shared_ends(distinct) if self.templated and len(distinct) > 1 else (0, 0)
        misses: list[str] = []
        slow: dict[str, int] = {}
        for i in missed:
            text = texts[i]
            c = slow.get(text)
            if c is None:
                c = self._lookup_slow(text, template)
                if c < 0:
                    c = -1 - len(misses)
                    misses.append(text)
                slow[text] = c
            codes[i] = c
        return codes, misses

    def unmatched_code(self, text: str) -> int:
        key = text_key(text)
        c = self._unmatched.get(key)
        if c is None:
            c = self._unmatched[key] = len(self.ids)
            self.ids.append(unmatched_id(key))
        return c

    @property
    def n_unmatched(self) -> int:
        return len(self._unmatched)


def _shared_ends(texts: list[str]) -> tuple[int, int]:
    """Lengths of the prefix and suffix that all `texts` share (a chat template's fixed parts)."""
    head = len(os.path.commonprefix(texts))
    tail = len(os.path.commonprefix([t[::-1] for t in texts]))
    shortest = min(map(len, texts))
    return head, min(tail, shortest - head)
