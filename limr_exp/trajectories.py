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
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Callable, Iterator, Sequence

import msgspec
import numpy as np

from limr_exp.data.problems import text_key
from limr_exp.errors import DataError
from limr_exp.io import atomic_path, json_error_reason, without_bom
from limr_exp.registry import Registry

log = logging.getLogger(__name__)

COLUMNS = ("prompt_id", "epoch", "step", "reward", "correct")


def arrow_schema():
    """The table's Arrow schema (pyarrow is imported only where a table is read or written)."""
    import pyarrow as pa

    return pa.schema([("prompt_id", pa.dictionary(pa.int32(), pa.string())), ("epoch", pa.int32()),
                      ("step", pa.int32()), ("reward", pa.float64()), ("correct", pa.bool_())])
STEP_DUMP_RE = re.compile(r"^step_(\d+)\.json$")
VERL_RE = re.compile(r"^(\d+)\.jsonl$")


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


# ---------------------------------------------------------------- step dumps and verl folders

class _DumpSample(msgspec.Struct, gc=False):
    """The two fields of a step-dump sample LIM reads; the response and any other field are skipped
    unparsed, which is what makes reading 180 MB of dumps cheap."""

    prompt: str
    reward: float


class _VerlSample(msgspec.Struct, gc=False):
    input: str
    score: float


_DUMP_DECODER = msgspec.json.Decoder(list[_DumpSample])
_VERL_DECODER = msgspec.json.Decoder(_VerlSample)


def _parse_step_dump(path: str) -> tuple[list[str], np.ndarray]:
    """One `step_{n}.json`: (prompt text, reward) of every sample."""
    data = without_bom(Path(path).read_bytes())
    try:
        samples = _DUMP_DECODER.decode(data)
    except msgspec.ValidationError as e:
        if "$[" not in str(e):  # the error is about the whole document, not one sample
            raise DataError(f"trajectories: {path} must hold a JSON list of samples ({e})") from None
        raise DataError(f"trajectories: {path} has a sample without a text 'prompt' or a numeric 'reward' ({e}): step "
                        "dumps are lists of {prompt, response, reward}; for verl dumps set trajectories.format=verl") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise DataError(f"trajectories: {path} cannot be read: {json_error_reason(e, data)}") from None
    return (list(map(attrgetter("prompt"), samples)),
            np.fromiter(map(attrgetter("reward"), samples), dtype=np.float64, count=len(samples)))


def _parse_verl_dump(path: str) -> tuple[list[str], np.ndarray]:
    """One verl `{step}.jsonl`: each line has `input` (templated prompt), `output`, `score`.
    The problem text is cut out of the input later, once per distinct input (TextMatcher)."""
    texts, rewards = [], []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            line = without_bom(line) if lineno == 1 else line
            if not line.strip():
                continue
            try:
                sample = _VERL_DECODER.decode(line)
            except msgspec.ValidationError as e:
                raise DataError(f"trajectories: {path} line {lineno} lacks a numeric 'score' or a text 'input' ({e}): "
                                "verl rollout dumps have input, output, score, step") from None
            except (msgspec.DecodeError, UnicodeDecodeError) as e:
                raise DataError(f"trajectories: {path} line {lineno} cannot be read: {json_error_reason(e, line)}") from None
            texts.append(sample.input)
            rewards.append(sample.score)
    return texts, np.array(rewards, dtype=np.float64)


