"""LIMR's rule-based reward (Sec. 3.3 of the paper; as in DeepSeek-R1 and SimpleRL):

    1    the last \\boxed{...} equals the reference answer
    -0.5 a final \\boxed{...} is present but wrong
    -1   a format error: no box, too many boxes, an unterminated or empty box, garbled or endlessly
         repeated text, or a judgement that overran its time budget

Two outcomes are not verdicts on the response: a problem without a reference answer (empty or None)
scores -1 with reason `no_reference` (no reference, no pay), and an internal error scores -1 with
reason `error`, is counted (`errors()`) and logged, so callers can surface it as `reward/errors`.

Every judgement runs in a worker process (pool.py) that is killed and replaced when it overruns
`timeout_s` of judging time, so a call returns from any thread; batches are spread over the workers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

from limr_exp.rewards.local import reward_of
from limr_exp.rewards.pool import _POOLS, ERROR, shared_pool, shutdown  # noqa: F401  (shutdown: public API)
from limr_exp.rewards.settings import RewardSettings

REASONS = ("correct", "wrong", "no_box", "too_many_boxes", "unterminated_box", "empty_box", "garbled", "repetition",
           "timeout", "no_reference", "error")
_DEFAULT = RewardSettings()
log = logging.getLogger("limr_exp.rewards")


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
    if answer is not None and not isinstance(answer, str):
        raise TypeError(f"answer must be a str or None, got {type(answer).__name__}: pass the reference answer as text, e.g. str(42)")


def has_reference(answer: str | None) -> bool:
    """A reference answer to judge against: not None and not blank."""
    return answer is not None and bool(answer.strip())


def _judgement(result: tuple | None, settings: RewardSettings) -> Judgement:
    if result is None:
        return Judgement(reward_of("timeout", settings), False, "timeout", None)
    if result[0] == ERROR:
        log.warning("reward: internal error, scored as %s: %s", settings.format_error, result[1])
        return Judgement(settings.format_error, False, "error", None)
    return Judgement(*result)


def _no_reference(settings: RewardSettings) -> Judgement:
    return Judgement(settings.format_error, False, "no_reference", None)


def judge_batch(responses: Sequence[str], answers: Sequence[str | None], settings: RewardSettings | None = None) -> list[Judgement]:
    """Judge every (response, answer) pair, in order, spread over the worker processes."""
    settings = settings or _DEFAULT
    if isinstance(responses, (str, bytes)) or isinstance(answers, (str, bytes)):
        raise TypeError("judge_batch/score_batch take sequences of responses and answers; use judge/math_reward for one")
    if len(responses) != len(answers):
        raise ValueError(f"{len(responses)} responses but {len(answers)} answers: pass one answer per response")
    for r, a in zip(responses, answers):
        _check_types(r, a)
    tasks = [(i, r, a) for i, (r, a) in enumerate(zip(responses, answers)) if has_reference(a)]
    results = shared_pool(settings.workers, settings.memory_limit_mb).run_parallel(settings, tasks) if tasks else {}
    return [_judgement(results[i], settings) if i in results else _no_reference(settings) for i in range(len(responses))]


def judge(response: str, answer: str | None, settings: RewardSettings | None = None) -> Judgement:
    """The reward of one response, with the extracted answer and the reason; safe from any thread,
    with at most `settings.timeout_s` of judging time (waiting for a free worker is not charged)."""
    settings = settings or _DEFAULT
    _check_types(response, answer)
    if not has_reference(answer):
        return _no_reference(settings)
    pool = shared_pool(settings.workers, settings.memory_limit_mb)
    return _judgement(pool.run(settings, [(0, response, answer)]).get(0), settings)


def math_reward(response: str, answer: str | None, settings: RewardSettings | None = None) -> float:
    """1.0 / -0.5 / -1.0 (LIMR's rule)."""
    return judge(response, answer, settings).reward


def score_batch(responses: Sequence[str], answers: Sequence[str | None], settings: RewardSettings | None = None) -> list[float]:
    """Rewards of a whole rollout batch, in order."""
    return [j.reward for j in judge_batch(responses, answers, settings)]


def warm_up(settings: RewardSettings | None = None) -> None:
    """Start the worker processes now, so the first judgements don't pay for it."""
    settings = settings or _DEFAULT
    shared_pool(settings.workers, settings.memory_limit_mb).warm_up()


def too_many_errors(n_errors: int, n_judged: int, settings: RewardSettings) -> str | None:
    """A one-line reason to stop training when internal errors exceed `settings.max_error_share` of the
    samples judged (counted over at least 1 / share samples, so a single early error does not stop a run)."""
    share = settings.max_error_share
    floor = math.ceil(1 / share) if share > 0 else 1
    if n_errors <= share * max(n_judged, floor):
        return None
    return (f"the reward judge failed with internal errors on {n_errors} of {n_judged} samples, more than "
            f"reward.max_error_share={share:g}: training stopped rather than fed format-error rewards (see the log for the error)")


def timeouts() -> int:
    """Judgements that overran their budget in this process (all pools)."""
    return sum(p.timeouts for p in _POOLS.values())


def errors() -> int:
    """Internal errors in this process (all pools): a bug reported by a worker, or a worker that died."""
    return sum(p.errors for p in _POOLS.values())
