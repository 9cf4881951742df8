"""The one interface every trainer implements: `fn(cfg, request, tracker) -> TrainResult`.

A trainer (the local PPO trainer, OpenRLHF, verl) is a module of `limr_exp/training/engines/` that registers
itself in `TRAINERS` under the name `trainer.name` selects, with its config schema and its checks. What to
train is a `TrainRequest`: the problems, the folder to write, how long (passes and an optional rollout-step
cap), the seed, the tracker namespace and the two hooks the pipeline uses (evaluation during training, the
probe's stop_when_stable). Its two constructors are the two runs of LIMR's recipe: the RL run on the subset
(`for_training`) and the probe on the full set (`for_probe`, LIMR Sec. 2.2). What comes back is a
`TrainResult`: the reward history, the checkpoint and the metrics.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from limr_exp.config import require
from limr_exp.data.problems import ProblemSet
from limr_exp.history import History
from limr_exp.registry import Registry

TRAINERS: Registry = Registry("trainer", "trainer")  # name -> fn(cfg, request, tracker) -> TrainResult


def trains_in_process(cfg) -> bool:
    """Whether the chosen engine trains in this process (the local trainer: it honours ppo.max_steps and calls
    the request's on_step and after_epoch hooks) rather than launching an external engine, which trains whole
    passes and evaluates itself. An engine says so with `fn.in_process = True`."""
    return bool(getattr(TRAINERS.get(cfg.trainer.name), "in_process", False))


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


def require_model_checkpoint(cfg) -> None:
    """An external engine trains a checkpoint it loads itself: model.path must name one (a folder that exists,
    or a hub id)."""
    model = str(cfg.model.path) if cfg.model.path is not None else None
    require(model is not None, f"trainer={cfg.trainer.name} needs a model checkpoint: set model.path (a folder or hub id) "
                               "or model=qwen2.5_math_7b")
    require(not model.startswith(("/", ".", "~")) or os.path.isdir(os.path.expanduser(model)),
            f"model.path={model} does not exist: point it at a Hugging Face model folder (or a hub id)")


def require_no_step_cap(cfg) -> None:
    """Engines that train whole passes: ppo.max_steps (the local trainer's equal-steps cap) cannot apply."""
    require(cfg.ppo.max_steps is None or "train" not in cfg.stages,
            f"ppo.max_steps is a local-trainer setting; trainer={cfg.trainer.name} trains ppo.num_episodes passes: "
            "set ppo.max_steps=null")


def require_shared_dir_for_nodes(cfg) -> None:
    """Several nodes read the prompts and reward file and write records and checkpoints: they need storage
    that every node sees."""
    t = cfg.trainer
    require(t.num_nodes <= 1 or t.shared_dir, f"trainer.num_nodes={t.num_nodes}: the workers on the other nodes load the "
            "reward file and write checkpoints and records, so they must live on storage every node sees: set "
            "trainer.shared_dir=/nfs/... (or trainer.num_nodes=1)")


def run_logged(argv: list[str], log_path: Path, what: str, abort_file: Path | None = None) -> None:
    """Run an external engine's `argv`, streaming its output to the terminal and `log_path`; stop it when its
    reward function writes `abort_file` (its judge is broken), and raise that one-line reason, or one line
    naming `what` failed and where its log is."""
    import subprocess
    import sys

    from limr_exp.errors import LimrError

    with open(log_path, "a", encoding="utf-8") as log_file:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            sys.stdout.write(line)
            log_file.write(line)
            if abort_file is not None and abort_file.exists():
                proc.terminate()
                break
        code = proc.wait()
    if abort_file is not None and abort_file.exists():
        raise LimrError(abort_file.read_text(encoding="utf-8").strip())
    if code != 0:
        raise LimrError(f"{what} failed with exit code {code}: see {log_path}")


def engine_work_dir(cfg, out: Path) -> Path:
    """Where an external engine reads its inputs and writes records and checkpoints: the run folder, or for a
    cluster job or a run over several nodes `trainer.shared_dir/<run folder name>`, which every node and this
    machine must see."""
    from limr_exp.errors import ConfigError

    t = cfg.trainer
    if not t.get("ray_address") and t.num_nodes <= 1:
        out.mkdir(parents=True, exist_ok=True)
        return out
    work = Path(t.shared_dir).expanduser() / Path(cfg.output_dir).name
    try:
        work.mkdir(parents=True, exist_ok=True)
        probe = work / ".limr-write-check"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"trainer.shared_dir={t.shared_dir} is not writable here ({e.strerror}): it must be shared "
                          "storage mounted on this machine and every node") from None
    return work
