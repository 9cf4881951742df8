"""LIMR's rule-based reward (Sec. 3.3 of the paper; as in DeepSeek-R1 and SimpleRL):

    1    the last \\boxed{...} equals the reference answer
    -0.5 a final \\boxed{...} is present but wrong
    -1   a format error: no box, too many boxes, an unterminated or empty box, garbled or endlessly
         repeated text, no end token where one is required (`require_end_token`: cut at the token
         limit, as LIMR's RM server scores it), or a judgement that overran its time budget

Only the text before the first end token is judged (LIMR's RM server, `serve_rm.py`).

Two outcomes are not verdicts on the response: a problem without a reference answer (empty or None)
scores -1 with reason `no_reference` (no reference, no pay), and an internal error scores -1 with
reason `error`, is counted (`errors()`) and logged, so callers can surface it as `reward/errors`.

What the caller can decide is decided in the caller's own thread and never waits for a worker: format
errors and the verdicts the fast paths prove (`equivalence.fast_verdict`, pure Python on short strings).
Everything else runs in a worker process (pool.py, first come first served) that is killed and replaced
when it overruns `timeout_s` of judging time, so a call returns from any thread; batches are spread
over the workers.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Sequence

from limr_exp.rewards.equivalence import fast_verdict
from limr_exp.rewards.extract import BOX_RE, end_of_response, format_problem
from limr_exp.rewards.local import reward_of
from limr_exp.rewards.pool import _POOLS, ERROR, shared_pool, shutdown  # noqa: F401  (shutdown: public API)
from limr_exp.rewards.settings import RewardSettings

REASONS = ("correct", "wrong", "no_box", "too_many_boxes", "unterminated_box", "empty_box", "garbled", "repetition",
           "no_end_token", "timeout", "no_reference", "error")
# the caller decides by itself only on inputs this small (its checks are linear, but have no time budget)
_CALLER_MAX_RESPONSE = 200_000
_CALLER_MAX_ANSWER = 300
# a batch larger than this many per worker is judged in the workers, which run in parallel where the
# caller's thread cannot: only what a glance decides (no reference, no end token, no box) stays here
_CALLER_BATCH_PER_WORKER = 4
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


def _decide_here(response: str, answer: str, settings: RewardSettings) -> Judgement | None:
    """The judgement when the caller can reach it without a worker: a format error, or a verdict that a
    fast path proves; None when it needs Math-Verify (or the input is too large to judge unbounded)."""
    if len(response) > _CALLER_MAX_RESPONSE:
        return None
    try:
        extracted, problem = format_problem(response, settings)
        if problem is not None:
            return Judgement(reward_of(problem, settings), False, problem, extracted)
        if len(extracted) > _CALLER_MAX_ANSWER or len(answer) > _CALLER_MAX_ANSWER:
            return None
        verdict = fast_verdict(answer, extracted, light=True)
    except Exception:  # the worker judges it again, and reports the error as one
        return None
    if verdict is None:
        return None
    reason = "correct" if verdict else "wrong"
    return Judgement(reward_of(reason, settings), verdict, reason, extracted)


def judge_batch(responses: Sequence[str], answers: Sequence[str | None], settings: RewardSettings | None = None,
                ended: Sequence[bool] | None = None) -> list[Judgement]:
    """Judge every (response, answer) pair, in order: what the caller can decide here, the rest spread
    over the worker processes. `ended[i]`: generation i stopped at an end token (None: read the text)."""
    settings = settings or _DEFAULT
    if isinstance(responses, (str, bytes)) or isinstance(answers, (str, bytes)):
        raise TypeError("judge_batch/score_batch take sequences of responses and answers; use judge/math_reward for one")
    if len(responses) != len(answers) or (ended is not None and len(ended) != len(responses)):
        raise ValueError(f"{len(responses)} responses but {len(answers)} answers"
                         f"{'' if ended is None else f' and {len(ended)} ended flags'}: pass one answer per response")
    for r, a in zip(responses, answers):
        _check_types(r, a)
    pool = shared_pool(settings.workers, settings.memory_limit_mb)
    decide_here = len(responses) <= _CALLER_BATCH_PER_WORKER * pool.n_workers
    out: list[Judgement | None] = [None] * len(responses)
    tasks = []
    for i, (response, answer) in enumerate(zip(responses, answers)):
        if not has_reference(answer):
            out[i] = _no_reference(settings)
            continue
        text, problem = end_of_response(response, settings, None if ended is None else bool(ended[i]))
        if problem is None and BOX_RE.search(text) is None:
            problem = "no_box"
        if problem is not None:
            out[i] = Judgement(reward_of(problem, settings), False, problem, None)
            continue
        out[i] = _decide_here(text, answer, settings) if decide_here else None
        if out[i] is None:
            tasks.append((i, text, answer))
    if tasks:
        results = pool.run_parallel(settings, tasks) if len(tasks) > 1 else pool.run(settings, tasks)
        for i, _, _ in tasks:
            out[i] = _judgement(results.get(i), settings)
    return out


def judge(response: str, answer: str | None, settings: RewardSettings | None = None, ended: bool | None = None) -> Judgement:
    """The reward of one response, with the extracted answer and the reason; safe from any thread. Format
    errors and provable verdicts come back at once; the rest gets at most `settings.timeout_s` of judging
    time in a worker (waiting for a free worker, first come first served, is not charged)."""
    _check_types(response, answer)
    return judge_batch([response], [answer], settings, None if ended is None else [ended])[0]


def math_reward(response: str, answer: str | None, settings: RewardSettings | None = None) -> float:
    """1.0 / -0.5 / -1.0 (LIMR's rule)."""
    return judge(response, answer, settings).reward


def score_batch(responses: Sequence[str], answers: Sequence[str | None], settings: RewardSettings | None = None) -> list[float]:
    """Rewards of a whole rollout batch, in order."""
    return [j.reward for j in judge_batch(responses, answers, settings)]


def warm_up(settings: RewardSettings | None = None, wait: bool = True) -> None:
    """Start the worker processes now, so the first judgements don't pay for it; `wait=False` starts
    them in a background thread and returns at once (off the caller's path: a reward function loaded
    by an engine, a trainer at start)."""
    settings = settings or _DEFAULT
    pool = shared_pool(settings.workers, settings.memory_limit_mb)
    if wait:
        pool.warm_up()
        return

    def start():
        try:
            pool.warm_up()
        except Exception as e:  # the first judgement that needs a worker raises it again, where it is seen
            if not pool._closed:  # (a pool shut down meanwhile has nothing to report)
                log.warning("reward: starting the verifier processes in the background failed: %s", e)

    threading.Thread(target=start, name="limr-judge-warm-up", daemon=True).start()


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
