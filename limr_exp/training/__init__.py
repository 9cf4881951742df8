"""RL training engines behind one interface (limr_exp.training.base): `TRAINERS[name](cfg, request, tracker)`
returns a TrainResult; `trainer.name` picks the engine. Each engine is one module of `engines/` (local PPO in
this process, OpenRLHF on Ray, verl), registered with its config schema and checks."""

from __future__ import annotations

from pathlib import Path

from limr_exp.training import engines  # noqa: F401  (registers every engine)
from limr_exp.training.base import TRAINERS, TrainRequest, TrainResult

__all__ = ["TRAINERS", "TrainRequest", "TrainResult", "run_trainer", "train"]


def run_trainer(cfg, request: TrainRequest, tracker=None) -> TrainResult:
    """Train with the engine `trainer.name` names (one line naming the engines if it is unknown)."""
    return TRAINERS.get(cfg.trainer.name)(cfg, request, tracker)


def train(cfg, problems, out: Path, tracker=None, **changes) -> TrainResult:
    """RL on `problems` as the run's config says (`TrainRequest.for_training`), with any field of the request
    changed by keyword, e.g. `train(cfg, problems, out, num_episodes=2)`."""
    return run_trainer(cfg, TrainRequest.for_training(cfg, problems, out).replace(**changes), tracker)
