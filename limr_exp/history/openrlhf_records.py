"""Importer of the reward records the OpenRLHF reward function writes during a run (train/rewards/)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from limr_exp.history.table import History


def import_reward_records(records_dir: str | os.PathLike, n_samples_per_prompt: int, rollout_batch_size: int,
                          n_prompts: int) -> History:
    """OpenRLHF reward records (`rewards-<host>-<pid>.jsonl`, written by training/openrlhf_reward.py) -> the
    trajectories table, with every sample's (epoch, rollout step).

    OpenRLHF 0.11's synchronous loop generates rollout step s (rollout_batch_size prompts x n samples; an
    episode's last step takes the prompts left over) and trains on it before step s+1 starts, so in time order
    a launch's records fill the steps one after another. Each launch of the run is marked by
    `launch-<k>.json` (the checkpoint step it resumed from): a launch resumed at step c replaces the earlier
    launches' records after c, since those steps ran again. Epoch k is the k-th episode."""
    import json

    folder = Path(records_dir)
    launches: dict[int, list[dict]] = {}
    for path in sorted(folder.glob("rewards-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed process
                launches.setdefault(int(r.get("launch", 1)), []).append(r)
    resumed_at = {}
    for marker in folder.glob("launch-*.json"):
        resumed_at[int(marker.stem.split("-")[1])] = int(json.loads(marker.read_text()).get("resume_step", 0))
    per_episode = [min(rollout_batch_size, n_prompts - i) * n_samples_per_prompt for i in range(0, n_prompts, rollout_batch_size)]
    kept: list[tuple[int, dict]] = []
    for launch in sorted(launches):
        start = resumed_at.get(launch, 0)
        kept = [(step, r) for step, r in kept if step <= start]
        step, filled = start + 1, 0
        for r in sorted(launches[launch], key=lambda rec: rec["time"]):
            if filled == per_episode[(step - 1) % len(per_episode)]:
                step, filled = step + 1, 0
            kept.append((step, r))
            filled += 1
    index: dict[str, int] = {}
    codes = [index.setdefault(r["prompt_id"], len(index)) for _, r in kept]
    steps = np.array([step for step, _ in kept], dtype=np.int32)
    epochs = (steps - 1) // len(per_episode) + 1
    return History.build(list(index), codes, epochs, steps, [r["reward"] for _, r in kept], [bool(r["correct"]) for _, r in kept])
