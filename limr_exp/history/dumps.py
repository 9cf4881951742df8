"""Importers of numbered dump folders: LIMR/OpenRLHF step dumps and verl rollout dumps.

  - step dumps: a folder of `step_{n}.json`, each a list of `{prompt, response, reward, ...}`; consecutive
    groups of `steps_per_epoch` files are one epoch, only the first `max_epochs` count, `correct` is
    `reward == 1` (the released LIMR selection script's rule);
  - verl rollout dumps (`trainer.rollout_data_dir`): `{step}.jsonl` lines with `input`, `output`, `score`.
Files are read one by one (in forked workers when there are many), so memory grows with the number of
samples, not the JSON's size."""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from operator import attrgetter
from pathlib import Path
from typing import Callable, Iterator

import msgspec
import numpy as np

from limr_exp.errors import DataError
from limr_exp.history.matcher import TextMatcher
from limr_exp.history.table import History
from limr_exp.io import json_error_reason, jsonl_lines, without_bom

log = logging.getLogger(__name__)

STEP_DUMP_RE = re.compile(r"^step_(\d+)\.json$")
VERL_RE = re.compile(r"^(\d+)\.jsonl$")


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
    for lineno, line in jsonl_lines(path):
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
