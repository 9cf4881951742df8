"""`trainer=local`: PPO in this process (limr_exp/training/ppo.py) on the base policy, CPU or one CUDA GPU."""

from __future__ import annotations

from limr_exp.training.base import TRAINERS, TrainRequest, TrainResult


def check(cfg) -> None:
    """The advantage estimator must be one the local trainer implements, when it trains or probes."""
    if "train" in cfg.stages or "select" in cfg.stages and cfg.trajectories.path is None:
        from limr_exp.training.ppo import ESTIMATORS

        ESTIMATORS.get(cfg.ppo.advantage_estimator)  # one line naming the choices


@TRAINERS.register("local", check=check)
def train_local(cfg, request: TrainRequest, tracker=None) -> TrainResult:
    """PPO in this process on the base policy (`model` config)."""
    from limr_exp.models import load_policy, resolve_device
    from limr_exp.training.ppo import LocalPPOTrainer

    device = resolve_device(cfg.trainer.device)
    trainer = LocalPPOTrainer(cfg, request, tracker, device=device)
    bundle = load_policy(cfg.model, cfg.cache_dir, device)
    return trainer.fit(bundle)


train_local.in_process = True  # honours ppo.max_steps, calls on_step / after_epoch (training/base.py)
