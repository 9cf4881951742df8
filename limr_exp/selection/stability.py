"""When has a probe run told LIM all it will? The selection after each probe epoch, and the epoch from
which consecutive selections agree (`probe.stop_when_stable`).

LIM (LIMR Eq. 2) on the first k epochs of a history gives a subset S_k. The probe may stop after epoch k
when J(S_{j-1}, S_j) >= `threshold` for the last `patience` epochs j <= k (J: Jaccard, |A n B| / |A u B|):
more epochs would not move the subset much, and each one costs a pass over the whole training set.

Agreement alone is fooled by a short history: while the mean curve is low, a never-solved prompt scores
1 - sum (abar^k)^2 / sum (1 - abar^k)^2 >= theta (DESIGN.md), so every early subset holds the prompts the
model cannot learn, and they agree with each other. A subset counts as settled only once that score has
fallen below theta; an agreement with an unsettled subset counts as none (0).
"""

from __future__ import annotations

import numpy as np

from limr_exp.data.problems import ProblemSet
from limr_exp.history import History
from limr_exp.selection.base import SELECTORS, SelectionContext


def jaccard(a: set, b: set) -> float:
    """|A n B| / |A u B|; two empty sets agree."""
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def first_epochs(history: History, k: int) -> History:
    """The rows of the history's first k epochs."""
    keep = history.epoch < history.epoch.min() + k
    return History.build(history.prompt_ids, history.codes[keep], history.epoch[keep], history.step[keep],
                         history.reward[keep], history.correct[keep])


def selection_after(history: History, problems: ProblemSet, theta: float, selector_cfg, seed: int = 0) -> tuple[set[str], bool]:
    """(the ids the configured selector picks from this history, whether that subset can be trusted: for
    LIM and LINEAR, a never-solved prompt no longer scores >= theta)."""
    from limr_exp.history import never_solved_score

    selector = SELECTORS.get(selector_cfg.name)(selector_cfg)
    context = SelectionContext(problems, theta, seed, selector_cfg, history)
    result = selector.select(context)
    settled = selector_cfg.name not in ("lim", "linear") or not never_solved_score(context.curves.mean) >= theta
    return set(np.asarray(result.ids)[result.selected].tolist()), settled


def agreement(earlier: tuple[set, bool], later: tuple[set, bool]) -> float:
    """J of two consecutive subsets, 0 when either is not settled yet."""
    return jaccard(earlier[0], later[0]) if earlier[1] and later[1] else 0.0


def is_stable(agreements: list[float], threshold: float, patience: int) -> bool:
    """The last `patience` epoch-to-epoch agreements all reach `threshold`."""
    return len(agreements) >= patience and all(a >= threshold for a in agreements[-patience:])


def stability_curve(history: History, problems: ProblemSet, theta: float, selector_cfg, seed: int = 0) -> list[float]:
    """J(S_{k-1}, S_k) for k = 2..K over a finished history (offline: where a probe would have stopped)."""
    epochs = int(history.epoch.max() - history.epoch.min() + 1) if history.num_rows else 0
    selections = [selection_after(first_epochs(history, k), problems, theta, selector_cfg, seed) for k in range(1, epochs + 1)]
    return [agreement(a, b) for a, b in zip(selections, selections[1:])]


def stop_epoch(agreements: list[float], threshold: float, patience: int) -> int | None:
    """The first epoch after which a probe stops (agreements[i] compares epochs i+1 and i+2), or None."""
    for i in range(len(agreements)):
        if is_stable(agreements[:i + 1], threshold, patience):
            return i + 2
    return None
