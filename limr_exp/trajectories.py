"""Reward history: one long-format table, one row per sample (DESIGN.md "Contracts").

    prompt_id: string   epoch: int32 (1..K)   step: int32   reward: float64   correct: bool

Every trainer writes it, every importer produces it, selectors read only it. Importers:
  - LIMR/OpenRLHF step dumps: a folder of `step_{n}.json`, each a list of `{prompt, response, reward, ...}`;
    consecutive groups of `steps_per_epoch` files are one epoch, only the first `max_epochs` count,
    `correct` is `reward == 1` (the released LIMR selection script's rule);
  - verl rollout dumps (`trainer.rollout_data_dir`): `{step}.jsonl` lines with `input`, `output`, `score`;
  - the Parquet table itself.
Importers stream file by file, so memory grows with the number of samples, not the JSON's size.
Prompts are matched to the problem set by their (stripped) text; texts the set lacks keep an
`unmatched-…` id: they still count towards LIM's mean curve, as in the released script, but can't be selected.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from limr_exp.errors import DataError
from limr_exp.io import atomic_path

log = logging.getLogger(__name__)

COLUMNS = ("prompt_id", "epoch", "step", "reward", "correct")
SCHEMA = pa.schema([
    ("prompt_id", pa.dictionary(pa.int32(), pa.string())),
    ("epoch", pa.int32()),
    ("step", pa.int32()),
    ("reward", pa.float64()),
    ("correct", pa.bool_()),
])
STEP_DUMP_RE = re.compile(r"^step_(\d+)\.json$")
VERL_RE = re.compile(r"^(\d+)\.jsonl$")
QWEN_USER_TURN = r"<\|im_start\|>user\n(.*?)<\|im_end\|>"


def unmatched_id(text: str) -> str:
    import hashlib

    return "unmatched-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


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

    def to_arrow(self) -> pa.Table:
        from limr_exp.arrow import bool_array, dictionary_array, numeric_array

        return pa.Table.from_arrays(
            [dictionary_array(self.codes, self.prompt_ids), numeric_array(self.epoch), numeric_array(self.step),
             numeric_array(self.reward), bool_array(self.correct)], schema=SCHEMA)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> "History":
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
    with atomic_path(path) as tmp:
        pq.write_table(history.to_arrow(), tmp)


def read_table(path: str | os.PathLike, max_epochs: int | None = None) -> History:
    """A trajectories Parquet table (or a folder of them), checked against the contract."""
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
    try:
        history = History.from_arrow(table)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, TypeError) as e:
        raise DataError(f"trajectories.path={path} has a column of the wrong type ({e})") from None
    if max_epochs is not None and history.num_rows:
        keep = history.epoch < history.epoch.min() + max_epochs
        history = History.build(history.prompt_ids, history.codes[keep], history.epoch[keep], history.step[keep],
                                history.reward[keep], history.correct[keep])
    return history


# ---------------------------------------------------------------- step dumps and verl folders

def _parse_step_dump(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One `step_{n}.json`: (distinct prompt texts, per-sample index into them, rewards)."""
    try:
        records = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as e:
        raise DataError(f"trajectories: {path} is not valid JSON ({e}): the dump may be truncated") from None
    if not isinstance(records, list):
        raise DataError(f"trajectories: {path} must hold a JSON list of samples, found {type(records).__name__}")
    try:
        prompts = list(map(itemgetter("prompt"), records))
        rewards = np.fromiter(map(itemgetter("reward"), records), dtype=np.float64, count=len(records))
    except (KeyError, TypeError):
        raise DataError(f"trajectories: {path} has a sample without 'prompt' or 'reward': step dumps are lists of "
                        "{prompt, response, reward}; for verl dumps set trajectories.format=verl") from None
    except ValueError:
        raise DataError(f"trajectories: {path} has a non-numeric 'reward'") from None
    return _encode(prompts, rewards)


def _encode(texts: list[str], rewards) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(distinct texts in first-seen order, per-sample index into them, rewards), at C speed."""
    distinct = list(dict.fromkeys(texts))
    index = {t: i for i, t in enumerate(distinct)}
    codes = np.fromiter(map(index.__getitem__, texts), dtype=np.int32, count=len(texts))
    return distinct, codes, np.asarray(rewards, dtype=np.float64)


def _parse_verl_dump(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One verl `{step}.jsonl`: each line has `input` (templated prompt), `output`, `score`.
    The problem text is cut out of the input later, once per distinct input (TextMatcher)."""
    texts, rewards = [], []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                text, score = rec["input"], float(rec["score"])
            except orjson.JSONDecodeError as e:
                raise DataError(f"trajectories: {path} line {lineno} is not valid JSON ({e})") from None
            except (KeyError, TypeError, ValueError):
                raise DataError(f"trajectories: {path} line {lineno} lacks a numeric 'score' or an 'input': "
                                "verl rollout dumps have input, output, score, step") from None
            texts.append(text)
            rewards.append(score)
    return _encode(texts, rewards)


