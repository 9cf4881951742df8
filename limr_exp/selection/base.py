"""Selector protocol and registry. Selectors read only the reward history (the trajectories table)
and the problem set; they never import torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import numpy as np

from limr_exp.config import SelectorConfig, require
from limr_exp.data.problems import ProblemSet, text_key
from limr_exp.history import AccuracyCurves
from limr_exp.registry import Registry


@dataclass
class SelectionContext:
    problems: ProblemSet
    theta: float
    seed: int
    selector_cfg: Any
    history: Any = None  # trajectories.History, when the selector needs one
    _curves: AccuracyCurves | None = field(default=None, repr=False)

    @property
    def curves(self) -> AccuracyCurves:
        if self._curves is None:
            if self.history is None:
                raise RuntimeError("this selector needs a reward history")
            self._curves = AccuracyCurves.from_history(self.history)
        return self._curves


@dataclass
class SelectionResult:
    """Per problem (in dataset order): a score (NaN = unscored) and whether it is selected."""

    ids: list[str]
    scores: np.ndarray
    selected: np.ndarray
    curve_scores: np.ndarray | None = None  # scores aligned with context.curves rows, for plots

    @property
    def n_selected(self) -> int:
        return int(self.selected.sum())

    @property
    def n_scored(self) -> int:
        return int((~np.isnan(self.scores)).sum())


@dataclass
class SizedSelectorConfig(SelectorConfig):
    """Selectors that take a size (random, variance, learnability)."""

    size: Optional[int] = None  # random: subset size (default: as many as lim keeps at theta); variance/learnability: top-k


def check_size(cfg) -> None:
    size = cfg.selector.get("size")
    require(size is None or size >= 1, f"selector.size={size} must be a positive number of prompts (or null)")


class Selector:
    """Turns a reward history into a subset. Subclasses set `name` and implement `select`; one with settings
    of its own sets `config_schema` (what its YAML extends) and `check_config(cfg)` (its start-up checks)."""

    name: ClassVar[str]
    uses_history: ClassVar[bool] = True
    config_schema: ClassVar[type | None] = None
    check_config: ClassVar[Callable | None] = None

    def __init__(self, cfg: Any):
        self.cfg = cfg

    def needs_history(self) -> bool:
        return self.uses_history

    def select(self, ctx: SelectionContext) -> SelectionResult:
        raise NotImplementedError


SELECTORS: Registry[type[Selector]] = Registry("selector", "selector")


def register(cls: type[Selector]) -> type[Selector]:
    return SELECTORS.register(cls.name, schema=cls.config_schema, check=cls.check_config)(cls)


def scores_for_problems(problems: ProblemSet, history_ids: list[str], history_scores: np.ndarray) -> np.ndarray:
    """Scores keyed by history id -> one per problem row. A row whose id the history lacks takes the
    score of a row with the same prompt text (a text that occurs twice is selected twice, as LIMR does)."""
    by_id = dict(zip(history_ids, history_scores.tolist()))
    out = np.full(len(problems), np.nan)
    twins: dict[str, float] | None = None
    for i, row in enumerate(problems.rows):
        s = by_id.get(row["id"])
        if s is None:
            if twins is None:
                twins = {}
                for r in problems.rows:
                    v = by_id.get(r["id"])
                    if v is not None and not np.isnan(v):
                        twins.setdefault(text_key(r["prompt"]), v)
            s = twins.get(text_key(row["prompt"]))
        if s is not None:
            out[i] = s
    return out


def threshold(problems: ProblemSet, scores: np.ndarray, theta: float, curve_scores=None) -> SelectionResult:
    """Selected when score >= theta (>=, not >: LIMR's published scores give 1,389 at 0.6)."""
    with np.errstate(invalid="ignore"):
        selected = ~np.isnan(scores) & (scores >= theta)
    return SelectionResult(problems.ids, scores, selected, curve_scores)


def top_k(problems: ProblemSet, scores: np.ndarray, k: int, curve_scores=None) -> SelectionResult:
    """The k highest scores (ties broken by dataset order); unscored prompts never selected."""
    order = np.argsort(np.where(np.isnan(scores), -np.inf, -scores), kind="stable")
    selected = np.zeros(len(scores), dtype=bool)
    chosen = [i for i in order[:k] if not np.isnan(scores[i])]
    selected[chosen] = True
    return SelectionResult(problems.ids, scores, selected, curve_scores)
