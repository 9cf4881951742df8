"""Load a problem set from disk into the Problem contract: `id` (unique string), `prompt`, `answer`,
plus every original field, kept through.

Formats: a JSON list of objects, JSON lines, Parquet, and HF `save_to_disk` folders (DatasetDict or
single split; arrow files read with pyarrow, so no `datasets` dependency). Rows without an id get a
stable one derived from the prompt text. Duplicate prompt texts are legal (MATH-FULL has one);
duplicate ids are an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import msgspec

from limr_exp.errors import ConfigError, DataError
from limr_exp.io import json_error_reason, jsonl_lines, without_bom

log = logging.getLogger("limr_exp")

FILE_FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".arrow": "arrow"}


def text_key(prompt: str) -> str:
    """How prompts are matched by text everywhere (reward histories, score files, twin rows): stripped, as
    LIMR's selection script matches them."""
    return prompt.strip()


@dataclass
class ProblemSet:
    """An ordered list of problems, each a dict with at least `id`, `prompt` and `answer`."""

    name: str
    rows: list[dict[str, Any]]
    source: str = ""

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def text_to_ids(self) -> dict[str, list[str]]:
        """Stripped prompt text -> ids of every row with that text (a text may occur twice)."""
        out: dict[str, list[str]] = {}
        for r in self.rows:
            out.setdefault(text_key(r["prompt"]), []).append(r["id"])
        return out

    def text_to_first_id(self) -> dict[str, str]:
        """Stripped prompt text -> the first id with that text: how a reward history's texts are coded (a text
        that occurs twice is scored once, and its twin takes the score: selection.base.scores_for_problems)."""
        return {text: ids[0] for text, ids in self.text_to_ids().items()}

    def subset(self, ids: Iterable[str]) -> "ProblemSet":
        keep = set(ids)
        return ProblemSet(self.name, [r for r in self.rows if r["id"] in keep], self.source)


def stable_id(prompt: str, occurrence: int = 0) -> str:
    """Deterministic id from the prompt text; the k-th repeat of a text gets a `-k` suffix."""
    digest = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:16]
    return f"p{digest}" if occurrence == 0 else f"p{digest}-{occurrence}"


def file_format(path: Path) -> str:
    if path.is_dir():
        return "arrow"
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"cannot tell the format of {path}: use a .json, .jsonl, .parquet or .arrow file, "
                        f"an HF save_to_disk folder, or set dataset.format")
    return fmt


def _read_json(path: Path, what: str) -> list[dict]:
    data = without_bom(path.read_bytes())
    if not data.strip():
        raise DataError(f"{what}={path} is empty: it holds no problems")
    try:
        obj = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{what}={path} cannot be read: {json_error_reason(e, data)}") from None
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), list):
        obj = next(iter(obj.values()))  # {"data": [...]} wrappers
    if not isinstance(obj, list):
        raise DataError(f"{what}={path} must hold a JSON list of objects, found {type(obj).__name__}")
    return obj


def _read_jsonl(path: Path, what: str) -> list[dict]:
    rows = []
    for lineno, line in jsonl_lines(path):
        try:
            rows.append(msgspec.json.decode(line))
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{what}={path} line {lineno} cannot be read: {json_error_reason(e, line)}") from None
    return rows


def _read_parquet(path: Path, what: str) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{what}={path} is not a readable Parquet file ({type(e).__name__}: {e})") from None


def _read_arrow_file(path: Path) -> "pa.Table":  # noqa: F821
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.memory_map(str(path)) as source:
        try:
            return ipc.open_stream(source).read_all()  # datasets writes the streaming format
        except pa.ArrowInvalid:
            source.seek(0)
            return ipc.open_file(source).read_all()


def _read_arrow(path: Path, split: str, what: str) -> list[dict]:
    """HF `save_to_disk` output: a DatasetDict folder (dataset_dict.json + one folder per split),
    one split's folder (state.json + data-*.arrow), or a single .arrow file."""
    import pyarrow as pa

    if path.is_file():
        files = [path]
    else:
        if (path / "dataset_dict.json").exists():
            splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
            if split not in splits:
                raise DataError(f"{what}={path} has splits {splits}, not {split!r}: set dataset.split")
            path = path / split
        state = path / "state.json"
        if state.exists():
            files = [path / f["filename"] for f in json.loads(state.read_text()).get("_data_files", [])]
        else:
            files = sorted(path.glob("*.arrow"))
        if not files:
            raise DataError(f"{what}={path} holds no .arrow files: expected an HF save_to_disk folder")
    try:
        tables = [_read_arrow_file(f) for f in files]
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{what}={path} has an unreadable arrow file ({e})") from None
    return [row for t in tables for row in t.to_pylist()]


