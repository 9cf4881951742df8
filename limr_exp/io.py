"""Atomic file writing: results appear whole or not at all, so a crashed run never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's own 0600 would hide results from others


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, _FILE_MODE)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str))
            f.write("\n")


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a JSON-lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def give_files_the_usual_mode(folder: str | os.PathLike) -> None:
    """Files some libraries write private (safetensors' 0600) get the mode every other result has."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            os.chmod(path, _FILE_MODE)


UTF8_BOM = b"\xef\xbb\xbf"


def without_bom(data: bytes) -> bytes:
    """JSON text without the UTF-8 byte-order mark some editors (Excel, Notepad) put first: accepted, not an error."""
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data


def jsonl_lines(path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a JSON-lines file read as bytes: blank lines skipped, a first-line BOM dropped."""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            line = without_bom(line) if lineno == 1 else line
            if line.strip():
                yield lineno, line


def json_error_reason(e: Exception, data: bytes) -> str:
    """Why `data` could not be decoded as JSON, in words a user can act on (file offsets included)."""
    import re

    if isinstance(e, UnicodeDecodeError) or "Invalid UTF-8" in str(e):  # msgspec >= 0.23 says it in its own words
        try:
            data.decode("utf-8")
            at = e.start
        except UnicodeDecodeError as whole:  # the offset in the file, not in one decoded string
            at = whole.start
        else:
            return f"it is not valid JSON ({e})"
        return f"byte {at} (0x{data[at]:02x}) is not UTF-8 text: re-save the file as UTF-8"
    for magic, what in ((b"\x1f\x8b", "gzip-compressed: decompress it first (gunzip)"), (b"PK\x03\x04", "a zip archive: unpack it first"),
                        (b"\x28\xb5\x2f\xfd", "zstd-compressed: decompress it first"), (b"PAR1", "a Parquet file: give it a .parquet name")):  # noqa: E501
        if data.startswith(magic):
            return f"it is {what}"
    if "truncated" in str(e):
        return "it ends in the middle of a value: the file is truncated (re-export it)"
    m = re.search(r"\(byte (\d+)\)", str(e))
    if m:
        at = int(m.group(1))
        bad = re.match(rb"-?(NaN|Infinity)", data[at:at + 9])
        if bad:
            return f"byte {at} holds {bad.group().decode()}, which JSON does not allow: write a number"
        if at >= len(data.rstrip()):
            return f"it ends at byte {at} in the middle of a value: the file is truncated"
    return f"it is not valid JSON ({e})"