def _numbered_files(folder: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    files = []
    with os.scandir(folder) as it:
        for entry in it:
            m = pattern.match(entry.name)
            if m:
                files.append((int(m.group(1)), Path(entry.path)))
    return sorted(files)


class TextMatcher:
    """Maps prompt texts from logs to codes into `ids`. A text is the problem itself (exact, then stripped),
    or a chat-templated input that holds it (verl decodes inputs with or without special tokens, under any
    template): then `prompt_regex`'s group 1 when given, else what lies between the template parts that all
    inputs of a file share, else the longest problem text found inside the input. The problem set's ids
    come first, in its order, so a forked worker can code the texts it reads (`lookup`); texts the set
    lacks get a stable `unmatched-…` id, coded in the parent (`unmatched_code`)."""

    ANCHOR = 12  # problems are found inside inputs by their first ANCHOR characters

    def __init__(self, text_to_id: dict[str, str], prompt_regex: str | None = None, templated: bool = False):
        self.ids: list[str] = list(dict.fromkeys(text_to_id.values()))
        code_of_id = {pid: c for c, pid in enumerate(self.ids)}
        self.known = {text: code_of_id[pid] for text, pid in text_to_id.items()}  # stripped text -> code
        self.pattern = re.compile(prompt_regex, re.S) if prompt_regex else None
        self.templated = templated
        self._anchors: dict[str, list[str]] | None = None
        self._unmatched: dict[str, int] = {}

    def _anchor_index(self) -> dict[str, list[str]]:
        """First ANCHOR characters -> the problem texts starting with them (longest first); built on first use."""
        if self._anchors is None:
            self._anchors = {}
            for text in sorted(self.known, key=len, reverse=True):
                self._anchors.setdefault(text[:self.ANCHOR], []).append(text)
        return self._anchors

    def _inside(self, text: str) -> int:
        """The code of the longest problem text that occurs inside `text`, or -1."""
        index, best = self._anchor_index(), ""
        for i in range(len(text) - 1):
            for candidate in index.get(text[i:i + self.ANCHOR], ()):
                if len(candidate) > len(best) and text.startswith(candidate, i):
                    best = candidate
                    break
        return self.known[best] if best else -1

    def _lookup_slow(self, text: str, template: tuple[int, int] = (0, 0)) -> int:
        c = self.known.get(text_key(text), -1)
        if c < 0 and self.pattern is not None:
            m = self.pattern.search(text)
            if m:
                c = self.known.get(text_key(m.group(1)), -1)
        if c < 0 and self.templated and self.pattern is None:
            head, tail = template
            c = self.known.get(text_key(text[head:len(text) - tail]), -1)
            if c < 0:
                c = self._inside(text)
        return c

    def lookup(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        """Codes of `texts` (one exact-text lookup per sample; the slower rules run once per distinct text
        that misses); the j-th distinct text the problem set lacks gets code -1-j and is returned."""
        codes = np.fromiter(map(self.known.get, texts, repeat(-1)), dtype=np.int32, count=len(texts))
        missed = np.flatnonzero(codes < 0).tolist()
        distinct = list(dict.fromkeys(texts[i] for i in missed))
        template = _shared_ends(distinct) if self.templated and len(distinct) > 1 else (0, 0)
        misses: list[str] = []
        slow: dict[str, int] = {}
        for i in missed:
            text = texts[i]
            c = slow.get(text)
            if c is None:
                c = self._lookup_slow(text, template)
                if c < 0:
                    c = -1 - len(misses)
                    misses.append(text)
                slow[text] = c
            codes[i] = c
        return codes, misses

    def unmatched_code(self, text: str) -> int:
        key = text_key(text)
        c = self._unmatched.get(key)
        if c is None:
            c = self._unmatched[key] = len(self.ids)
            self.ids.append(unmatched_id(key))
        return c

    @property
    def n_unmatched(self) -> int:
        return len(self._unmatched)


def _shared_ends(texts: list[str]) -> tuple[int, int]:
    """Lengths of the prefix and suffix that all `texts` share (a chat template's fixed parts)."""
    head = len(os.path.commonprefix(texts))
    tail = len(os.path.commonprefix([t[::-1] for t in texts]))
    shortest = min(map(len, texts))
    return head, min(tail, shortest - head)


class DumpReader:
    """Reads one dump file into (per-sample codes, rewards, texts the problem set lacks); see TextMatcher."""

    def __init__(self, kind: str, matcher: TextMatcher):
        self.parse = _parse_step_dump if kind == "step_dumps" else _parse_verl_dump
        self.matcher = matcher

    def __call__(self, path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        texts, rewards = self.parse(path)
        codes, misses = self.matcher.lookup(texts)
        return codes, rewards, misses


_WORKER_FN: Callable | None = None


def _install_worker_fn(fn: Callable) -> None:
    import signal

    global _WORKER_FN
    _WORKER_FN = fn
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _call_worker_fn(item):
    return _WORKER_FN(item)


def _map_parallel(fn: Callable, items: list, workers: int) -> Iterator:
    """`map(fn, items)` in forked workers when there are enough items to pay for it (results in order,
    as they come). `fn` reaches the workers through fork, not pickling, so it may hold large tables."""
    if workers <= 1 or len(items) < 8 or "fork" not in __import__("multiprocessing").get_all_start_methods():
        yield from map(fn, items)
        return
    import gc
    import multiprocessing as mp

    gc.freeze()  # keep the collector from touching (and so copying) every inherited page in the workers
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"),
                               initializer=_install_worker_fn, initargs=(fn,))
    try:
        yield from pool.map(_call_worker_fn, items, chunksize=max(1, len(items) // (workers * 4)))
    finally:
        pool.shutdown(cancel_futures=True)
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

    workers = (os.cpu_count() or 1) if workers is None else workers
    # verl inputs are chat-templated (decoded with or without special tokens): the problem is found inside them
    matcher = TextMatcher(text_to_id, prompt_regex, templated=kind == "verl")
    read = DumpReader(kind, matcher)
    files_read = []  # (step number, codes, rewards) per file, in step order
    for (step_no, _), (codes, rewards, misses) in zip(used, _map_parallel(read, [str(p) for _, p in used], workers)):
        if misses:
            extra = np.array([matcher.unmatched_code(t) for t in misses], dtype=np.int32)
            neg = codes < 0
            codes[neg] = extra[-1 - codes[neg]]
        files_read.append((step_no, codes, rewards))
    if matcher.n_unmatched:
        log.warning("trajectories: %d prompt texts of the history are not in the dataset; they count towards the mean "
                    "accuracy curve but cannot be selected", matcher.n_unmatched)
    return _assemble(files_read, steps_per_epoch, matcher.ids)


def _assemble(files_read: list, steps_per_epoch: int, ids: list[str]) -> History:
    """One History from per-file (step number, codes, rewards); fills preallocated columns and frees
    each file's arrays as it goes, so peak memory stays near the table's own size."""
    n = sum(len(rewards) for _, _, rewards in files_read)
    codes, epoch, step = (np.empty(n, dtype=np.int32) for _ in range(3))
    reward = np.empty(n, dtype=np.float64)
    pos = 0
    for rank in range(len(files_read)):
        step_no, file_codes, file_rewards = files_read[rank]
        files_read[rank] = None
        end = pos + len(file_rewards)
        codes[pos:end], reward[pos:end] = file_codes, file_rewards
        epoch[pos:end], step[pos:end] = rank // steps_per_epoch + 1, step_no
        pos = end
    present = np.bincount(codes, minlength=len(ids)) > 0  # the table lists only ids it has rows for
    if not present.all():
        recode = np.cumsum(present, dtype=np.int32) - 1
        np.take(recode, codes, out=codes)
        ids = [pid for pid, p in zip(ids, present.tolist()) if p]
    return History.build(ids, codes, epoch, step, reward)


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

def import_reward_records(records_dir: str | os.PathLike, n_samples_per_prompt: int, rollout_batch_size: int,
                          n_prompts: int) -> History:
    """OpenRLHF reward records (`rewards-<host>-<pid>.jsonl`, written by training/openrlhf_reward.py) -> the
    trajectories table, with every sample's (epoch, rollout step).

    OpenRLHF 0.11's synchronous loop generates rollout step s (rollout_batch_size prompts x n samples; an
    episode's last step takes the prompts left over) and trains on it before step s+1 starts, so in time order
    a launch's records fill the steps one after another. Each launch of the run is marked by
    `launch-<k>.json` (the checkpoint step it resumed from): a launch resumed at step c replaces the earlier
    launches' records after c, since those steps ran again. Epoch k is the k-th episode."""
    import json

    folder = Path(records_dir)
    launches: dict[int, list[dict]] = {}
    for path in sorted(folder.glob("rewards-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed process
                launches.setdefault(int(r.get("launch", 1)), []).append(r)
    resumed_at = {}
    for marker in folder.glob("launch-*.json"):
        resumed_at[int(marker.stem.split("-")[1])] = int(json.loads(marker.read_text()).get("resume_step", 0))
    per_episode = [min(rollout_batch_size, n_prompts - i) * n_samples_per_prompt for i in range(0, n_prompts, rollout_batch_size)]
    kept: list[tuple[int, dict]] = []
    for launch in sorted(launches):
        start = resumed_at.get(launch, 0)
        kept = [(step, r) for step, r in kept if step <= start]
        step, filled = start + 1, 0
        for r in sorted(launches[launch], key=lambda rec: rec["time"]):
            if filled == per_episode[(step - 1) % len(per_episode)]:
                step, filled = step + 1, 0
            kept.append((step, r))
            filled += 1
    index: dict[str, int] = {}
    codes = [index.setdefault(r["prompt_id"], len(index)) for _, r in kept]
    steps = np.array([step for step, _ in kept], dtype=np.int32)
    epochs = (steps - 1) // len(per_episode) + 1
    return History.build(list(index), codes, epochs, steps, [r["reward"] for _, r in kept], [bool(r["correct"]) for _, r in kept])
