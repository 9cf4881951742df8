"""RL training engines: the local PPO trainer (and, behind the same registry, scale-out backends)."""

from __future__ import annotations

from pathlib import Path

from limr_exp.registry import Registry

TRAINERS: Registry = Registry("trainer", "trainer")


@TRAINERS.register("local")
def train_local(cfg, problems, out: Path, tracker=None, *, num_episodes=None, max_steps="ppo", seed=None, namespace="train",
                on_step=None, after_epoch=None):
    """PPO in this process on the base policy (`model` config); returns a TrainResult. `on_step(step, model,
    last)` returns metrics to log at that step (the pipeline's evaluation during training); `after_epoch(epoch,
    history)` returning True ends the run after that epoch (the probe's stop_when_stable)."""
    from limr_exp.models import load_policy, resolve_device
    from limr_exp.training.ppo import LocalPPOTrainer

    device = resolve_device(cfg.trainer.device)
    trainer = LocalPPOTrainer(cfg, problems, out, tracker, num_episodes=num_episodes, max_steps=max_steps, seed=seed,
                              namespace=namespace, device=device, on_step=on_step, after_epoch=after_epoch)
    bundle = load_policy(cfg.model, cfg.cache_dir, device)
    return trainer.fit(bundle)


def train(cfg, problems, out: Path, tracker=None, **kwargs):
    return TRAINERS.get(cfg.trainer.name)(cfg, problems, out, tracker, **kwargs)


@TRAINERS.register("openrlhf")
def train_openrlhf(cfg, problems, out: Path, tracker=None, *, num_episodes=None, max_steps="ppo", seed=None, namespace="train",
                   on_step=None, after_epoch=None):
    """OpenRLHF on Ray with vLLM rollouts (or, with trainer.dry_run=true, only the command and files). It
    trains ppo.num_episodes passes (max_steps is refused at start) and evaluates with `--eval.steps` itself;
    it cannot stop between epochs (after_epoch is not called)."""
    from limr_exp.training.openrlhf import train_openrlhf as run_openrlhf

    if seed is not None and seed != cfg.seed:
        from omegaconf import OmegaConf

        cfg = OmegaConf.merge(cfg, {"seed": seed})
    return run_openrlhf(cfg, problems, out, tracker, num_episodes=num_episodes, namespace=namespace)
