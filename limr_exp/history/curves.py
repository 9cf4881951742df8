"""Per-prompt accuracy curves from a History (LIMR Sec. 2.2: a_i^k, the share of prompt i's samples that
are correct in epoch k, and the mean curve) and Figure 2a's groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from limr_exp.history.table import History


@dataclass
class AccuracyCurves:
    """Per-prompt accuracy a_i^k over epochs, after LIMR's gap rule (DESIGN.md "LIM, exactly").

    `acc` is P x K; NaN where a prompt is still missing an epoch after one-epoch gaps are filled
    from the next epoch. `scored` marks prompts with a full curve; `mean` is ā^k over scored prompts.
    """

    prompt_ids: list[str]
    epochs: np.ndarray
    acc: np.ndarray
    scored: np.ndarray
    mean: np.ndarray

    @classmethod
    def from_history(cls, history: History) -> "AccuracyCurves":
        ids = history.prompt_ids
        first, last = int(history.epoch.min()), int(history.epoch.max())
        k = last - first + 1
        key = history.codes.astype(np.intp)  # prompt code * K + epoch offset, built in place
        key *= k
        key += history.epoch
        key -= first
        n_correct = np.bincount(key[history.correct], minlength=len(ids) * k).reshape(len(ids), k)
        n_total = np.bincount(key, minlength=len(ids) * k).reshape(len(ids), k)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc0 = np.where(n_total > 0, n_correct / np.maximum(n_total, 1), np.nan)
        present = n_total.sum(axis=1) > 0  # dictionary entries with no rows are dropped
        acc0 = acc0[present]
        ids = [i for i, p in zip(ids, present) if p]
        acc = acc0.copy()
        if k > 1:  # one-epoch gaps take the next epoch's accuracy (from the unfilled curve, left to right)
            fill = np.isnan(acc0[:, :-1]) & ~np.isnan(acc0[:, 1:])
            acc[:, :-1][fill] = acc0[:, 1:][fill]
        scored = ~np.isnan(acc).any(axis=1)
        mean = acc[scored].mean(axis=0) if scored.any() else np.full(k, np.nan)
        return cls(ids, np.arange(first, last + 1), acc, scored, mean)


def never_solved_score(mean: np.ndarray) -> float:
    """LIM's score of a prompt that is never solved: 1 - sum(mean^2) / sum((1 - mean)^2). When the mean
    curve stays low this is >= theta, and LIM keeps prompts the model cannot learn (a probe too short)."""
    denominator = float(np.sum((1.0 - mean) ** 2))
    return 1.0 - float(np.sum(mean ** 2)) / denominator if denominator > 0 else float("nan")


def curve_groups(acc: np.ndarray) -> dict[str, np.ndarray]:
    """Figure 2a's groups of accuracy curves (rows of `acc`): stay at 0, start >= 0.9, improve by >= 0.25."""
    return {"stay at 0": acc.max(axis=1) == 0, "start ≥ 0.9": acc[:, 0] >= 0.9,
            "improve by ≥ 0.25": acc[:, -1] - acc[:, 0] >= 0.25}


def curve_summary(curves: AccuracyCurves) -> dict:
    """Figure 2a's groups: shares of prompts that stay at 0, start >= 0.9, and improve (last epoch >= first
    + 0.25); the mean curve's ends; and the score a never-solved prompt gets."""
    acc = curves.acc[curves.scored]
    if len(acc) == 0:
        return {"curves/prompts": 0}
    groups = curve_groups(acc)
    return {"curves/prompts": int(len(acc)), "curves/epochs": int(acc.shape[1]),
            "curves/share_stay_zero": float(groups["stay at 0"].mean()),
            "curves/share_start_high": float(groups["start ≥ 0.9"].mean()),
            "curves/share_improve": float(groups["improve by ≥ 0.25"].mean()),
            "curves/mean_accuracy_first": float(acc[:, 0].mean()), "curves/mean_accuracy_last": float(acc[:, -1].mean()),
            "curves/never_solved_score": never_solved_score(curves.mean)}


# ---------------------------------------------------------------- OpenRLHF reward records
