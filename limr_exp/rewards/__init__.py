"""LIMR's rule-based math reward: extraction, format rule, normalisation, equivalence, sandbox.

    math_reward(response, answer) -> 1.0 | -0.5 | -1.0
    score_batch(responses, answers) -> list[float]
    judge(response, answer) -> Judgement(reward, correct, reason, extracted)

The judge is imported on first use, so importing the settings (as the config schema does) stays cheap.
"""

from limr_exp.rewards.settings import RewardSettings

_JUDGE_NAMES = ("REASONS", "Judgement", "errors", "has_reference", "judge", "judge_batch", "math_reward", "score_batch", "shutdown", "timeouts",  # noqa: E501
               "too_many_errors",
               "warm_up")
__all__ = ["RewardSettings", *_JUDGE_NAMES]


def __getattr__(name: str):
    if name in _JUDGE_NAMES:
        import importlib

        return getattr(importlib.import_module("limr_exp.rewards.scoring"), name)
    raise AttributeError(f"module 'limr_exp.rewards' has no attribute {name!r}")
