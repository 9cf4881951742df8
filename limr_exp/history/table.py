"""The reward history as one long-format table, one row per sample (DESIGN.md "Contracts"):

    prompt_id: string   epoch: int32 (1..K)   step: int32   reward: float64   correct: bool

Every trainer writes it, every importer produces it, selectors read only it. In memory it is a History
(numpy columns, prompt ids dictionary-encoded); on disk a Parquet file (read_table / write_table)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from limr_exp.errors import DataError
from limr_exp.io import atomic_path

COLUMNS = ("prompt_id", "epoch", "step", "reward", "correct")


def arrow_schema():
    """The table's Arrow schema (pyarrow is imported only where a table is read or written)."""
    import pyarrow as pa

    return pa.schema([("prompt_id", pa.dictionary(pa.int32(), pa.string())), ("epoch", pa.int32()),
                      ("step", pa.int32()), ("reward", pa.float64()), ("correct", pa.bool_())])


@dataclass
class History:
    """The trajectories table in memory: numpy columns, `prompt_id` dictionary-encoded
    (`codes` index into `prompt_ids`)."""

    prompt_ids: list[str]
    codes: np.ndarray
    epoch: np.ndarray
    step: np.ndarray
    reward: np.ndarray
    correct: np.ndarray

    @classmethod
    def build(cls, prompt_ids: Sequence[str], codes, epoch, step, reward, correct=None) -> "History":
        reward = np.asarray(reward, dtype=np.float64)
        correct = reward == 1.0 if correct is None else np.asarray(correct, dtype=bool)
        return cls(list(prompt_ids), np.asarray(codes, np.int32), np.asarray(epoch, np.int32),
                   np.asarray(step, np.int32), reward, correct)

    @property
    def num_rows(self) -> int:
        return len(self.reward)

    def to_arrow(self):
        import pyarrow as pa

        from limr_exp.arrow import bool_array, dictionary_array, numeric_array

        return pa.Table.from_arrays(
            [dictionary_array(self.codes, self.prompt_ids), numeric_array(self.epoch), numeric_array(self.step),
             numeric_array(self.reward), bool_array(self.correct)], schema=arrow_schema())

    @classmethod
    def from_arrow(cls, table) -> "History":
        import pyarrow as pa
        import pyarrow.compute as pc

        pid = table["prompt_id"].combine_chunks()
        if not pa.types.is_dictionary(pid.type):
            pid = pc.dictionary_encode(pid)
        col = lambda name: table[name].combine_chunks().to_numpy(zero_copy_only=False)  # noqa: E731
        return cls.build(pid.dictionary.to_pylist(), pid.indices.to_numpy(zero_copy_only=False), col("epoch"),
                         col("step"), col("reward"), col("correct"))

    def concat(self, other: "History") -> "History":
        """Rows of both; `other`'s ids are re-coded into this dictionary."""
        ids = list(self.prompt_ids)
        index = {p: i for i, p in enumerate(ids)}
        for p in other.prompt_ids:
            if p not in index:
                index[p] = len(ids)
                ids.append(p)
        remap = np.array([index[p] for p in other.prompt_ids], dtype=np.int32)
        other_codes = remap[other.codes] if len(other.codes) else other.codes
        return History.build(ids, np.concatenate([self.codes, other_codes]), np.concatenate([self.epoch, other.epoch]),
                             np.concatenate([self.step, other.step]), np.concatenate([self.reward, other.reward]),
                             np.concatenate([self.correct, other.correct]))


def write_table(history: History, path: str | os.PathLike) -> None:
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(history.to_arrow(), tmp)


INT32_MAX = 2**31 - 1


def read_table(path: str | os.PathLike, max_epochs: int | None = None) -> History:
    """A trajectories Parquet table (or a folder of them), checked against the contract."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as e:
        raise DataError(f"trajectories.path={path} is not a readable Parquet table ({type(e).__name__}: {e})") from None
    if "correct" not in table.column_names and "reward" in table.column_names:
        table = table.append_column("correct", pc.equal(table["reward"], 1.0))
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"trajectories.path={path} lacks columns {missing}: a trajectories table has {', '.join(COLUMNS)}")
    for column in ("epoch", "step"):  # read at their own width and checked, never wrapped into int32
        values = table[column]
        if pa.types.is_integer(values.type) and len(values) and values.null_count < len(values):
            low, high = pc.min_max(values).values()
            if low.as_py() < 0 or high.as_py() > INT32_MAX:
                bad = low.as_py() if low.as_py() < 0 else high.as_py()
                raise DataError(f"trajectories.path={path}: {column} {bad} is out of range (a {column} is a count from "
                                f"0 to {INT32_MAX}): fix the table's {column} column")
    try:
        history = History.from_arrow(table)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, TypeError) as e:
        raise DataError(f"trajectories.path={path} has a column of the wrong type ({e})") from None
    if max_epochs is not None and history.num_rows:
        keep = history.epoch < history.epoch.min() + max_epochs
        history = History.build(history.prompt_ids, history.codes[keep], history.epoch[keep], history.step[keep],
                                history.reward[keep], history.correct[keep])
    return history
