"""LIMR's rule-based math reward: extraction, format rule, normalisation, equivalence, sandbox.

    math_reward(response, answer) -> 1.0 | -0.5 | -1.0
    score_batch(responses, answers) -> list[float]
    judge(response, answer) -> Judgement(reward, correct, reason, extracted)
"""

from limr_exp.rewards.judge import REASONS, Judgement, judge, judge_batch, math_reward, score_batch, timeouts, warm_up
from limr_exp.rewards.settings import RewardSettings

__all__ = ["REASONS", "Judgement", "RewardSettings", "judge", "judge_batch", "math_reward", "score_batch", "timeouts", "warm_up"]