def _numbered_files(folder: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    files = []
    with os.scandir(folder) as it:
        for entry in it:
            m = pattern.match(entry.name)
            if m:
                files.append((int(m.group(1)), Path(entry.path)))
    return sorted(files)


class TextMatcher:
    """Maps prompt texts from logs to problem ids: exact text first, then stripped text;
    texts the problem set lacks get a stable `unmatched-…` id."""

    def __init__(self, text_to_id: dict[str, str], prompt_regex: str | None = None):
        self.text_to_id = text_to_id  # stripped text -> canonical id
        self.pattern = re.compile(prompt_regex, re.S) if prompt_regex else None
        self.ids: list[str] = []
        self._code_of_id: dict[str, int] = {}
        self._code_of_text: dict[str, int] = {}
        self.unmatched: set[str] = set()

    def code(self, text: str) -> int:
        c = self._code_of_text.get(text)
        if c is not None:
            return c
        key = text.strip()
        pid = self.text_to_id.get(key)
        if pid is None and self.pattern is not None:
            m = self.pattern.search(text)
            if m:
                pid = self.text_to_id.get(m.group(1).strip())
        if pid is None:
            pid = unmatched_id(key)
            self.unmatched.add(pid)
        c = self._code_of_id.get(pid)
        if c is None:
            c = self._code_of_id[pid] = len(self.ids)
            self.ids.append(pid)
        self._code_of_text[text] = c
        return c

    def codes(self, texts: list[str]) -> np.ndarray:
        return np.fromiter((self.code(t) for t in texts), dtype=np.int32, count=len(texts))


def _map_parallel(fn: Callable, items: list, workers: int) -> Iterable:
    """Parse files in forked workers when there are enough to pay for it (results in order)."""
    if workers <= 1 or len(items) < 8 or "fork" not in __import__("multiprocessing").get_all_start_methods():
        return map(fn, items)
    import gc
    import multiprocessing as mp

    gc.freeze()  # keep the collector from touching (and so copying) every inherited page in the workers
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"))
    try:
        return list(pool.map(fn, items, chunksize=max(1, len(items) // (workers * 4))))
    finally:
        pool.shutdown()
        gc.unfreeze()


def import_numbered_dumps(folder: str | os.PathLike, kind: str, steps_per_epoch: int, max_epochs: int | None,
                          text_to_id: dict[str, str], prompt_regex: str | None = None,
                          workers: int | None = None) -> History:
    """Step dumps (`kind='step_dumps'`) or verl rollout dumps (`kind='verl'`) -> trajectories table.

    Epoch k is the k-th consecutive group of `steps_per_epoch` files in step order; a trailing
    incomplete group and groups past `max_epochs` are left out (as the released LIMR script does).
    """
    folder = Path(folder)
    if steps_per_epoch < 1:
        raise DataError(f"trajectories.steps_per_epoch={steps_per_epoch} must be at least 1")
    pattern = STEP_DUMP_RE if kind == "step_dumps" else VERL_RE
    files = _numbered_files(folder, pattern)
    if not files:
        expect = "step_{n}.json" if kind == "step_dumps" else "{step}.jsonl"
        raise DataError(f"trajectories.path={folder} holds no {expect} files")
    n_epochs = len(files) // steps_per_epoch
    if n_epochs == 0:
        raise DataError(f"trajectories.path={folder} has {len(files)} step files, fewer than one epoch of "
                        f"trajectories.steps_per_epoch={steps_per_epoch}: lower steps_per_epoch")
    if max_epochs is not None:
        n_epochs = min(n_epochs, max_epochs)
    used = files[: n_epochs * steps_per_epoch]
    if len(used) < len(files) and (max_epochs is None or len(files) // steps_per_epoch < max_epochs):
        log.warning("trajectories: %d trailing step files do not fill an epoch and are left out", len(files) - len(used))

    parse = _parse_step_dump if kind == "step_dumps" else _parse_verl_dump
    workers = (os.cpu_count() or 1) if workers is None else workers
    # verl inputs are chat-templated: without trajectories.prompt_regex, take the Qwen template's user turn
    matcher = TextMatcher(text_to_id, (prompt_regex or QWEN_USER_TURN) if kind == "verl" else None)
    codes, epochs, steps, rewards = [], [], [], []
    for rank, ((step_no, _), (texts, local_codes, rew)) in enumerate(zip(used, _map_parallel(parse, [str(p) for _, p in used], workers))):
        codes.append(matcher.codes(texts)[local_codes])
        epochs.append(np.full(len(rew), rank // steps_per_epoch + 1, dtype=np.int32))
        steps.append(np.full(len(rew), step_no, dtype=np.int32))
        rewards.append(rew)
    if matcher.unmatched:
        log.warning("trajectories: %d prompt texts of the history are not in the dataset; they count towards the mean "
                    "accuracy curve but cannot be selected", len(matcher.unmatched))
    return History.build(matcher.ids, np.concatenate(codes), np.concatenate(epochs), np.concatenate(steps), np.concatenate(rewards))


def detect_format(path: Path) -> str:
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


def load_history(traj_cfg, text_to_id: dict[str, str], workers: int | None = None) -> History:
    """The reward history named by the `trajectories` config block."""
    path = Path(os.path.expanduser(str(traj_cfg.path)))
    if not path.exists():
        raise DataError(f"trajectories.path={path} does not exist: point it at a step-dump folder, a verl rollout folder "
                        "or a trajectories .parquet file")
    fmt = detect_format(path) if traj_cfg.format == "auto" else traj_cfg.format
    if fmt == "table":
        table = read_table(path, traj_cfg.max_epochs)
    else:
        table = import_numbered_dumps(path, fmt, traj_cfg.steps_per_epoch, traj_cfg.max_epochs, text_to_id,
                                      traj_cfg.prompt_regex, workers)
    if table.num_rows == 0:
        raise DataError(f"trajectories.path={path} holds no samples")
    return table


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
        codes = history.codes.astype(np.int64)
        epoch = history.epoch.astype(np.int64)
        first, last = int(epoch.min()), int(epoch.max())
        k = last - first + 1
        key = codes * k + (epoch - first)
        n_correct = np.bincount(key, weights=history.correct, minlength=len(ids) * k).reshape(len(ids), k)
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