def read_records(path: str | Path, fmt: str = "auto", split: str = "train", what: str = "dataset.path") -> list[dict]:
    """Raw rows of a json/jsonl/parquet/arrow source, or a DataError naming `what`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what}={path} does not exist: check the path (relative paths start from the working directory)")
    fmt = file_format(path) if fmt == "auto" else fmt
    try:
        if fmt == "json":
            rows = _read_json(path, what)
        elif fmt == "jsonl":
            rows = _read_jsonl(path, what)
        elif fmt == "parquet":
            rows = _read_parquet(path, what)
        elif fmt == "arrow":
            rows = _read_arrow(path, split, what)
        else:
            raise DataError(f"unknown format {fmt!r} for {what}={path}")
    except (PermissionError, IsADirectoryError) as e:
        raise DataError(f"{what}={path} cannot be read ({e.strerror})") from None
    if not rows:
        raise DataError(f"{what}={path} is empty: it holds no problems")
    return rows


def normalise_rows(rows: list, *, id_key: str | None, prompt_key: str, answer_key: str, source: str,
                   key_prefix: str = "dataset") -> list[dict[str, Any]]:
    """Map raw rows to the Problem contract, checking keys and id uniqueness."""
    out: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    text_count: dict[str, int] = {}
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            raise DataError(f"{source}: row {i} is a {type(raw).__name__}, not an object with {prompt_key!r} and {answer_key!r}")
        if prompt_key not in raw:
            raise DataError(f"{source}: row {i} has no {prompt_key!r} key (it has {', '.join(map(str, raw)) or 'none'}): "
                            f"set {key_prefix}.prompt_key to the field that holds the problem text")
        if answer_key not in raw:
            raise DataError(f"{source}: row {i} has no {answer_key!r} (answer) key (it has {', '.join(map(str, raw)) or 'none'}): "
                            f"set {key_prefix}.answer_key to the field that holds the reference answer")
        prompt = raw[prompt_key]
        if not isinstance(prompt, str):
            raise DataError(f"{source}: row {i} {prompt_key!r} is a {type(prompt).__name__}, expected text")
        answer = raw[answer_key]  # None (null) stays None: a problem without a reference (see require_answers)
        if answer is not None and not isinstance(answer, str):
            answer = json.dumps(answer) if isinstance(answer, (list, dict)) else str(answer)
        if id_key is not None and raw.get(id_key) is not None:
            pid = str(raw[id_key])
        else:
            k = text_count.get(prompt, 0)
            text_count[prompt] = k + 1
            pid = stable_id(prompt, k)
        if pid in seen_ids:
            raise DataError(f"{source}: id {pid!r} occurs twice (rows {seen_ids[pid]} and {i}): ids must be unique; "
                            f"fix the file or set {key_prefix}.id_key=null to derive ids from the prompt text")
        seen_ids[pid] = i
        row = dict(raw)
        row["id"], row["prompt"], row["answer"] = pid, prompt, answer
        out.append(row)
    return out


def load_problem_file(path: str | Path, *, fmt: str = "auto", split: str = "train", id_key: str | None = "id",
                      prompt_key: str = "prompt", answer_key: str = "answer", name: str | None = None,
                      key_prefix: str = "dataset") -> ProblemSet:
    rows = read_records(path, fmt, split, what=f"{key_prefix}.path")
    rows = normalise_rows(rows, id_key=id_key, prompt_key=prompt_key, answer_key=answer_key,
                          source=f"{key_prefix}.path={path}", key_prefix=key_prefix)
    return ProblemSet(name or Path(path).stem, rows, str(path))


def require_answers(problems: ProblemSet, key_prefix: str, drop: bool) -> ProblemSet:
    """Training and evaluation need a reference answer for every problem (no reference, no pay): rows
    whose answer is null or blank stop the run with one line naming them, or are dropped when `drop`."""
    missing = [(i, r["id"]) for i, r in enumerate(problems.rows) if r["answer"] is None or not r["answer"].strip()]
    if not missing:
        return problems
    if drop:
        log.warning("%s: dropped %d problem(s) without a reference answer (%s.drop_unanswered=true)",
                    problems.source or problems.name, len(missing), key_prefix)
        gone = {pid for _, pid in missing}
        return problems.subset([pid for pid in problems.ids if pid not in gone])
    shown = ", ".join(f"row {i} (id {pid})" for i, pid in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    raise DataError(f"{key_prefix}.path={problems.source}: {len(missing)} problem(s) have no reference answer ({shown}): "
                    f"fix them, or set {key_prefix}.drop_unanswered=true to leave them out")


def load_problems(dataset_cfg, split: str | None = None) -> ProblemSet:
    """The configured problem set (`dataset` config group). `split` picks the toy world's train/test."""
    if dataset_cfg.format == "toy_arith":
        from limr_exp.data.toy_arith import toy_splits

        split = split or "train"
        if split not in ("train", "test"):
            raise ConfigError(f"the toy dataset has splits train and test, not {split!r}")
        return ProblemSet(f"toy_arith-{split}", toy_splits(dataset_cfg.toy)[split], source=f"toy_arith(seed={dataset_cfg.toy.seed})")
    return load_problem_file(dataset_cfg.path, fmt=dataset_cfg.format, split=split or dataset_cfg.split,
                             id_key=dataset_cfg.id_key, prompt_key=dataset_cfg.prompt_key,
                             answer_key=dataset_cfg.answer_key, name=dataset_cfg.name)
