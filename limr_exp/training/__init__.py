"""RL training engines behind one interface (limr_exp.training.base): `TRAINERS[name](cfg, request, tracker)`
returns a TrainResult; `trainer.name` picks the engine (local PPO in this process, OpenRLHF on Ray)."""

from __future__ import annotations

from pathlib import Path

from limr_exp.registry import Registry
from limr_exp.training.base import TrainRequest, TrainResult

TRAINERS: Registry = Registry("trainer", "trainer")

__all__ = ["TRAINERS", "TrainRequest", "TrainResult", "run_trainer", "train"]


@TRAINERS.register("local")
def train_local(cfg, request: TrainRequest, tracker=None) -> TrainResult:
    """PPO in this process on the base policy (`model` config)."""
    from limr_exp.models import load_policy, resolve_device
    from limr_exp.training.ppo import LocalPPOTrainer

    device = resolve_device(cfg.trainer.device)
    trainer = LocalPPOTrainer(cfg, request, tracker, device=device)
    bundle = load_policy(cfg.model, cfg.cache_dir, device)
    return trainer.fit(bundle)


@TRAINERS.register("openrlhf")
def train_openrlhf(cfg, request: TrainRequest, tracker=None) -> TrainResult:
    """OpenRLHF on Ray with vLLM rollouts (or, with trainer.dry_run=true, only the command and files). It
    trains the request's passes (a rollout-step cap is refused at start) and evaluates with `--eval.steps`
    itself; it cannot stop between epochs (after_epoch is not called)."""
    from limr_exp.training.openrlhf import train_openrlhf as run_openrlhf

    if request.seed != cfg.seed:
        from omegaconf import OmegaConf

        cfg = OmegaConf.merge(cfg, {"seed": request.seed})
    return run_openrlhf(cfg, request.problems, request.out, tracker, num_episodes=request.num_episodes,
                        namespace=request.namespace)


def run_trainer(cfg, request: TrainRequest, tracker=None) -> TrainResult:
    """Train with the engine `trainer.name` names (one line naming the engines if it is unknown)."""
    return TRAINERS.get(cfg.trainer.name)(cfg, request, tracker)


def train(cfg, problems, out: Path, tracker=None, **changes) -> TrainResult:
    """RL on `problems` as the run's config says (`TrainRequest.for_training`), with any field of the request
    changed by keyword, e.g. `train(cfg, problems, out, num_episodes=2)`."""
    return run_trainer(cfg, TrainRequest.for_training(cfg, problems, out).replace(**changes), tracker)
