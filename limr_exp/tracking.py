"""One Tracker that fans out metrics to the configured loggers; always closed in `finally`.

Loggers: `jsonl` (metrics as JSON lines in the run folder). `logger=[]` tracks nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

from limr_exp.errors import ConfigError


class JsonlLogger:
    def __init__(self, run_dir: Path, filename: str = "metrics.jsonl"):
        run_dir.mkdir(parents=True, exist_ok=True)
        self._f = open(run_dir / filename, "a", encoding="utf-8")

    def log(self, metrics: Mapping[str, Any], step: int | None) -> None:
        self._f.write(json.dumps({"time": time.time(), "step": step, **metrics}, default=float) + "\n")
        self._f.flush()

    def finish(self, status: str) -> None:
        self._f.write(json.dumps({"time": time.time(), "status": status}) + "\n")
        self._f.close()


LOGGERS = {"jsonl": JsonlLogger}


class Tracker:
    """Fans metrics out to every configured logger. Use as a context manager."""

    def __init__(self, logger_cfg: Mapping[str, Any] | None, run_dir: Path):
        self.backends = []
        for name, opts in (logger_cfg or {}).items():
            if name not in LOGGERS:
                raise ConfigError(f"unknown logger {name!r}: use a list drawn from {sorted(LOGGERS)}, or 'logger=[]'")
            self.backends.append(LOGGERS[name](run_dir, **dict(opts or {})))
        self.status = "finished"

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        for b in self.backends:
            b.log(metrics, step)

    def close(self) -> None:
        for b in self.backends:
            b.finish(self.status)
        self.backends = []

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.status = "failed"
        self.close()
