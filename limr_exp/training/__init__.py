"""RL training engines: the local PPO trainer (and, behind the same registry, scale-out backends)."""

from __future__ import annotations

from pathlib import Path

from limr_exp.registry import Registry

TRAINERS: Registry = Registry("trainer", "trainer")


@TRAINERS.register("local")
def train_local(cfg, problems, out: Path, tracker=None, *, num_episodes=None, namespace="train"):
    """PPO in this process on the base policy (`model` config); returns a TrainResult."""
    from limr_exp.models import load_policy, resolve_device
    from limr_exp.training.ppo import LocalPPOTrainer

    device = resolve_device(cfg.trainer.device)
    trainer = LocalPPOTrainer(cfg, problems, out, tracker, num_episodes=num_episodes, namespace=namespace, device=device)
    bundle = load_policy(cfg.model, cfg.cache_dir, device)
    return trainer.fit(bundle)


def train(cfg, problems, out: Path, tracker=None, **kwargs):
    return TRAINERS.get(cfg.trainer.name)(cfg, problems, out, tracker, **kwargs)


@TRAINERS.register("openrlhf")
def train_openrlhf(cfg, problems, out: Path, tracker=None, *, num_episodes=None, namespace="train"):
    """OpenRLHF on Ray with vLLM rollouts (or, with trainer.dry_run=true, only the command and files)."""
    from limr_exp.training.openrlhf import train_openrlhf as run_openrlhf

    return run_openrlhf(cfg, problems, out, tracker, num_episodes=num_episodes, namespace=namespace)
