"""Further selectors computed from the same reward history."""

from __future__ import annotations

import numpy as np

from limr_exp.selection.base import (
    SelectionContext,
    SelectionResult,
    Selector,
    SizedSelectorConfig,
    check_size,
    register,
    scores_for_problems,
    threshold,
    top_k,
)


class _CurveStatisticSelector(Selector):
    """Score = a statistic of each prompt's accuracy curve; keep the top `selector.size`, or score >= theta."""

    config_schema = SizedSelectorConfig
    check_config = staticmethod(check_size)

    def statistic(self, acc: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def select(self, ctx: SelectionContext) -> SelectionResult:
        c = ctx.curves
        cs = np.full(len(c.prompt_ids), np.nan)
        if c.scored.any():
            cs[c.scored] = self.statistic(c.acc[c.scored])
        scores = scores_for_problems(ctx.problems, c.prompt_ids, cs)
        if self.cfg.size is not None:
            return top_k(ctx.problems, scores, int(self.cfg.size), cs)
        return threshold(ctx.problems, scores, ctx.theta, cs)


@register
class VarianceSelector(_CurveStatisticSelector):
    """Historical variance (One-shot RLVR, Wang et al. 2025): std over epochs of a_i^k."""

    name = "variance"

    def statistic(self, acc: np.ndarray) -> np.ndarray:
        return acc.std(axis=1)


@register
class LearnabilitySelector(_CurveStatisticSelector):
    """Learnability: mean over epochs of 4 p (1 - p), p = a_i^k; 1 for a prompt solved half the time."""

    name = "learnability"

    def statistic(self, acc: np.ndarray) -> np.ndarray:
        return (4.0 * acc * (1.0 - acc)).mean(axis=1)
