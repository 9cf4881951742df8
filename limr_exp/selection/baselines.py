"""Baselines: the full set, a seeded random subset, and scores read from a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from limr_exp.config import SelectorConfig, require, require_existing
from limr_exp.data.problems import text_key
from limr_exp.errors import ConfigError, DataError
from limr_exp.selection.base import SelectionContext, SelectionResult, Selector, SizedSelectorConfig, check_size, register, threshold
from limr_exp.selection.lim import LIMSelector


@register
class FullSelector(Selector):
    """Every prompt (RL on the full set)."""

    name = "full"
    uses_history = False

    def select(self, ctx: SelectionContext) -> SelectionResult:
        n = len(ctx.problems)
        return SelectionResult(ctx.problems.ids, np.full(n, np.nan), np.ones(n, dtype=bool))


@register
class RandomSelector(Selector):
    """RAND: `selector.size` prompts drawn with the run's seed; by default as many as LIM keeps at the same theta."""

    name = "random"
    config_schema = SizedSelectorConfig
    check_config = staticmethod(check_size)

    def needs_history(self) -> bool:
        return self.cfg.size is None

    def select(self, ctx: SelectionContext) -> SelectionResult:
        n = len(ctx.problems)
        size = int(self.cfg.size) if self.cfg.size is not None else LIMSelector(self.cfg).select(ctx).n_selected
        if size > n:
            raise ConfigError(f"selector.size={size} is larger than the dataset ({n} prompts)")
        rng = np.random.default_rng(ctx.seed)
        selected = np.zeros(n, dtype=bool)
        selected[rng.choice(n, size=size, replace=False)] = True
        return SelectionResult(ctx.problems.ids, np.full(n, np.nan), selected)


def read_scores_file(path: str | Path) -> tuple[str, list, np.ndarray]:
    """('prompt' | 'prompt_id', keys, scores) from LIMR's [{prompt, score}] json or a csv/parquet/json table."""
    import pandas as pd

    from limr_exp.data.problems import read_records

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".json", ".jsonl", ".parquet"):
            frame = pd.DataFrame.from_records(read_records(path, what="selector.scores_path"))
        else:
            raise DataError(f"selector.scores_path={path}: use a .json, .jsonl, .csv or .parquet file")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"selector.scores_path={path} is not a readable table ({e})") from None
    if frame.empty:
        raise DataError(f"selector.scores_path={path} is empty")
    key = "prompt_id" if "prompt_id" in frame.columns else "prompt" if "prompt" in frame.columns else None
    if key is None or "score" not in frame.columns:
        raise DataError(f"selector.scores_path={path} needs columns (prompt, score) or (prompt_id, score); it has {list(frame.columns)}")
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=np.float64)
    return key, frame[key].astype(str).tolist(), scores


@dataclass
class PrecomputedSelectorConfig(SelectorConfig):
    scores_path: Optional[str] = None  # LIMR's [{prompt, score}] json, or csv/parquet (prompt_id, score)


@register
class PrecomputedSelector(Selector):
    """Scores from a file (e.g. LIMR's published lim_scores.json), selected at score >= theta.
    Text-keyed scores apply to every row with that prompt text."""

    name = "precomputed"
    config_schema = PrecomputedSelectorConfig

    @staticmethod
    def check_config(cfg) -> None:
        path = cfg.selector.scores_path
        require(path is not None, "selector=precomputed needs selector.scores_path=<scores .json|.csv|.parquet>")
        require_existing(cfg, path, "selector.scores_path", "")
    uses_history = False

    def select(self, ctx: SelectionContext) -> SelectionResult:
        key, keys, values = read_scores_file(self.cfg.scores_path)
        problems = ctx.problems
        scores = np.full(len(problems), np.nan)
        if key == "prompt":
            lookup = {text_key(k): v for k, v in zip(keys, values)}
            for i, row in enumerate(problems.rows):
                scores[i] = lookup.get(text_key(row["prompt"]), np.nan)
        else:
            lookup = dict(zip(keys, values))
            for i, row in enumerate(problems.rows):
                scores[i] = lookup.get(row["id"], np.nan)
        if np.isnan(scores).all():
            raise DataError(f"selector.scores_path={self.cfg.scores_path}: no {key} in it matches the dataset; "
                            "is it the scores file for this dataset?")
        return threshold(problems, scores, ctx.theta)
