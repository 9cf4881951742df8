"""The history a run reads: the `trajectories` config block -> one History, from whichever importer its
format names (auto: found from the folder's files), checked for values and coverage."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from limr_exp.errors import DataError
from limr_exp.history.dumps import STEP_DUMP_RE, VERL_RE, import_numbered_dumps
from limr_exp.history.table import History, read_table
from limr_exp.registry import Registry


def history_format(path: Path) -> str:
    if path.is_file() or path.suffix == ".parquet":
        return "table"
    with os.scandir(path) as it:
        names = [e.name for e in it]
    if any(STEP_DUMP_RE.match(n) for n in names):
        return "step_dumps"
    if any(VERL_RE.match(n) for n in names):
        return "verl"
    if any(n.endswith(".parquet") for n in names):
        return "table"
    raise DataError(f"trajectories.path={path} holds neither step_{{n}}.json dumps, verl {{step}}.jsonl dumps nor a "
                    ".parquet table: point it at one, or set trajectories.format")


IMPORTERS: Registry = Registry("trajectories format", "trajectories.format (or auto)")  # (path, cfg, text_to_id, workers)
IMPORTERS.register("table")(lambda path, cfg, text_to_id, workers: read_table(path, cfg.max_epochs))
for _kind in ("step_dumps", "verl"):
    IMPORTERS.register(_kind)(lambda path, cfg, text_to_id, workers, kind=_kind: import_numbered_dumps(
        path, kind, cfg.steps_per_epoch, cfg.max_epochs, text_to_id, cfg.prompt_regex, workers))


def load_history(traj_cfg, text_to_id: dict[str, str], workers: int | None = None) -> History:
    """The reward history named by the `trajectories` config block."""
    path = Path(os.path.expanduser(str(traj_cfg.path)))
    if not path.exists():
        raise DataError(f"trajectories.path={path} does not exist: point it at a step-dump folder, a verl rollout folder "
                        "or a trajectories .parquet file")
    if not (path.is_dir() or path.is_file()):
        raise DataError(f"trajectories.path={path} is neither a folder nor a regular file: point it at a step-dump folder, "
                        "a verl rollout folder or a trajectories .parquet file")
    fmt = history_format(path) if traj_cfg.format == "auto" else traj_cfg.format
    table = IMPORTERS.get(fmt)(path, traj_cfg, text_to_id, workers)
    if table.num_rows == 0:
        raise DataError(f"trajectories.path={path} holds no samples")
    check_values(table, path)
    check_coverage(table, set(text_to_id.values()), traj_cfg.min_match_share, path)
    return table


def check_values(history: History, path) -> None:
    """Rewards are numbers and epochs run 1, 2, ..., K without gaps: checked before anything is sized by them."""
    if np.isnan(history.reward).any():
        raise DataError(f"trajectories.path={path} has {int(np.isnan(history.reward).sum())} NaN rewards: every sample needs "
                        "a numeric reward (LIMR's rule gives 1, -0.5 or -1)")
    first, last = int(history.epoch.min()), int(history.epoch.max())
    # a count per epoch (no sort), sized by the range only once the range is known to fit in the rows
    gapped = first < 1 or last - first >= history.num_rows or not np.bincount(history.epoch - first).all()
    if gapped:
        epochs = np.unique(history.epoch)
        shown = ", ".join(map(str, epochs[:6].tolist())) + (" ..." if len(epochs) > 6 else "")
        raise DataError(f"trajectories.path={path} has epochs {shown}: epochs must be positive and follow one another without gaps")


def check_coverage(history: History, dataset_ids: set[str], min_share: float, path) -> None:
    """A history that matches no prompt of the dataset, or fewer than `min_share` of them, is a mistake
    (another dataset's logs, or inputs whose problem text was not found), not an empty selection."""
    if not dataset_ids:
        return
    matched = len(dataset_ids.intersection(history.prompt_ids))
    if matched == 0 or matched < min_share * len(dataset_ids):
        raise DataError(f"trajectories.path={path} matches {matched} of the dataset's {len(dataset_ids)} prompts "
                        f"({100 * matched / len(dataset_ids):.0f}%), below trajectories.min_match_share={min_share:g}: "
                        "check that the history belongs to this dataset; for templated inputs whose problem text is "
                        "not found, set trajectories.prompt_regex (group 1 = the problem)")
