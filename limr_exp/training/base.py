"""The one interface every trainer implements: `fn(cfg, request, tracker) -> TrainResult`.

A trainer (the local PPO trainer, OpenRLHF) is registered in `limr_exp.training.TRAINERS` under the name
`trainer.name` selects. What to train is a `TrainRequest`: the problems, the folder to write, how long
(passes and an optional rollout-step cap), the seed, the tracker namespace and the two hooks the pipeline
uses (evaluation during training, the probe's stop_when_stable). Its two constructors are the two runs of
LIMR's recipe: the RL run on the subset (`for_training`) and the probe on the full set (`for_probe`,
LIMR Sec. 2.2). What comes back is a `TrainResult`: the reward history, the checkpoint and the metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from limr_exp.data.problems import ProblemSet
from limr_exp.history import History


@dataclass(frozen=True)
class TrainRequest:
    problems: ProblemSet
    out: Path                     # the trainer's folder: checkpoint/, trajectories.parquet, steps.jsonl
    num_episodes: int             # passes over the problems
    max_steps: int | None         # rollout steps at most (the local trainer); None: num_episodes passes
    seed: int
    namespace: str = "train"      # tracker keys: train/... or probe/...
    on_step: Callable | None = None      # on_step(step, model, last) -> metrics to log at that step
    after_epoch: Callable | None = None  # after_epoch(epoch, history) -> True ends the run after that epoch
    subset_of: int | None = None  # the size of the problem set `problems` was selected from (None: they are the set)

    @classmethod
    def for_training(cls, cfg, problems: ProblemSet, out, on_step: Callable | None = None,
                     subset_of: int | None = None) -> TrainRequest:
        """RL on the selected subset: ppo.num_episodes passes, at most ppo.max_steps rollout steps, the run's seed."""
        return cls(problems, Path(out), cfg.ppo.num_episodes, cfg.ppo.max_steps, cfg.seed, "train", on_step=on_step,
                   subset_of=subset_of)

    @classmethod
    def for_probe(cls, cfg, problems: ProblemSet, out, after_epoch: Callable | None = None) -> TrainRequest:
        """The probe: probe.episodes passes over the full set (no step cap), with the probe's own seed."""
        return cls(problems, Path(out), cfg.probe.episodes, None, cfg.probe.seed, "probe", after_epoch=after_epoch)

    def replace(self, **changes) -> TrainRequest:
        return dataclasses.replace(self, **changes)


@dataclass
class TrainResult:
    history: History
    checkpoint: Path
    metrics: dict = field(default_factory=dict)
