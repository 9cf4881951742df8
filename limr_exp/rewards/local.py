"""One judgement, in this process and without a time bound: format rule, then equivalence.
The public API (judge.py) runs this inside worker processes that enforce the budget."""

from __future__ import annotations

from limr_exp.rewards.equivalence import equal
from limr_exp.rewards.extract import format_problem
from limr_exp.rewards.settings import RewardSettings


def reward_of(reason: str, settings: RewardSettings) -> float:
    return settings.correct if reason == "correct" else settings.wrong if reason == "wrong" else settings.format_error


def judge_local(response: str, answer: str, settings: RewardSettings) -> tuple[float, bool, str, str | None]:
    """(reward, correct, reason, extracted answer)."""
    extracted, problem = format_problem(response, settings)
    if problem is not None:
        reason = problem
    else:
        reason = "correct" if equal(answer, extracted) else "wrong"
    return reward_of(reason, settings), reason == "correct", reason, extracted
