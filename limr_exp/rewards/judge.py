"""LIMR's rule-based reward (Sec. 3.3 of the paper; as in DeepSeek-R1 and SimpleRL):

    1    the last \\boxed{...} equals the reference answer
    -0.5 a final \\boxed{...} is present but wrong
    -1   a format error: no box, too many boxes, an unterminated or empty box, garbled or endlessly
         repeated text, or a judgement that overran its time budget

Format rules and the exact fast paths run in the calling process; what needs symbolic work goes
to Math-Verify in worker processes (verifier.py) with a hard per-judgement budget.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from limr_exp.rewards.extract import format_problem
from limr_exp.rewards.normalize import fast_equal, normalize
from limr_exp.rewards.settings import RewardSettings
from limr_exp.rewards.verifier import shared_pool

REASONS = ("correct", "wrong", "no_box", "too_many_boxes", "unterminated_box", "empty_box", "garbled", "repetition", "timeout")


@dataclass(frozen=True)
class Judgement:
    reward: float
    correct: bool
    reason: str  # one of REASONS
    extracted: str | None  # the last boxed answer, when there is one


class _Cache:
    """Thread-safe LRU of (normalised gold, normalised prediction) -> equal."""

    def __init__(self, size: int = 200_000):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key, value: bool) -> None:
        with self.lock:
            self.data[key] = value
            if len(self.data) > self.size:
                self.data.popitem(last=False)


_CACHE = _Cache()
_DEFAULT = RewardSettings()


def _check_types(response, answer) -> None:
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}" + (": decode bytes first" if isinstance(response, (bytes, bytearray)) else ""))
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}: pass the reference answer as text, e.g. str(42)")
    if not answer.strip():
        raise ValueError("answer is empty: every problem needs a reference answer")


def _finish(settings: RewardSettings, extracted: str | None, reason: str) -> Judgement:
    reward = settings.correct if reason == "correct" else settings.wrong if reason == "wrong" else settings.format_error
    return Judgement(reward, reason == "correct", reason, extracted)


def judge_batch(responses: Sequence[str], answers: Sequence[str], settings: RewardSettings | None = None) -> list[Judgement]:
    """Judge every (response, answer) pair; results in order. Symbolic checks run in parallel."""
    settings = settings or _DEFAULT
    if len(responses) != len(answers):
        raise ValueError(f"{len(responses)} responses but {len(answers)} answers: pass one answer per response")
    for r, a in zip(responses, answers):
        _check_types(r, a)
    out: list[Judgement | None] = [None] * len(responses)
    symbolic: dict[tuple[str, str], list[int]] = {}
    extracted_of: dict[int, str] = {}
    for i, (response, answer) in enumerate(zip(responses, answers)):
        extracted, problem = format_problem(response, settings)
        if problem is not None:
            out[i] = _finish(settings, extracted, problem)
            continue
        key = (normalize(answer), normalize(extracted))
        equal = fast_equal(*key)
        if equal is None:
            equal = _CACHE.get(key)
        if equal is not None:
            out[i] = _finish(settings, extracted, "correct" if equal else "wrong")
        else:
            symbolic.setdefault(key, []).append(i)
            extracted_of[i] = extracted
    if symbolic:
        keys = list(symbolic)
        pool = shared_pool(settings.workers, settings.memory_limit_mb)
        verdicts = pool.run_parallel([(j, g, p) for j, (g, p) in enumerate(keys)], settings.timeout_s)
        for j, key in enumerate(keys):
            verdict = verdicts.get(j)
            if verdict is not None:
                _CACHE.put(key, verdict)
            reason = "timeout" if verdict is None else "correct" if verdict else "wrong"
            for i in symbolic[key]:
                out[i] = _finish(settings, extracted_of[i], reason)
    return out  # type: ignore[return-value]


def judge(response: str, answer: str, settings: RewardSettings | None = None) -> Judgement:
    """The reward of one response, with the extracted answer and the reason."""
    settings = settings or _DEFAULT
    _check_types(response, answer)
    extracted, problem = format_problem(response, settings)
    if problem is not None:
        return _finish(settings, extracted, problem)
    key = (normalize(answer), normalize(extracted))
    equal = fast_equal(*key)
    if equal is None:
        equal = _CACHE.get(key)
    if equal is None:
        deadline = time.monotonic() + settings.timeout_s
        pool = shared_pool(settings.workers, settings.memory_limit_mb)
        equal = pool.run([(0, *key)], settings.timeout_s, deadline=deadline).get(0)
        if equal is None:
            return _finish(settings, extracted, "timeout")
        _CACHE.put(key, equal)
    return _finish(settings, extracted, "correct" if equal else "wrong")


def math_reward(response: str, answer: str, settings: RewardSettings | None = None) -> float:
    """1.0 / -0.5 / -1.0 (LIMR's rule)."""
    return judge(response, answer, settings).reward


def score_batch(responses: Sequence[str], answers: Sequence[str], settings: RewardSettings | None = None) -> list[float]:
    """Rewards of a whole rollout batch, in order."""
    return [j.reward for j in judge_batch(responses, answers, settings)]


def warm_up(settings: RewardSettings | None = None) -> None:
    """Start the verifier processes now, so the first judgements don't pay for it."""
    settings = settings or _DEFAULT
    shared_pool(settings.workers, settings.memory_limit_mb).warm_up()


def timeouts() -> int:
    """Judgements that overran their budget in this process (all pools)."""
    from limr_exp.rewards.verifier import _POOLS

    return sum(p.timeouts for p in _POOLS.values())
