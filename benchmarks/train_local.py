"""Benchmark: generation tokens/s and PPO samples/s of the local trainer on the toy model.

    python benchmarks/train_local.py [--device auto|cpu|cuda] [--steps 4]

Uses the default toy model (built once under outputs/cache/) and the default `ppo=toy` settings;
on a machine with CUDA, `--device cuda` measures the GPU path.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import tempfile

    import torch
    from hydra import compose, initialize_config_dir

    import limr_exp.config  # noqa: F401
    from limr_exp.data import load_problems
    from limr_exp.generation import sample
    from limr_exp.models import load_policy, resolve_device
    from limr_exp.rewards import warm_up
    from limr_exp.training import TrainRequest
    from limr_exp.training.ppo import LocalPPOTrainer

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"trainer.device={args.device}", f"cache_dir={ROOT}/outputs/cache"])
    device = resolve_device(cfg.trainer.device)
    bundle = load_policy(cfg.model, cfg.cache_dir, device)
    problems = load_problems(cfg.dataset)
    prompts = [bundle.render(r["prompt"]) for r in problems.rows]
    warm_up()
    p = cfg.ppo
    sample(bundle.model, bundle.tokenizer, prompts[:8], 1, temperature=1.0, top_p=1.0, max_new_tokens=4, batch_size=8)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    s = sample(bundle.model, bundle.tokenizer, prompts, p.n_samples_per_prompt, temperature=p.temperature, top_p=p.top_p,
               max_new_tokens=p.generate_max_len, batch_size=p.micro_rollout_batch_size)
    if device == "cuda":
        torch.cuda.synchronize()
    gen_s = time.perf_counter() - t
    tokens = int(s.action_mask.sum())
    print(f"device: {device} ({torch.get_num_threads()} CPU threads)" if device == "cpu" else f"device: {torch.cuda.get_device_name()}")
    print(f"generation: {len(s.texts)} samples, {tokens} tokens in {gen_s:.2f} s = {tokens / gen_s:,.0f} tokens/s "
          f"(batch {p.micro_rollout_batch_size}, up to {p.generate_max_len} new tokens)")
    n_steps = min(args.steps, -(-len(problems) // p.rollout_batch_size))
    subset = problems.subset(problems.ids[: n_steps * p.rollout_batch_size])
    with tempfile.TemporaryDirectory() as out:
        request = TrainRequest.for_training(cfg, subset, Path(out)).replace(num_episodes=1, namespace="bench")
        trainer = LocalPPOTrainer(cfg, request, device=device)
        t = time.perf_counter()
        trainer.fit(bundle)
        ppo_s = time.perf_counter() - t
    n_samples = len(subset) * p.n_samples_per_prompt
    print(f"PPO ({p.advantage_estimator}): {n_steps} rollout steps, {n_samples} samples in {ppo_s:.2f} s = "
          f"{n_samples / ppo_s:,.0f} samples/s (rollout + reward + update + checkpoint)")


if __name__ == "__main__":
    main()
