"""Where everything of a run lives: one definition of the run folder's layout (DESIGN.md "The run folder").

    <run>/status.json, fingerprint.json, .lock       run_folder.py: what happened, which config, who holds it
    <run>/selection/scores.parquet, selected.jsonl, probe_seeds.json
    <run>/train/                                     the trainer's folder (TrainerFiles): trajectories.parquet,
                                                     steps.jsonl, checkpoint/
    <run>/eval/metrics.json, base_metrics.json, <benchmark>.jsonl
    <run>/plots/<name>.png
    <run>/metrics.jsonl                              the jsonl tracker's rows

A trainer's folder (the run's train/, or a cached probe's folder) has the same files wherever it is: TrainerFiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainerFiles:
    """A trainer's folder: the reward history, the per-step metrics and the trained checkpoint."""

    root: Path

    @property
    def trajectories(self) -> Path:
        return self.root / "trajectories.parquet"

    @property
    def steps(self) -> Path:
        return self.root / "steps.jsonl"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"


@dataclass(frozen=True)
class RunLayout:
    """The run folder `root` and every path in it that more than one module reads or writes."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def selection(self) -> Path:
        return self.root / "selection"

    @property
    def scores(self) -> Path:
        return self.selection / "scores.parquet"

    @property
    def selected(self) -> Path:
        return self.selection / "selected.jsonl"

    @property
    def probe_seeds(self) -> Path:
        return self.selection / "probe_seeds.json"

    @property
    def train(self) -> TrainerFiles:
        return TrainerFiles(self.root / "train")

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def metrics(self) -> Path:
        return self.eval / METRICS_FILE

    @property
    def base_metrics(self) -> Path:
        return self.eval / BASE_METRICS_FILE

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def plot(self, name: str) -> Path:
        return self.plots / f"{name}.png"

    @property
    def tracker_rows(self) -> Path:
        return self.root / "metrics.jsonl"


METRICS_FILE = "metrics.json"  # an evaluation folder's metrics (the run's eval/, or a cached base evaluation's)
BASE_METRICS_FILE = "base_metrics.json"
