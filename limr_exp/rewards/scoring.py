"""LIMR's rule-based reward (Sec. 3.3 of the paper; as in DeepSeek-R1 and SimpleRL):

    1    the last \\boxed{...} equals the reference answer
    -0.5 a final \\boxed{...} is present but wrong
    -1   a format error: no box, too many boxes, an unterminated or empty box, garbled or endlessly
         repeated text, or a judgement that overran its time budget

Every judgement runs in a worker process (pool.py) that is killed and replaced when it overruns
`timeout_s`, so a call returns within budget from any thread; batches are spread over the workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from limr_exp.rewards.local import reward_of
from limr_exp.rewards.pool import _POOLS, shared_pool
from limr_exp.rewards.settings import RewardSettings

REASONS = ("correct", "wrong", "no_box", "too_many_boxes", "unterminated_box", "empty_box", "garbled", "repetition", "timeout")
_DEFAULT = RewardSettings()


@dataclass(frozen=True)
class Judgement:
    reward: float
    correct: bool
    reason: str  # one of REASONS
    extracted: str | None  # the last boxed answer, when there is one


def _check_types(response, answer) -> None:
    if not isinstance(response, str):
        hint = ": decode bytes first" if isinstance(response, (bytes, bytearray)) else ""
        raise TypeError(f"response must be a str, got {type(response).__name__}{hint}")
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}: pass the reference answer as text, e.g. str(42)")
    if not answer.strip():
        raise ValueError("answer is empty: every problem needs a reference answer")


def _judgement(result: tuple | None, settings: RewardSettings) -> Judgement:
    if result is None:
        return Judgement(reward_of("timeout", settings), False, "timeout", None)
    return Judgement(*result)


def judge_batch(responses: Sequence[str], answers: Sequence[str], settings: RewardSettings | None = None) -> list[Judgement]:
    """Judge every (response, answer) pair, in order, spread over the worker processes."""
    settings = settings or _DEFAULT
    if isinstance(responses, (str, bytes)) or isinstance(answers, (str, bytes)):
        raise TypeError("judge_batch/score_batch take sequences of responses and answers; use judge/math_reward for one")
    if len(responses) != len(answers):
        raise ValueError(f"{len(responses)} responses but {len(answers)} answers: pass one answer per response")
    for r, a in zip(responses, answers):
        _check_types(r, a)
    pool = shared_pool(settings.workers, settings.memory_limit_mb)
    results = pool.run_parallel(settings, [(i, r, a) for i, (r, a) in enumerate(zip(responses, answers))])
    return [_judgement(results.get(i), settings) for i in range(len(responses))]


def judge(response: str, answer: str, settings: RewardSettings | None = None) -> Judgement:
    """The reward of one response, with the extracted answer and the reason; within
    `settings.timeout_s` (waiting for a free worker included) from any thread."""
    settings = settings or _DEFAULT
    _check_types(response, answer)
    deadline = time.monotonic() + settings.timeout_s
    pool = shared_pool(settings.workers, settings.memory_limit_mb)
    return _judgement(pool.run(settings, [(0, response, answer)], deadline=deadline).get(0), settings)


def math_reward(response: str, answer: str, settings: RewardSettings | None = None) -> float:
    """1.0 / -0.5 / -1.0 (LIMR's rule)."""
    return judge(response, answer, settings).reward


def score_batch(responses: Sequence[str], answers: Sequence[str], settings: RewardSettings | None = None) -> list[float]:
    """Rewards of a whole rollout batch, in order."""
    return [j.reward for j in judge_batch(responses, answers, settings)]


def warm_up(settings: RewardSettings | None = None) -> None:
    """Start the worker processes now, so the first judgements don't pay for it."""
    settings = settings or _DEFAULT
    shared_pool(settings.workers, settings.memory_limit_mb).warm_up()


def timeouts() -> int:
    """Judgements that overran their budget in this process (all pools)."""
    return sum(p.timeouts for p in _POOLS.values())
