"""The probe run: RL on the full set whose per-sample rewards LIM reads (LIMR Sec. 2.2).

It is cached under `<cache_dir>/probes/<hash>` by a hash of what determines it (model, the PPO
settings that shape a rollout step, reward rule, problem set, probe epochs and probe seed), so every
job of a sweep, whatever its own seed, reuses one probe; a file lock makes concurrent jobs wait for
the one that trains it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from limr_exp.errors import DataError
from limr_exp.hashing import config_hash
from limr_exp.trajectories import History, read_table

log = logging.getLogger("limr_exp")

# settings that do not change what the probe learns or records
NOT_IN_PROBE_KEY = {"ppo": ("num_episodes", "max_steps"), "reward": ("workers", "memory_limit_mb", "max_error_share")}


def probe_key(cfg, problems) -> str:
    from omegaconf import OmegaConf

    data = hashlib.sha256("\n".join(f"{r['id']}\t{r['prompt']}\t{r['answer']}" for r in problems.rows).encode()).hexdigest()
    parts = {}
    for group, dropped in NOT_IN_PROBE_KEY.items():
        node = OmegaConf.to_container(cfg[group], resolve=True)
        parts[group] = {k: v for k, v in node.items() if k not in dropped}
    return config_hash(cfg.model, parts["ppo"], parts["reward"], cfg.trainer.name, cfg.probe.episodes, cfg.probe.seed, data)


def probe_history(cfg, problems, tracker=None) -> History:
    from filelock import FileLock

    from limr_exp.training import train

    folder = Path(cfg.cache_dir) / "probes" / probe_key(cfg, problems)
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done"
    with FileLock(str(folder) + ".lock"):
        if done.exists():
            log.info("probe: reusing the cached probe run %s", folder)
            try:
                return read_table(folder / "trajectories.parquet")
            except DataError:
                raise DataError(f"the cached probe run {folder} is corrupt: delete that folder (it is safe: the next run "
                                "trains the probe again)") from None
        log.info("probe: RL on all %d prompts for %d epochs, probe seed %d (cached in %s)", len(problems), cfg.probe.episodes,
                 cfg.probe.seed, folder)
        history = train(cfg, problems, folder, tracker, num_episodes=cfg.probe.episodes, max_steps=None, seed=cfg.probe.seed,
                        namespace="probe").history
        done.write_text("ok\n")
        return history
