"""Learning Impact Measurement (LIMR, Sec. 3.2, Eq. 2) and its linear-baseline variant."""

from __future__ import annotations

import numpy as np

from limr_exp.selection.base import SelectionContext, SelectionResult, Selector, register, scores_for_problems, threshold


def lim_scores(acc: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """s_i = 1 - sum_k (a_i^k - b^k)^2 / sum_k (1 - b^k)^2 for each row of `acc` (P x K)."""
    numerator = ((acc - baseline[None, :]) ** 2).sum(axis=1)
    denominator = ((1.0 - baseline) ** 2).sum()
    if denominator == 0:  # every scored prompt always solved: no prompt has anything left to learn
        return np.where(numerator == 0, 1.0, -np.inf)
    return 1.0 - numerator / denominator


def linear_baseline(mean: np.ndarray) -> np.ndarray:
    """Least-squares straight line through the mean accuracy curve, clipped to [0, 1]."""
    k = np.arange(1, len(mean) + 1, dtype=np.float64)
    if len(mean) == 1:
        return np.clip(mean, 0.0, 1.0)
    slope, intercept = np.polyfit(k, mean, 1)
    return np.clip(intercept + slope * k, 0.0, 1.0)


@register
class LIMSelector(Selector):
    """Prompts whose accuracy curve follows the model's overall learning trajectory (s_i >= theta).

    Exactly the released selection script: a_i^k = share of epoch-k samples with reward == 1,
    one-epoch gaps filled from the next epoch, prompts still missing an epoch unscored, and ā^k the
    mean over scored prompts only.
    """

    name = "lim"

    def baseline(self, ctx: SelectionContext) -> np.ndarray:
        return ctx.curves.mean

    def curve_scores(self, ctx: SelectionContext) -> np.ndarray:
        c = ctx.curves
        s = np.full(len(c.prompt_ids), np.nan)
        if c.scored.any():
            s[c.scored] = lim_scores(c.acc[c.scored], self.baseline(ctx))
        return s

    def select(self, ctx: SelectionContext) -> SelectionResult:
        cs = self.curve_scores(ctx)
        return threshold(ctx.problems, scores_for_problems(ctx.problems, ctx.curves.prompt_ids, cs), ctx.theta, cs)


@register
class LinearSelector(LIMSelector):
    """LIM against the least-squares line of the mean curve instead of the curve itself."""

    name = "linear"

    def baseline(self, ctx: SelectionContext) -> np.ndarray:
        return linear_baseline(ctx.curves.mean)
